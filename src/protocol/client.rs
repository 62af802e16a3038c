//! Frames a client sends, parsed into `ClientMessage` (spec §2.4, §3.4, §3.5, §5.1, §7).
//! Pure: no IO.

use serde::{Deserialize, de::DeserializeOwned};
use serde_json::value::RawValue;

/// One parsed client frame.
#[derive(Debug)]
pub enum ClientMessage {
    Ping,
    Pong,
    Subscribe(Subscribe),
    Unsubscribe {
        channel: String,
    },
    Signin {
        auth: String,
        user_data: String,
    },
    /// A `client-*` event to relay; `data` is kept exactly as the sender wrote it.
    ClientEvent {
        event: String,
        channel: String,
        data: Option<Box<RawValue>>,
    },
    /// An unknown `pusher:` or `pusher_internal:` event; ignored (spec §2.5).
    Ignored(String),
    /// Any other event name: refused with "Unsupported event received on socket".
    Unsupported(String),
}

/// `pusher:subscribe` data. `channel_data` is the exact string the signature covers.
#[derive(Debug, PartialEq)]
pub struct Subscribe {
    pub channel: String,
    pub auth: Option<String>,
    pub channel_data: Option<String>,
}

/// Why a frame could not be understood.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("frame is not a JSON object with a string \"event\" ({0})")]
    NotAnEvent(String),
    #[error("{event} needs a {field} field")]
    MissingField {
        event: &'static str,
        field: &'static str,
    },
    #[error("{event} data is malformed ({reason})")]
    BadData { event: &'static str, reason: String },
}

#[derive(Deserialize)]
struct Envelope<'a> {
    event: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SubscribeData {
    channel: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    channel_data: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct SigninData {
    auth: Option<String>,
    user_data: Option<String>,
}

#[derive(Deserialize)]
struct UnsubscribeData {
    channel: Option<String>,
}

/// Parses a text frame. Never panics, whatever the input.
pub fn parse(text: &str) -> Result<ClientMessage, ParseError> {
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| ParseError::NotAnEvent(e.to_string()))?;
    let message = match envelope.event.as_str() {
        "pusher:ping" => ClientMessage::Ping,
        "pusher:pong" => ClientMessage::Pong,
        "pusher:subscribe" => {
            const EVENT: &str = "pusher:subscribe";
            let data: SubscribeData = object_data(EVENT, envelope.data)?;
            let channel = data.channel.ok_or(ParseError::MissingField {
                event: EVENT,
                field: "channel",
            })?;
            let channel_data = data.channel_data.and_then(|raw| {
                // The signature covers the string as sent; an object is taken as its raw text.
                match serde_json::from_str::<Option<String>>(raw.get()) {
                    Ok(text) => text,
                    Err(_) => Some(raw.get().to_owned()),
                }
            });
            ClientMessage::Subscribe(Subscribe {
                channel,
                auth: data.auth,
                channel_data,
            })
        }
        "pusher:unsubscribe" => {
            const EVENT: &str = "pusher:unsubscribe";
            let data: UnsubscribeData = object_data(EVENT, envelope.data)?;
            let channel = data.channel.ok_or(ParseError::MissingField {
                event: EVENT,
                field: "channel",
            })?;
            ClientMessage::Unsubscribe { channel }
        }
        "pusher:signin" => {
            const EVENT: &str = "pusher:signin";
            let data: SigninData = object_data(EVENT, envelope.data)?;
            let missing = |field| ParseError::MissingField {
                event: EVENT,
                field,
            };
            ClientMessage::Signin {
                auth: data.auth.ok_or_else(|| missing("auth"))?,
                user_data: data.user_data.ok_or_else(|| missing("user_data"))?,
            }
        }
        name if name.starts_with("pusher:") || name.starts_with("pusher_internal:") => {
            ClientMessage::Ignored(envelope.event)
        }
        name if name.starts_with("client-") => {
            let channel = envelope.channel.ok_or(ParseError::MissingField {
                event: "client event",
                field: "channel",
            })?;
            ClientMessage::ClientEvent {
                data: envelope.data.map(RawValue::to_owned),
                event: envelope.event,
                channel,
            }
        }
        _ => ClientMessage::Unsupported(envelope.event),
    };
    Ok(message)
}

