//! WebSocket framing for a client (RFC 6455 §5), by hand and without allocating per frame:
//! received bytes are split into messages in place, and the few frames the client sends are
//! masked into a caller's buffer. Pure: the socket side lives in `socket`.
//!
//! Why not a library: with fastwebsockets the generator spent 11–16 % more CPU per delivered
//! frame (a `BytesMut` split and a UTF-8 check per frame, measured with `perf`), and the
//! generator is what limits the fan-out benchmarks on a two-core machine. Only the client's
//! receive side is needed, which keeps this small and fully tested below.

/// Largest message accepted from a server; a bigger one is a protocol error.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A complete message received, as far as the generator cares. Binary messages and pongs are
/// skipped.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a [u8]),
    Ping(&'a [u8]),
    Close(&'a [u8]),
}

/// A frame the server should not have sent.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    ReservedBits,
    UnknownOpcode(u8),
    MaskedByServer,
    FragmentedControl,
    ControlTooLong,
    TooLong(u64),
    UnexpectedContinuation,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReservedBits => write!(f, "reserved bits set"),
            Self::UnknownOpcode(opcode) => write!(f, "unknown opcode {opcode:#x}"),
            Self::MaskedByServer => write!(f, "masked frame from the server"),
            Self::FragmentedControl => write!(f, "fragmented control frame"),
            Self::ControlTooLong => write!(f, "control frame over 125 bytes"),
            Self::TooLong(len) => write!(f, "message of {len} bytes"),
            Self::UnexpectedContinuation => write!(f, "continuation without a first fragment"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A frame header: what it is and where its payload lies.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

/// Parses the header at the start of `bytes`; `None` while it is incomplete.
fn parse_header(bytes: &[u8]) -> Result<Option<Header>, FrameError> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    if second & 0x80 != 0 {
        return Err(FrameError::MaskedByServer);
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0f;
    let (header_len, payload_len) = match second & 0x7f {
        126 => match bytes.get(2..4) {
            Some(len) => (4, u64::from(u16::from_be_bytes([len[0], len[1]]))),
            None => return Ok(None),
        },
        127 => match bytes.get(2..10) {
            Some(len) => (10, u64::from_be_bytes(len.try_into().expect("8 bytes"))),
            None => return Ok(None),
        },
        len => (2, u64::from(len)),
    };
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin {
                return Err(FrameError::FragmentedControl);
            }
            if payload_len > 125 {
                return Err(FrameError::ControlTooLong);
            }
        }
        other => return Err(FrameError::UnknownOpcode(other)),
    }
    if payload_len > MAX_MESSAGE_BYTES as u64 {
        return Err(FrameError::TooLong(payload_len));
    }
    Ok(Some(Header {
        fin,
        opcode,
        header_len,
        payload_len: payload_len as usize,
    }))
}

/// Splits received bytes into messages, carrying fragmented messages across calls.
#[derive(Default)]
pub struct Reader {
    /// The fragments so far of a message whose last frame has not arrived.
    fragments: Vec<u8>,
    /// Whether `fragments` holds a text message (else binary, which is skipped).
    fragmented_text: bool,
    in_fragmented: bool,
}

impl Reader {
    /// Calls `on_message` for each complete message at the start of `bytes`, and returns how many
    /// bytes it consumed; the rest is the start of a frame still arriving.
    pub fn parse(
        &mut self,
        bytes: &[u8],
        mut on_message: impl FnMut(Message<'_>),
    ) -> Result<usize, FrameError> {
        let mut at = 0;
        while let Some(header) = parse_header(&bytes[at..])? {
            let start = at + header.header_len;
            let Some(payload) = bytes.get(start..start + header.payload_len) else {
                break;
            };
            at = start + header.payload_len;
            match header.opcode {
                OP_TEXT if header.fin && !self.in_fragmented => on_message(Message::Text(payload)),
                OP_BINARY if header.fin && !self.in_fragmented => {}
                OP_TEXT | OP_BINARY => {
                    if self.in_fragmented {
                        // A new message before the last one ended.
                        return Err(FrameError::UnexpectedContinuation);
                    }
                    self.in_fragmented = true;
                    self.fragmented_text = header.opcode == OP_TEXT;
                    self.fragments.clear();
                    self.fragments.extend_from_slice(payload);
                }
                OP_CONTINUATION => {
                    if !self.in_fragmented {
                        return Err(FrameError::UnexpectedContinuation);
                    }
                    if self.fragments.len() + payload.len() > MAX_MESSAGE_BYTES {
                        return Err(FrameError::TooLong(
                            (self.fragments.len() + payload.len()) as u64,
                        ));
                    }
                    self.fragments.extend_from_slice(payload);
                    if header.fin {
                        self.in_fragmented = false;
                        if self.fragmented_text {
                            on_message(Message::Text(&self.fragments));
                        }
                        self.fragments = Vec::new();
                    }
                }
                OP_PING => on_message(Message::Ping(payload)),
                OP_CLOSE => on_message(Message::Close(payload)),
                _ => {} // pong
            }
        }
        Ok(at)
    }
}

/// Opcodes of the frames the client sends.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing {
    Text,
    Pong,
    Close,
}

