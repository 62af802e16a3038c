//! Frames the server sends, serialized once to text (spec §2.3, §2.4, §3.4, §5, §6, §8).
//! Pure: no IO. Which `data` is a JSON string and which an object follows the table in spec §2.4.

use serde::Serialize;
use serde_json::value::RawValue;

use super::socket_id::SocketId;

#[derive(Serialize)]
struct Frame<'a, D: Serialize> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn encode<D: Serialize>(event: &str, channel: Option<&str>, data: Option<D>) -> String {
    to_json(&Frame {
        event,
        channel,
        data,
        user_id: None,
    })
}

/// Serializes a value that is known to be serializable (plain structs of strings and numbers).
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("frames hold only strings, numbers and raw JSON")
}

#[derive(Serialize)]
struct Established {
    socket_id: String,
    activity_timeout: u64,
}

/// `pusher:connection_established`; `data` is a JSON-encoded string.
pub fn connection_established(socket_id: SocketId, activity_timeout_secs: u64) -> String {
    let data = to_json(&Established {
        socket_id: socket_id.to_string(),
        activity_timeout: activity_timeout_secs,
    });
    encode("pusher:connection_established", None, Some(data))
}

#[derive(Serialize)]
struct ErrorData<'a> {
    code: Option<u16>,
    message: &'a str,
}

/// `pusher:error` with an object `data`; `code: None` is sent as `null`.
pub fn error(code: Option<u16>, message: &str) -> String {
    encode("pusher:error", None, Some(ErrorData { code, message }))
}

#[derive(Serialize)]
struct Empty {}

pub fn ping() -> String {
    encode("pusher:ping", None, Some(Empty {}))
}

pub fn pong() -> String {
    encode("pusher:pong", None, Some(Empty {}))
}

/// `pusher_internal:subscription_succeeded` with `"{}"` as data (non-presence channels).
pub fn subscription_succeeded(channel: &str) -> String {
    encode(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        Some("{}"),
    )
}

/// One presence member: the user id and its `user_info` as the raw JSON the app signed.
pub struct MemberRef<'a> {
    pub user_id: &'a str,
    pub user_info: Option<&'a RawValue>,
}

/// `pusher_internal:subscription_succeeded` on a presence channel, with `{presence:{ids,hash,count}}`.
/// A member without `user_info` keeps its key in `hash` with `null`, so `members.me` works in pusher-js.
pub fn presence_subscription_succeeded<'a>(
    channel: &str,
    members: impl ExactSizeIterator<Item = MemberRef<'a>> + Clone,
) -> String {
    #[derive(Serialize)]
    struct Presence<'a> {
        presence: PresenceBody<'a>,
    }
    #[derive(Serialize)]
    struct PresenceBody<'a> {
        ids: Vec<&'a str>,
        hash: serde_json::Map<String, serde_json::Value>,
        count: usize,
    }
    let count = members.len();
    let ids = members.clone().map(|m| m.user_id).collect();
    let hash = members
        .map(|m| {
            let info = m
                .user_info
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
                .unwrap_or(serde_json::Value::Null);
            (m.user_id.to_owned(), info)
        })
        .collect();
    let data = to_json(&Presence {
        presence: PresenceBody { ids, hash, count },
    });
    encode(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        Some(data),
    )
}

#[derive(Serialize)]
struct MemberData<'a> {
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_info: Option<&'a RawValue>,
}

/// `pusher_internal:member_added` with a JSON-string `data` of `{user_id, user_info}`.
pub fn member_added(channel: &str, member: MemberRef<'_>) -> String {
    let data = to_json(&MemberData {
        user_id: member.user_id,
        user_info: member.user_info,
    });
    encode("pusher_internal:member_added", Some(channel), Some(data))
}

/// `pusher_internal:member_removed` with a JSON-string `data` of `{user_id}`.
pub fn member_removed(channel: &str, user_id: &str) -> String {
    let data = to_json(&MemberData {
        user_id,
        user_info: None,
    });
    encode("pusher_internal:member_removed", Some(channel), Some(data))
}

/// A channel event from the HTTP API: `data` is the API's string, sent verbatim (spec §2.4).
pub fn channel_event(event: &str, channel: &str, data: &str) -> String {
    encode(event, Some(channel), Some(data))
}

/// A relayed client event: `data` unchanged, `user_id` added on presence channels (spec §7).
pub fn client_event(
    event: &str,
    channel: &str,
    data: Option<&RawValue>,
    user_id: Option<&str>,
) -> String {
    to_json(&Frame {
        event,
        channel: Some(channel),
        data,
        user_id,
    })
}

/// `pusher:cache_miss` for a cache channel with nothing stored (spec §8.1).
pub fn cache_miss(channel: &str) -> String {
    encode::<()>("pusher:cache_miss", Some(channel), None)
}

