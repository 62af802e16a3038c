//! Client sockets: TCP connected from a chosen loopback source address, and the WebSocket
//! upgrade done by hand so that no HTTP stack sits between the generator and the frames.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use fastwebsockets::{Role, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::stats::now_ns;
use crate::target::Endpoint;

/// Opens a TCP connection from `source_ip` and performs the WebSocket upgrade by hand.
pub async fn connect(
    endpoint: &Endpoint,
    path: &str,
    source_ip: Option<IpAddr>,
) -> anyhow::Result<WebSocket<Prefixed>> {
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
    Ok(WebSocket::after_handshake(
        Prefixed {
            leftover,
            position: 0,
            stream,
        },
        Role::Client,
    ))
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

/// A TCP stream that first yields the bytes read past the end of the upgrade response.
pub struct Prefixed {
    leftover: Vec<u8>,
    position: usize,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.position < this.leftover.len() {
            let n = buf.remaining().min(this.leftover.len() - this.position);
            buf.put_slice(&this.leftover[this.position..this.position + n]);
            this.position += n;
            if this.position == this.leftover.len() {
                this.leftover = Vec::new();
                this.position = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(context, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(context, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(context, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
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
