//! The WebSocket wire on the raw TCP stream once the HTTP upgrade is done, framed with actix-http's
//! frame parser. An idle socket holds no buffers, and everything queued for a socket goes out in one
//! `write` call: under load one syscall carries many frames, which is most of a delivery's cost.

use std::io;

use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser, ProtocolError};
use actix_web::rt::net::TcpStream;
use bytes::{Bytes, BytesMut};

/// Room reserved for a read; a socket's buffer exists only while it holds a partial frame.
const READ_CHUNK: usize = 4096;

/// Capacity the per-thread write buffer keeps between uses.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    /// Where a batch of frames is encoded before its one `write`; reused by every socket of the thread.
    static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::with_capacity(SCRATCH_KEEP));
}

/// Appends a text frame.
pub(super) fn text(dst: &mut BytesMut, payload: &[u8]) {
    Parser::write_message(dst, payload, OpCode::Text, true, false);
}

/// Appends a Pong frame answering a Ping.
pub(super) fn pong(dst: &mut BytesMut, payload: &[u8]) {
    Parser::write_message(dst, payload, OpCode::Pong, true, false);
}

/// Appends a Close frame with `code` and `reason` (cut to fit a control frame).
pub(super) fn close(dst: &mut BytesMut, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = CloseReason {
        code: CloseCode::Other(code),
        description: Some(reason[..end].to_owned()),
    };
    Parser::write_close(dst, Some(reason), false);
}

/// One complete message from the client.
#[derive(Debug)]
pub(super) enum Incoming {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close,
    /// A frame (or fragmented message) over the size limit.
    TooLarge,
    /// Anything the parser rejects: unmasked frames, bad opcodes, broken fragments.
    Invalid(String),
}

/// What one read produced.
pub(super) enum ReadOutcome {
    /// Keep reading; `Incoming` messages may have been decoded.
    Open,
    /// The client closed the TCP stream, or it failed.
    Ended,
}

pub(super) struct Transport {
    io: TcpStream,
    read_buf: BytesMut,
    /// A fragmented message being reassembled: whether it is text, and its bytes so far.
    fragment: Option<(bool, BytesMut)>,
    /// Encoded bytes the kernel has not accepted yet.
    unwritten: BytesMut,
    max_message: usize,
}

impl Transport {
    /// Takes over the stream; `leftover` holds bytes read past the HTTP request.
    pub fn new(io: TcpStream, leftover: BytesMut, max_message: usize) -> Transport {
        // The HTTP layer's read buffer is large; keep only the bytes it held, usually none.
        let read_buf = if leftover.is_empty() {
            BytesMut::new()
        } else {
            BytesMut::from(&leftover[..])
        };
        Transport {
            io,
            read_buf,
            fragment: None,
            unwritten: BytesMut::new(),
            max_message,
        }
    }

    /// Resolves when the socket has something to read (data, end of stream, or an error).
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Resolves when the kernel takes more bytes.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Reads what the socket has and decodes every complete message into `messages`.
    pub fn read(&mut self, messages: &mut Vec<Incoming>) -> ReadOutcome {
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        let outcome = match self.io.try_read_buf(&mut self.read_buf) {
            Ok(0) => ReadOutcome::Ended,
            Ok(_) => ReadOutcome::Open,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Open,
            Err(_) => ReadOutcome::Ended,
        };
        self.decode(messages);
        if self.read_buf.is_empty() {
            // Idle sockets keep no read buffer.
            self.read_buf = BytesMut::new();
        }
        outcome
    }

