//! Test support: the real server on 127.0.0.1:0 in its own thread, a Pusher WebSocket client,
//! and an HTTP client that signs requests the way the SDKs do.

#![allow(dead_code)]

pub mod binary;
pub mod receiver;
pub mod redis;
pub mod rest;
pub mod ws;

use std::{
    net::{SocketAddr, TcpListener},
    thread::JoinHandle,
    time::Duration,
};

use herald::config::Config;
use tokio_util::sync::CancellationToken;

pub use rest::Rest;
pub use ws::WsClient;

/// How long any single read waits before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub const APP_ID: &str = "1";
pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret";

/// The base configuration of most tests: one app with every feature on, two workers, and `extra` TOML
/// appended (for `[apps.1]` keys, write them with `app_extra`).
pub fn config_with(server_extra: &str, app_extra: &str, more: &str) -> Config {
    let text = format!(
        "[server]\nworkers = 2\nshutdown_timeout = \"5s\"\n{server_extra}\n\
         [apps.1]\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\nclient_events = true\n{app_extra}\n{more}\n"
    );
    Config::from_toml(&text).expect("test configuration is valid")
}

pub fn config() -> Config {
    config_with("", "", "")
}

/// A running server; dropping it drains and joins it.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// Logs from the servers under test go to the test output when `RUST_LOG` is set.
fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// Starts `herald::server::run` on an ephemeral port in its own thread and actix system.
pub fn spawn_server(config: Config) -> TestServer {
    init_logging();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("local address");
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(herald::server::run(config, listener, token))
    });
    TestServer {
        addr,
        shutdown,
        thread: Some(thread),
    }
}

impl TestServer {
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client connected to `/app/{KEY}?protocol=7` that has read `connection_established`.
    pub async fn connect(&self) -> WsClient {
        WsClient::connect(&self.ws_url(&format!(
            "/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false"
        )))
        .await
    }

    pub fn rest(&self) -> Rest {
        Rest::new(self.http_url(""), APP_ID, KEY, SECRET)
    }

    /// Starts draining, as SIGTERM does, and waits for the server to stop.
    pub fn shut_down(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("server thread")
    }

    pub fn start_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits for the server thread to end after `start_shutdown`.
    pub fn join(mut self) -> std::io::Result<()> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("server thread")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
