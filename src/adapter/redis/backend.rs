//! One Redis connection per node, to a single Redis or a Redis Cluster: commands and pub/sub share it
//! (RESP3 pushes), and it reconnects by itself with back-off, resubscribing as it does.
//! While Redis is known to be down, commands fail at once instead of waiting for reconnects, so sessions
//! never stall on Redis; only the heartbeat (a probe handle) keeps trying.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{
    Cmd, ProtocolVersion, RedisFuture, RedisResult, Value,
    aio::{AsyncPushSender, ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

use crate::config::RedisTarget;

/// How long one command may take before the node treats Redis as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest a command may wait in all, reconnect attempts included.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A cloneable handle; clones share the connection and the health flag.
#[derive(Clone)]
pub(super) struct Backend {
    connection: Connection,
    /// False while Redis is down; set by failures and by the heartbeat.
    healthy: Arc<AtomicBool>,
    /// The heartbeat's handle sends commands even while Redis is down, to notice its return.
    probe: bool,
}

impl Backend {
    /// Connects; pushed pub/sub messages go to `push`.
    pub async fn connect(target: &RedisTarget, push: impl AsyncPushSender) -> RedisResult<Backend> {
        let connection = match target {
            RedisTarget::Single(url) => {
                let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())?;
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_protocol(ProtocolVersion::RESP3);
                let client = redis::Client::open(info.set_redis_settings(settings))?;
                let config = ConnectionManagerConfig::new()
                    .set_push_sender(push)
                    .set_automatic_resubscription()
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_min_delay(Duration::from_millis(100))
                    .set_max_delay(Duration::from_secs(5));
                Connection::Single(ConnectionManager::new_with_config(client, config).await?)
            }
            RedisTarget::Cluster(urls) => {
                let client = ClusterClientBuilder::new(urls.iter().map(String::as_str))
                    .use_protocol(ProtocolVersion::RESP3)
                    .push_sender(push)
                    .connection_timeout(CONNECTION_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2)
                    .build()?;
                Connection::Cluster(client.get_async_connection().await?)
            }
        };
        Ok(Backend {
            connection,
            healthy: Arc::new(AtomicBool::new(true)),
            probe: false,
        })
    }

    /// A handle for the heartbeat, which keeps calling Redis while it is down.
    pub fn probe(&self) -> Backend {
        Backend {
            probe: true,
            ..self.clone()
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records whether Redis answers; returns the previous state.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed)
    }

    fn refuse(&self) -> Option<redis::RedisError> {
        (!self.probe && !self.is_healthy()).then(|| {
            std::io::Error::new(std::io::ErrorKind::NotConnected, "Redis is unavailable").into()
        })
    }

    /// Subscribes to a pub/sub channel: sharded on a Redis Cluster, so it lives on one shard.
    pub async fn subscribe(&self, channel: &str) -> RedisResult<()> {
        match self.connection.clone() {
            Connection::Single(mut connection) => connection.subscribe(channel).await,
            Connection::Cluster(mut connection) => connection.ssubscribe(channel).await,
        }
    }

    /// The publish command for this kind of deployment.
    pub fn publish_command(&self, channel: &str, payload: &[u8]) -> Cmd {
        let name = match self.connection {
            Connection::Single(_) => "PUBLISH",
            Connection::Cluster(_) => "SPUBLISH",
        };
        let mut command = redis::cmd(name);
        command.arg(channel).arg(payload);
        command
    }
}

fn timed_out() -> redis::RedisError {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "Redis did not answer in time").into()
}

impl ConnectionLike for Backend {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if let Some(error) = self.refuse() {
            return Box::pin(async move { Err(error) });
        }
        Box::pin(async move {
            let call = match &mut self.connection {
                Connection::Single(connection) => connection.req_packed_command(cmd),
                Connection::Cluster(connection) => connection.req_packed_command(cmd),
            };
            tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .unwrap_or_else(|_| Err(timed_out()))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if let Some(error) = self.refuse() {
            return Box::pin(async move { Err(error) });
        }
        Box::pin(async move {
            let call = match &mut self.connection {
                Connection::Single(connection) => {
                    connection.req_packed_commands(pipeline, offset, count)
                }
                Connection::Cluster(connection) => {
                    connection.req_packed_commands(pipeline, offset, count)
                }
            };
            tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .unwrap_or_else(|_| Err(timed_out()))
        })
    }

    fn get_db(&self) -> i64 {
        match &self.connection {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}
