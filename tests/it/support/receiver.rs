//! A webhook receiver on a free port: a tiny HTTP/1.1 server that keeps header names exactly as sent,
//! answers with a settable status, and hands every request to the test.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// One received request.
#[derive(Debug, Clone)]
pub struct Hook {
    pub path: String,
    /// Header names as they were on the wire.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Hook {
    /// The value of a header, matching its name exactly (as PHP's verifier does).
    pub fn header_exact(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    hooks: mpsc::UnboundedReceiver<Hook>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    /// Starts a receiver answering 200.
    pub fn start() -> Receiver {
        Receiver::on(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Starts a receiver on a given listener (to come back on the same port).
    pub fn on(listener: std::net::TcpListener) -> Receiver {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let (sender, hooks) = mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let answer = status.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let sender = sender.clone();
                        let answer = answer.clone();
                        tokio::spawn(serve_connection(stream, sender, answer));
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Receiver {
            addr,
            status,
            hooks,
            thread: Some(thread),
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// The status later requests get.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The next request, within `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Hook {
        tokio::time::timeout(timeout, self.hooks.recv())
            .await
            .expect("a webhook arrived in time")
            .expect("receiver running")
    }

    pub async fn next(&mut self) -> Hook {
        self.next_within(Duration::from_secs(10)).await
    }

    /// Whether a request arrives within `window` (used only to prove something is not sent).
    pub async fn nothing_within(&mut self, window: Duration) -> bool {
        tokio::time::timeout(window, self.hooks.recv())
            .await
            .is_err()
    }

    /// Stops listening; the port is closed until a new receiver binds it.
    pub fn stop(mut self) -> SocketAddr {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.addr
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    hooks: mpsc::UnboundedSender<Hook>,
    status: Arc<AtomicU16>,
) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while buffer.len() < body_start + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[body_start..body_start + length]).into_owned();
        buffer.drain(..body_start + length);
        let code = status.load(Ordering::SeqCst);
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let response = format!("HTTP/1.1 {code} Status\r\nContent-Length: 0\r\n\r\n");
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        let _ = hooks.send(Hook {
            path,
            headers,
            body,
        });
    }
}
