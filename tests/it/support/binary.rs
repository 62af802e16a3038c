//! The real `herald` binary as a child process, for tests that must kill it with SIGKILL.

use std::{
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use super::{KEY, Rest, SECRET, WsClient};

pub struct BinaryServer {
    pub address: String,
    config: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl BinaryServer {
    /// Writes a configuration (listening on a free port, then `toml`) and starts the binary on it.
    pub fn start(toml: &str) -> BinaryServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("herald.toml");
        std::fs::write(
            &config,
            format!("[server]\nhost = \"127.0.0.1\"\nport = {port}\n{toml}"),
        )
        .unwrap();
        let mut server = BinaryServer {
            address: format!("127.0.0.1:{port}"),
            config,
            child: None,
            dir,
        };
        server.restart();
        server
    }

    /// A directory that lives as long as the server, for its files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts the binary again (after `kill`) with the same configuration.
    pub fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "error")
            .spawn()
            .expect("start the herald binary");
        self.child = Some(child);
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn rest(&self) -> Rest {
        Rest::new(format!("http://{}", self.address), "1", KEY, SECRET)
    }

    /// Waits (bounded) until `/ready` answers 200.
    pub async fn wait_until_ready(&self) {
        let started = Instant::now();
        loop {
            let ready = awc::Client::new()
                .get(format!("http://{}/ready", self.address))
                .send()
                .await;
            if matches!(ready, Ok(response) if response.status().is_success()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "herald never became ready"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client connected once the server is ready.
    pub async fn connect(&self) -> WsClient {
        self.wait_until_ready().await;
        WsClient::connect(&format!("ws://{}/app/{KEY}?protocol=7", self.address)).await
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        self.kill();
    }
}
