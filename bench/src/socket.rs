//! Client sockets: TCP connected from a chosen loopback source address, and WebSocket
//! connections whose upgrade and framing are done by hand (see `ws`), so that nothing sits
//! between the generator and the frames.
//!
//! Reading is the generator's hot path: each read takes up to 64 KiB into a buffer shared by
//! every connection of the thread, and the messages in it are handed out in place, so receiving
//! costs no allocation, copy or lock per frame.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::stats::now_ns;
use crate::target::Endpoint;
use crate::ws::{self, Message, Outgoing};

/// Opens a TCP connection from `source_ip` and performs the WebSocket upgrade by hand.
pub async fn connect(
    endpoint: &Endpoint,
    path: &str,
    source_ip: Option<IpAddr>,
) -> anyhow::Result<WsStream> {
    let mut stream = connect_tcp(endpoint.addr, source_ip).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        endpoint.host_header,
        websocket_key(),
    );
    stream
        .write_all(request.as_bytes())
        .await
        .context("sending the upgrade request")?;
    let mut buffer = Vec::with_capacity(512);
    let header_end = loop {
        if buffer.len() > 16 * 1024 {
            bail!("upgrade response headers over 16 KiB");
        }
        let mut chunk = [0u8; 1024];
        let n = stream
            .read(&mut chunk)
            .await
            .context("reading the upgrade response")?;
        if n == 0 {
            bail!("connection closed during the upgrade");
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = memchr::memmem::find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
    };
    let status_line = buffer
        .split(|&byte| byte == b'\r')
        .next()
        .unwrap_or_default();
    if !status_line.starts_with(b"HTTP/1.1 101") {
        bail!("upgrade refused: {}", String::from_utf8_lossy(status_line));
    }
    let leftover = buffer.split_off(header_end);
    Ok(WsStream::new(stream, leftover))
}

/// Connects a TCP socket, first binding it to `source_ip` when given.
///
/// `IP_BIND_ADDRESS_NO_PORT` defers the choice of the local port to `connect`, so each source
/// address gets the whole ephemeral range for each destination.
pub async fn connect_tcp(addr: SocketAddr, source_ip: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source_ip) = source_ip {
        if source_ip.is_ipv4() {
            set_bind_address_no_port(&socket)?;
        }
        socket
            .bind(SocketAddr::new(source_ip, 0))
            .with_context(|| format!("binding to {source_ip}"))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn set_bind_address_no_port(socket: &TcpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let enable: libc::c_int = 1;
    // SAFETY: a plain setsockopt on a socket we own, with a correctly sized int.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&enable as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A `Sec-WebSocket-Key`: 16 bytes, base64. Servers only echo it back, so it need not be secret.
fn websocket_key() -> String {
    let nonce = now_ns().to_le_bytes();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&nonce);
    bytes[8..].copy_from_slice(&nonce.map(|byte| byte.rotate_left(3)));
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let triple = chunk.iter().enumerate().fold(0u32, |acc, (i, &byte)| {
            acc | u32::from(byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(triple >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Bytes one read may take. The buffer is per thread, not per connection.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// A client WebSocket connection after the upgrade.
pub struct WsStream {
    stream: TcpStream,
    reader: ws::Reader,
    /// The start of a frame whose end has not been read yet; usually empty.
    partial: Vec<u8>,
    /// Whether `partial` may hold whole frames: the bytes read past the upgrade response.
    parse_partial_first: bool,
    frames_sent: u64,
}

impl WsStream {
    fn new(stream: TcpStream, leftover: Vec<u8>) -> Self {
        Self {
            stream,
            reader: ws::Reader::default(),
            parse_partial_first: !leftover.is_empty(),
            partial: leftover,
            frames_sent: 0,
        }
    }

    /// Reads once, when the socket has bytes, and calls `on_message` with every message those
    /// bytes complete and the time they were read. Ready with an error at the end of the stream.
    ///
    /// A read that does not fill the buffer drained the socket, so tokio forgets its readiness
    /// and the next poll returns `Pending` without another system call.
    pub fn poll_batch(
        &mut self,
        context: &mut Context<'_>,
        on_message: &mut impl FnMut(Message<'_>, u64),
    ) -> Poll<io::Result<()>> {
        if self.parse_partial_first {
            self.parse_partial_first = false;
            let received_at = now_ns();
            let used = self
                .reader
                .parse(&self.partial, |message| on_message(message, received_at))
                .map_err(io::Error::other)?;
            self.partial.drain(..used);
            if used > 0 {
                return Poll::Ready(Ok(()));
            }
        }
        READ_BUFFER.with_borrow_mut(|buffer| {
            let mut read_buf = ReadBuf::new(buffer);
            ready!(Pin::new(&mut self.stream).poll_read(context, &mut read_buf))?;
            let n = read_buf.filled().len();
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            let received_at = now_ns();
            let mut deliver = |message: Message<'_>| on_message(message, received_at);
            if self.partial.is_empty() {
                let used = self
                    .reader
                    .parse(&buffer[..n], &mut deliver)
                    .map_err(io::Error::other)?;
                self.partial.extend_from_slice(&buffer[used..n]);
            } else {
                self.partial.extend_from_slice(&buffer[..n]);
                let used = self
                    .reader
                    .parse(&self.partial, &mut deliver)
                    .map_err(io::Error::other)?;
                self.partial.drain(..used);
                if self.partial.is_empty() && self.partial.capacity() > READ_CHUNK {
                    self.partial = Vec::new();
                }
            }
            Poll::Ready(Ok(()))
        })
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, kind: Outgoing, payload: &[u8]) -> io::Result<()> {
        self.frames_sent += 1;
        let mut frame = Vec::with_capacity(payload.len() + 14);
        ws::encode_client_frame(&mut frame, kind, payload, now_ns() ^ self.frames_sent);
        self.stream.write_all(&frame).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(websocket_key().len(), 24);
    }
}