/// Appends one masked, final frame to `out` (RFC 6455 §5.3: every client frame is masked).
///
/// The mask only defeats proxy cache poisoning, which loopback benchmarks don't face; it is
/// derived from `mask_seed` so that it varies between frames.
pub fn encode_client_frame(out: &mut Vec<u8>, kind: Outgoing, payload: &[u8], mask_seed: u64) {
    let opcode = match kind {
        Outgoing::Text => OP_TEXT,
        Outgoing::Pong => OP_PONG,
        Outgoing::Close => OP_CLOSE,
    };
    out.push(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    let mask = (mask_seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32;
    let mask = mask.to_be_bytes();
    out.extend_from_slice(&mask);
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unmasked server frame.
    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            len @ 0..=125 => frame.push(len as u8),
            len @ 126..=0xffff => {
                frame.push(126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Text(Vec<u8>),
        Ping(Vec<u8>),
        Close(Vec<u8>),
    }

    fn parse_all(reader: &mut Reader, bytes: &[u8]) -> (usize, Vec<Owned>) {
        let mut messages = Vec::new();
        let used = reader
            .parse(bytes, |message| {
                messages.push(match message {
                    Message::Text(text) => Owned::Text(text.to_vec()),
                    Message::Ping(payload) => Owned::Ping(payload.to_vec()),
                    Message::Close(payload) => Owned::Close(payload.to_vec()),
                })
            })
            .unwrap();
        (used, messages)
    }

    #[test]
    fn frames_of_every_length_encoding_are_split() {
        let long = vec![b'a'; 300];
        let longer = vec![b'b'; 70_000];
        let mut bytes = server_frame(true, OP_TEXT, b"hi");
        bytes.extend(server_frame(true, OP_TEXT, &long));
        bytes.extend(server_frame(true, OP_TEXT, &longer));
        bytes.extend(server_frame(true, OP_BINARY, b"skipped"));
        bytes.extend(server_frame(true, OP_PONG, b"skipped"));
        bytes.extend(server_frame(true, OP_PING, b"p"));
        bytes.extend(server_frame(true, OP_CLOSE, &[0x03, 0xe8]));
        let (used, messages) = parse_all(&mut Reader::default(), &bytes);
        assert_eq!(used, bytes.len());
        assert_eq!(
            messages,
            [
                Owned::Text(b"hi".to_vec()),
                Owned::Text(long),
                Owned::Text(longer),
                Owned::Ping(b"p".to_vec()),
                Owned::Close(vec![0x03, 0xe8]),
            ]
        );
    }

    #[test]
    fn an_incomplete_frame_is_left_for_the_next_read() {
        let frame = server_frame(true, OP_TEXT, &[b'x'; 200]);
        let mut bytes = server_frame(true, OP_TEXT, b"first");
        let complete = bytes.len();
        bytes.extend_from_slice(&frame);
        // Every cut inside the second frame, header included, leaves it unconsumed.
        for cut in complete..bytes.len() {
            let (used, messages) = parse_all(&mut Reader::default(), &bytes[..cut]);
            assert_eq!(used, complete, "cut at {cut}");
            assert_eq!(messages, [Owned::Text(b"first".to_vec())]);
        }
    }

    #[test]
    fn fragments_are_joined_around_control_frames() {
        let mut reader = Reader::default();
        let mut bytes = server_frame(false, OP_TEXT, b"{\"a\":");
        bytes.extend(server_frame(true, OP_PING, b""));
        bytes.extend(server_frame(false, OP_CONTINUATION, b"1"));
        let (used, messages) = parse_all(&mut reader, &bytes);
        assert_eq!(used, bytes.len());
        assert_eq!(messages, [Owned::Ping(Vec::new())]);
        let last = server_frame(true, OP_CONTINUATION, b"}");
        let (_, messages) = parse_all(&mut reader, &last);
        assert_eq!(messages, [Owned::Text(b"{\"a\":1}".to_vec())]);
    }

    #[test]
    fn bad_frames_are_refused() {
        let parse = |bytes: &[u8]| Reader::default().parse(bytes, |_| {});
        assert_eq!(parse(&[0x81 | 0x40, 0]), Err(FrameError::ReservedBits));
        assert_eq!(parse(&[0x83, 0]), Err(FrameError::UnknownOpcode(3)));
        assert_eq!(parse(&[0x81, 0x80]), Err(FrameError::MaskedByServer));
        assert_eq!(parse(&[0x09, 0]), Err(FrameError::FragmentedControl));
        assert_eq!(parse(&[0x89, 126, 0, 126]), Err(FrameError::ControlTooLong));
        assert_eq!(parse(&[0x80, 0]), Err(FrameError::UnexpectedContinuation));
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(parse(&huge), Err(FrameError::TooLong(u64::MAX)));
    }

    #[test]
    fn client_frames_are_masked() {
        for len in [0, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_client_frame(&mut out, Outgoing::Text, &payload, len as u64 + 1);
            assert_eq!(out[0], 0x81);
            assert_eq!(out[1] & 0x80, 0x80, "mask bit");
            let (header_len, declared) = match out[1] & 0x7f {
                126 => (4, u16::from_be_bytes([out[2], out[3]]) as usize),
                127 => (
                    10,
                    u64::from_be_bytes(out[2..10].try_into().unwrap()) as usize,
                ),
                short => (2, short as usize),
            };
            assert_eq!(declared, len);
            let mask = &out[header_len..header_len + 4];
            let unmasked: Vec<u8> = out[header_len + 4..]
                .iter()
                .enumerate()
                .map(|(i, byte)| byte ^ mask[i % 4])
                .collect();
            assert_eq!(unmasked, payload);
        }
        let mut pong = Vec::new();
        encode_client_frame(&mut pong, Outgoing::Pong, b"", 1);
        assert_eq!(pong[0], 0x8a);
        let mut close = Vec::new();
        encode_client_frame(&mut close, Outgoing::Close, &1000u16.to_be_bytes(), 1);
        assert_eq!(close[0], 0x88);
    }
}