/// `pusher_internal:subscription_count` with a JSON-string `data` (spec §8.2).
pub fn subscription_count(channel: &str, count: usize) -> String {
    #[derive(Serialize)]
    struct Count {
        subscription_count: usize,
    }
    let data = to_json(&Count {
        subscription_count: count,
    });
    encode(
        "pusher_internal:subscription_count",
        Some(channel),
        Some(data),
    )
}

/// `pusher:signin_success` echoing the exact `user_data` string (spec §5.1).
pub fn signin_success(user_data: &str) -> String {
    #[derive(Serialize)]
    struct Signin<'a> {
        user_data: &'a str,
    }
    encode("pusher:signin_success", None, Some(Signin { user_data }))
}

/// Whether a watched user went online or offline (spec §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Offline,
}

/// `pusher_internal:watchlist_events` with an object `data`, in the shape pusher-js's watchlist reads.
pub fn watchlist_events(events: &[(Presence, Vec<&str>)]) -> String {
    #[derive(Serialize)]
    struct Event<'a> {
        name: Presence,
        user_ids: &'a [&'a str],
    }
    #[derive(Serialize)]
    struct Events<'a> {
        events: Vec<Event<'a>>,
    }
    let events = events
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(name, ids)| Event {
            name: *name,
            user_ids: ids,
        })
        .collect();
    encode(
        "pusher_internal:watchlist_events",
        None,
        Some(Events { events }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn frames_match_the_reference_transcripts() {
        let socket_id: SocketId = "123456.7890123".parse().unwrap();
        assert_eq!(
            connection_established(socket_id, 120),
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123456.7890123\",\"activity_timeout\":120}"}"#
        );
        assert_eq!(
            subscription_succeeded("private-chat"),
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"private-chat","data":"{}"}"#
        );
        let info = raw(r#"{"name":"Alice"}"#);
        let members = [MemberRef {
            user_id: "u-42",
            user_info: Some(&info),
        }];
        assert_eq!(
            presence_subscription_succeeded(
                "presence-room",
                members.iter().map(|m| MemberRef {
                    user_id: m.user_id,
                    user_info: m.user_info
                })
            ),
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":"{\"presence\":{\"ids\":[\"u-42\"],\"hash\":{\"u-42\":{\"name\":\"Alice\"}},\"count\":1}}"}"#
        );
        assert_eq!(
            member_added(
                "presence-room",
                MemberRef {
                    user_id: "u-42",
                    user_info: Some(&info)
                }
            ),
            r#"{"event":"pusher_internal:member_added","channel":"presence-room","data":"{\"user_id\":\"u-42\",\"user_info\":{\"name\":\"Alice\"}}"}"#
        );
        assert_eq!(
            member_removed("presence-room", "u-42"),
            r#"{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"u-42\"}"}"#
        );
        assert_eq!(
            error(Some(4001), "App key nope does not exist in this cluster."),
            r#"{"event":"pusher:error","data":{"code":4001,"message":"App key nope does not exist in this cluster."}}"#
        );
        assert_eq!(
            error(None, "x"),
            r#"{"event":"pusher:error","data":{"code":null,"message":"x"}}"#
        );
        assert_eq!(
            signin_success(r#"{"id":"u-42"}"#),
            r#"{"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"u-42\"}"}}"#
        );
    }

    #[test]
    fn other_frames_have_the_documented_shapes() {
        assert_eq!(
            channel_event("my-event", "my-channel", r#"{"hello":"world"}"#),
            r#"{"event":"my-event","channel":"my-channel","data":"{\"hello\":\"world\"}"}"#
        );
        let data = raw(r#"{"typing":true}"#);
        assert_eq!(
            client_event("client-typing", "presence-room", Some(&data), Some("u-42")),
            r#"{"event":"client-typing","channel":"presence-room","data":{"typing":true},"user_id":"u-42"}"#
        );
        assert_eq!(
            cache_miss("cache-x"),
            r#"{"event":"pusher:cache_miss","channel":"cache-x"}"#
        );
        assert_eq!(
            subscription_count("my-channel", 3),
            r#"{"event":"pusher_internal:subscription_count","channel":"my-channel","data":"{\"subscription_count\":3}"}"#
        );
        assert_eq!(
            watchlist_events(&[(Presence::Online, vec!["u-1"]), (Presence::Offline, vec![])]),
            r#"{"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"online","user_ids":["u-1"]}]}}"#
        );
        assert_eq!(ping(), r#"{"event":"pusher:ping","data":{}}"#);
        assert_eq!(pong(), r#"{"event":"pusher:pong","data":{}}"#);
    }

    #[test]
    fn presence_member_without_info_keeps_its_key() {
        let members = [MemberRef {
            user_id: "7",
            user_info: None,
        }];
        let frame = presence_subscription_succeeded(
            "presence-a",
            members.iter().map(|m| MemberRef {
                user_id: m.user_id,
                user_info: m.user_info,
            }),
        );
        assert!(frame.contains(r#"\"hash\":{\"7\":null}"#), "{frame}");
    }
}
