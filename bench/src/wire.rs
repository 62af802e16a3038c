//! The few Pusher frames and REST bodies the generator writes, and the byte searches that recognize
//! what comes back. Pure: received frames are never parsed as JSON, only searched (spec §2.4, §3.4, §9.3).

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// The key that marks a benchmark event's send time inside its data.
const STAMP_KEY: &[u8] = b"bench_ts";

static STAMP_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(STAMP_KEY));
static PING_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"pusher:ping"));
static SUBSCRIBED_FINDER: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"pusher_internal:subscription_succeeded"));
static ESTABLISHED_FINDER: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"pusher:connection_established"));
static ERROR_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"pusher:error"));

/// What a received text frame is, as far as the generator cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A benchmark event, with the send time it carries (nanoseconds since the generator's epoch).
    Stamped(u64),
    ConnectionEstablished,
    SubscriptionSucceeded,
    Ping,
    Error,
    Other,
}

/// Classifies a text frame, looking for the stamp first because that is the common case.
pub fn classify(frame: &[u8]) -> Received {
    if let Some(sent_at) = find_stamp(frame) {
        return Received::Stamped(sent_at);
    }
    if PING_FINDER.find(frame).is_some() {
        return Received::Ping;
    }
    if SUBSCRIBED_FINDER.find(frame).is_some() {
        return Received::SubscriptionSucceeded;
    }
    if ESTABLISHED_FINDER.find(frame).is_some() {
        return Received::ConnectionEstablished;
    }
    if ERROR_FINDER.find(frame).is_some() {
        return Received::Error;
    }
    Received::Other
}

/// Finds the send time in a frame, whether the data arrives escaped inside a JSON string
/// (`\"bench_ts\":123`, as Pusher relays it) or plain (`"bench_ts":123`).
pub fn find_stamp(frame: &[u8]) -> Option<u64> {
    let after_key = STAMP_FINDER.find(frame)? + STAMP_KEY.len();
    let rest = &frame[after_key..];
    let digits_start = rest
        .iter()
        .take(8)
        .position(|byte| !matches!(byte, b'\\' | b'"' | b':' | b' '))?;
    let digits = &rest[digits_start..];
    let mut value: u64 = 0;
    let mut n_digits = 0;
    for byte in digits.iter().take_while(|byte| byte.is_ascii_digit()) {
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
        n_digits += 1;
    }
    (n_digits > 0).then_some(value)
}

/// The event data around its stamp and padding, unescaped: `{"bench_ts":N,"pad":"xx…"}`.
const DATA_BEFORE_STAMP: &[u8] = b"{\"bench_ts\":";
const DATA_BEFORE_PAD: &[u8] = b",\"pad\":\"";
const DATA_TAIL: &[u8] = b"\"}";

/// Bytes of padding that make the event data `payload_bytes` long (never negative: the data is
/// never shorter than the stamp itself).
fn pad_len(stamp_digits: usize, payload_bytes: usize) -> usize {
    let head = DATA_BEFORE_STAMP.len() + stamp_digits + DATA_BEFORE_PAD.len();
    payload_bytes.saturating_sub(head + DATA_TAIL.len())
}

/// The event data string, unescaped: `{"bench_ts":N,"pad":"xx…"}`, padded to `payload_bytes`
/// (never shorter than the stamp itself).
#[cfg(test)]
pub fn event_data(sent_at: u64, payload_bytes: usize) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(sent_at).as_bytes();
    let mut data = Vec::new();
    data.extend_from_slice(DATA_BEFORE_STAMP);
    data.extend_from_slice(digits);
    data.extend_from_slice(DATA_BEFORE_PAD);
    data.resize(data.len() + pad_len(digits.len(), payload_bytes), b'x');
    data.extend_from_slice(DATA_TAIL);
    String::from_utf8(data).expect("ASCII")
}

/// Writes the body of `POST /apps/{id}/events` into `out` (cleared first), without allocating
/// once `out` has grown to size.
///
/// The data is written already escaped; `event_name` and `channel` must be plain Pusher names
/// (`[A-Za-z0-9_\-=@,.;]`), which need no escaping.
pub fn publish_body(
    out: &mut Vec<u8>,
    event_name: &str,
    channel: &str,
    sent_at: u64,
    payload_bytes: usize,
) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(sent_at).as_bytes();
    out.clear();
    out.extend_from_slice(b"{\"name\":\"");
    out.extend_from_slice(event_name.as_bytes());
    out.extend_from_slice(b"\",\"channel\":\"");
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(b"\",\"data\":\"");
    // The data, its quotes escaped: {\"bench_ts\":N,\"pad\":\"xx…\"}
    out.extend_from_slice(b"{\\\"bench_ts\\\":");
    out.extend_from_slice(digits);
    out.extend_from_slice(b",\\\"pad\\\":\\\"");
    out.resize(out.len() + pad_len(digits.len(), payload_bytes), b'x');
    out.extend_from_slice(b"\\\"}");
    out.extend_from_slice(b"\"}");
}