/// Reads `data` as an object, also accepting the object JSON-encoded inside a string (spec §2.4).
fn object_data<T: DeserializeOwned>(
    event: &'static str,
    data: Option<&RawValue>,
) -> Result<T, ParseError> {
    let raw = data.ok_or(ParseError::MissingField {
        event,
        field: "data",
    })?;
    let bad = |e: serde_json::Error| ParseError::BadData {
        event,
        reason: e.to_string(),
    };
    if raw.get().starts_with('"') {
        let inner: String = serde_json::from_str(raw.get()).map_err(bad)?;
        return serde_json::from_str(&inner).map_err(bad);
    }
    serde_json::from_str(raw.get()).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(channel: &str, auth: Option<&str>, channel_data: Option<&str>) -> ClientMessage {
        ClientMessage::Subscribe(Subscribe {
            channel: channel.into(),
            auth: auth.map(Into::into),
            channel_data: channel_data.map(Into::into),
        })
    }

    fn check(text: &str, expected: Result<ClientMessage, ()>) {
        let got = parse(text).map_err(|_| ());
        assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{text}");
    }

    #[test]
    fn control_events_parse() {
        check(
            r#"{"event":"pusher:ping","data":{}}"#,
            Ok(ClientMessage::Ping),
        );
        check(r#"{"event":"pusher:ping"}"#, Ok(ClientMessage::Ping));
        check(
            r#"{"event":"pusher:pong","data":{}}"#,
            Ok(ClientMessage::Pong),
        );
        check(
            r#"{"event":"pusher:whatever","data":{}}"#,
            Ok(ClientMessage::Ignored("pusher:whatever".into())),
        );
        check(
            r#"{"event":"my-event","channel":"a","data":{}}"#,
            Ok(ClientMessage::Unsupported("my-event".into())),
        );
    }

    #[test]
    fn subscribe_data_as_object_or_string() {
        check(
            r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}"#,
            Ok(subscribe("my-channel", Some(""), None)),
        );
        check(
            r#"{"event":"pusher:subscribe","data":"{\"channel\":\"my-channel\"}"}"#,
            Ok(subscribe("my-channel", None, None)),
        );
        check(
            r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\":\"u-42\"}","channel":"presence-room"}}"#,
            Ok(subscribe(
                "presence-room",
                Some("k:s"),
                Some(r#"{"user_id":"u-42"}"#),
            )),
        );
    }

    #[test]
    fn other_events_parse() {
        check(
            r#"{"event":"pusher:unsubscribe","data":{"channel":"a"}}"#,
            Ok(ClientMessage::Unsubscribe {
                channel: "a".into(),
            }),
        );
        check(
            r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#,
            Ok(ClientMessage::Signin {
                auth: "k:s".into(),
                user_data: r#"{"id":"1"}"#.into(),
            }),
        );
        let parsed =
            parse(r#"{"event":"client-typing","channel":"private-a","data":{"typing": true}}"#)
                .unwrap();
        match parsed {
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => {
                assert_eq!(event, "client-typing");
                assert_eq!(channel, "private-a");
                assert_eq!(data.unwrap().get(), r#"{"typing": true}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        for text in [
            "",
            "not json",
            "[]",
            "42",
            "null",
            r#"{"data":{}}"#,
            r#"{"event":42}"#,
            r#"{"event":"pusher:subscribe"}"#,
            r#"{"event":"pusher:subscribe","data":{}}"#,
            r#"{"event":"pusher:subscribe","data":"not json"}"#,
            r#"{"event":"pusher:subscribe","data":[1,2]}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":7}}"#,
            r#"{"event":"pusher:signin","data":{"auth":"x"}}"#,
            r#"{"event":"pusher:unsubscribe","data":null}"#,
            r#"{"event":"client-x","data":{}}"#,
            "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"\u{0}\"",
        ] {
            check(text, Err(()));
        }
    }
}