    fn decode(&mut self, messages: &mut Vec<Incoming>) {
        loop {
            let parsed = Parser::parse(&mut self.read_buf, true, self.max_message);
            let (finished, opcode, payload) = match parsed {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(ProtocolError::Overflow) => {
                    messages.push(Incoming::TooLarge);
                    self.read_buf.clear();
                    return;
                }
                Err(error) => {
                    messages.push(Incoming::Invalid(error.to_string()));
                    self.read_buf.clear();
                    return;
                }
            };
            let payload = payload.unwrap_or_default();
            let message = match opcode {
                OpCode::Text | OpCode::Binary if finished => {
                    if self.fragment.is_some() {
                        Some(Incoming::Invalid(
                            "a new message started inside a fragmented one".into(),
                        ))
                    } else if opcode == OpCode::Text {
                        Some(Incoming::Text(payload.freeze()))
                    } else {
                        Some(Incoming::Binary(payload.freeze()))
                    }
                }
                OpCode::Text | OpCode::Binary => {
                    self.fragment = Some((opcode == OpCode::Text, payload));
                    None
                }
                OpCode::Continue => self.continue_fragment(finished, &payload),
                OpCode::Ping => Some(Incoming::Ping(payload.freeze())),
                OpCode::Pong => Some(Incoming::Pong),
                OpCode::Close => Some(Incoming::Close),
                OpCode::Bad => Some(Incoming::Invalid("bad opcode".into())),
            };
            if let Some(message) = message {
                let stop = matches!(
                    message,
                    Incoming::TooLarge | Incoming::Invalid(_) | Incoming::Close
                );
                messages.push(message);
                if stop {
                    self.read_buf.clear();
                    return;
                }
            }
        }
    }

    fn continue_fragment(&mut self, finished: bool, payload: &[u8]) -> Option<Incoming> {
        let Some((text, bytes)) = self.fragment.as_mut() else {
            return Some(Incoming::Invalid(
                "continuation without a first fragment".into(),
            ));
        };
        if bytes.len() + payload.len() > self.max_message {
            self.fragment = None;
            return Some(Incoming::TooLarge);
        }
        bytes.extend_from_slice(payload);
        if !finished {
            return None;
        }
        let text = *text;
        let (_, bytes) = self.fragment.take()?;
        Some(if text {
            Incoming::Text(bytes.freeze())
        } else {
            Incoming::Binary(bytes.freeze())
        })
    }

    /// Encodes frames with `encode` and writes them, in one call when the kernel takes them all.
    /// Frames are encoded into a per-thread buffer, so writing allocates nothing; only bytes the kernel
    /// does not take yet are copied into the socket's own buffer.
    pub fn send(&mut self, encode: impl FnOnce(&mut BytesMut)) -> io::Result<()> {
        if self.has_unwritten() {
            encode(&mut self.unwritten);
            return self.flush();
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            encode(&mut scratch);
            let mut written = 0;
            while written < scratch.len() {
                match self.io.try_write(&scratch[written..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => written += n,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) => return Err(error),
                }
            }
            if written < scratch.len() {
                self.unwritten.extend_from_slice(&scratch[written..]);
            }
            if scratch.capacity() > SCRATCH_KEEP {
                *scratch = BytesMut::with_capacity(SCRATCH_KEEP);
            }
            Ok(())
        })
    }

    pub fn has_unwritten(&self) -> bool {
        !self.unwritten.is_empty()
    }

    /// Writes as much as the kernel takes now, in one call. Errors mean the peer is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.unwritten.is_empty() {
            match self.io.try_write(&self.unwritten) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    bytes::Buf::advance(&mut self.unwritten, n);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        // Idle sockets keep no write buffer either.
        self.unwritten = BytesMut::new();
        Ok(())
    }

    /// Reads and discards until the client ends its side of the stream, for at most `limit`.
    pub async fn linger(mut self, limit: std::time::Duration) {
        let drained = async {
            let mut scratch = [0u8; 512];
            loop {
                if self.io.readable().await.is_err() {
                    return;
                }
                match self.io.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(limit, drained).await;
        self.read_buf = BytesMut::new();
    }

    /// Ends our side of the stream after the last frame (a FIN, so the client reads everything first).
    pub fn shutdown_write(&mut self) {
        // The stream is dropped right after; a failure here changes nothing.
        let _ = socket2::SockRef::from(&self.io).shutdown(std::net::Shutdown::Write);
    }
}