/// The `pusher:subscribe` frame for a public channel.
pub fn subscribe_frame(channel: &str) -> Vec<u8> {
    format!(r#"{{"event":"pusher:subscribe","data":{{"auth":"","channel":"{channel}"}}}}"#)
        .into_bytes()
}

/// The answer to a server's `pusher:ping` (spec §2.5).
pub const PONG_FRAME: &[u8] = br#"{"event":"pusher:pong","data":{}}"#;

/// Whether `name` uses only the characters Pusher allows in channel and event names (spec §3.2).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_-=@,.;".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_stamp(frame: &str, expected: Option<u64>) {
        assert_eq!(find_stamp(frame.as_bytes()), expected, "frame: {frame}");
    }

    #[test]
    fn stamp_is_found_in_relayed_and_plain_forms() {
        check_stamp(
            r#"{"event":"e","channel":"c","data":"{\"bench_ts\":123456789,\"pad\":\"xx\"}"}"#,
            Some(123_456_789),
        );
        check_stamp(r#"{"data":{"bench_ts":42,"pad":""}}"#, Some(42));
        check_stamp(r#"{"data":{"bench_ts": 7}}"#, Some(7));
        check_stamp(r#"{"data":"{\"bench_ts\":0}"}"#, Some(0));
        check_stamp(r#"{"event":"pusher:ping","data":{}}"#, None);
        check_stamp(r#"{"data":"{\"bench_ts\":\"x\"}"}"#, None);
        check_stamp(r#"{"data":"{\"bench_ts\":"#, None);
        check_stamp(r#"{"data":"{\"bench_ts\":99999999999999999999999}"}"#, None);
    }

    #[test]
    fn publish_body_is_json_whose_data_carries_the_stamp() {
        let mut body = Vec::new();
        publish_body(&mut body, "bench-event", "bench-1-0", 987_654_321, 200);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["name"], "bench-event");
        assert_eq!(value["channel"], "bench-1-0");
        let data = value["data"].as_str().unwrap();
        assert_eq!(data.len(), 200);
        let inner: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(inner["bench_ts"], 987_654_321);
        // What a server relays is the data string re-embedded in a frame.
        let frame = serde_json::json!({"event": "bench-event", "channel": "c", "data": data});
        assert_eq!(find_stamp(frame.to_string().as_bytes()), Some(987_654_321));
    }

    #[test]
    fn publish_body_escapes_exactly_the_event_data() {
        for (sent_at, payload_bytes) in [(0, 0), (7, 30), (123_456, 200), (u64::MAX, 10)] {
            let mut body = Vec::new();
            publish_body(&mut body, "e", "c", sent_at, payload_bytes);
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(value["data"], event_data(sent_at, payload_bytes));
        }
    }

    #[test]
    fn event_data_never_shorter_than_its_stamp() {
        let data = event_data(u64::MAX, 10);
        assert_eq!(data, format!("{{\"bench_ts\":{},\"pad\":\"\"}}", u64::MAX));
    }

    fn check_classify(frame: &str, expected: Received) {
        assert_eq!(classify(frame.as_bytes()), expected, "frame: {frame}");
    }

    #[test]
    fn frames_are_classified() {
        check_classify(
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}"#,
            Received::ConnectionEstablished,
        );
        check_classify(
            r#"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"c"}"#,
            Received::SubscriptionSucceeded,
        );
        check_classify(r#"{"event":"pusher:ping","data":{}}"#, Received::Ping);
        check_classify(
            r#"{"event":"pusher:error","data":{"code":4001,"message":"nope"}}"#,
            Received::Error,
        );
        check_classify(r#"{"event":"other","data":"{}"}"#, Received::Other);
        check_classify(
            r#"{"data":"{\"bench_ts\":5}","event":"e"}"#,
            Received::Stamped(5),
        );
    }

    #[test]
    fn subscribe_frame_is_pusher_js_shaped() {
        let value: serde_json::Value = serde_json::from_slice(&subscribe_frame("bench-0")).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": "bench-0"}})
        );
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("bench-12_a=b@c,d.e;f"));
        assert!(!is_plain_name(""));
        assert!(!is_plain_name("has space"));
        assert!(!is_plain_name("quote\""));
    }
}
