//! Node-to-node messages on an app's pub/sub channel: a compact text header, then the frame bytes
//! exactly as every subscriber receives them, so a broadcast is serialized once for the whole cluster.
//! Pure: no IO.

/// What one node asks the others to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NodeMessage<'a> {
    /// Deliver `frame` to the channel's local subscribers except `except`.
    Broadcast {
        origin: &'a str,
        channel: &'a str,
        except: Option<&'a str>,
        frame: &'a [u8],
    },
    /// Close the sockets signed in as `user_id` with 4009.
    Terminate { origin: &'a str, user_id: &'a str },
}

/// `b\n{origin}\n{except}\n{channel}\n{frame}`; no field but the frame can hold a newline, and JSON
/// frames never contain a raw one either.
pub(super) fn encode(message: &NodeMessage<'_>) -> Vec<u8> {
    match message {
        NodeMessage::Broadcast {
            origin,
            channel,
            except,
            frame,
        } => {
            let mut bytes =
                format!("b\n{origin}\n{}\n{channel}\n", except.unwrap_or("")).into_bytes();
            bytes.extend_from_slice(frame);
            bytes
        }
        NodeMessage::Terminate { origin, user_id } => {
            format!("t\n{origin}\n\n{user_id}\n").into_bytes()
        }
    }
}

pub(super) fn decode(bytes: &[u8]) -> Option<NodeMessage<'_>> {
    let mut parts = bytes.splitn(5, |byte| *byte == b'\n');
    let kind = parts.next()?;
    let origin = std::str::from_utf8(parts.next()?).ok()?;
    let except = std::str::from_utf8(parts.next()?).ok()?;
    let target = std::str::from_utf8(parts.next()?).ok()?;
    let rest = parts.next()?;
    match kind {
        b"b" => Some(NodeMessage::Broadcast {
            origin,
            channel: target,
            except: (!except.is_empty()).then_some(except),
            frame: rest,
        }),
        b"t" => Some(NodeMessage::Terminate {
            origin,
            user_id: target,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let cases = [
            NodeMessage::Broadcast {
                origin: "n1",
                channel: "presence-room",
                except: Some("1.2"),
                frame: br#"{"event":"e","data":"a\nb"}"#,
            },
            NodeMessage::Broadcast {
                origin: "n1",
                channel: "c",
                except: None,
                frame: b"",
            },
            NodeMessage::Terminate {
                origin: "n2",
                user_id: "u-42",
            },
        ];
        for message in cases {
            assert_eq!(decode(&encode(&message)), Some(message));
        }
    }

    #[test]
    fn garbage_is_ignored() {
        for bytes in [
            &b""[..],
            b"b\nn1",
            b"x\nn\n\nc\nf",
            &[0xff, b'\n', b'\n', b'\n', b'\n'],
        ] {
            assert_eq!(decode(bytes), None, "{bytes:?}");
        }
    }
}
