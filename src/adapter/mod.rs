//! The fan-out seam: every publish and every cluster-wide question goes through `Adapter`.
//! `local` serves one node from its registry; a Redis adapter serves a cluster behind the same trait.

pub mod local;
pub mod redis;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use bytestring::ByteString;

use crate::{
    app::AppId,
    protocol::{ChannelName, Member, SocketId, UserId},
    registry::{CachedEvent, ChannelCounts, ConnHandle, Joined, Left, Registry},
};
pub use local::LocalAdapter;
pub use redis::{ClusterNotice, RedisAdapter};

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("the presence channel is full")]
    ChannelFull,
    #[error("cluster backend unavailable: {0}")]
    Unavailable(String),
}

/// Fan-out and cluster-wide state. Implementations must be cheap to call from many tasks at once.
#[async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// This node's own sockets and subscriptions.
    fn registry(&self) -> &Arc<Registry>;

    /// Delivers `frame`, serialized once, to every subscriber of `channel` in the cluster but `except`.
    async fn publish(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        frame: ByteString,
        except: Option<SocketId>,
    ) -> Result<(), AdapterError>;

    /// Joins `conn` to `channel` and queues its `subscription_succeeded`; first-join is decided cluster-wide.
    async fn subscribe(
        &self,
        channel: &ChannelName,
        conn: &ConnHandle,
        member: Option<Member>,
    ) -> Result<Joined, AdapterError>;

    /// Removes a socket from a channel; last-leave is decided cluster-wide.
    async fn unsubscribe(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        socket_id: SocketId,
    ) -> Result<Option<Left>, AdapterError>;

    async fn channel_counts(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<ChannelCounts, AdapterError>;

    /// Occupied, non-reserved channels with their counts.
    async fn channels(
        &self,
        app_id: &AppId,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, AdapterError>;

    async fn presence_users(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<Vec<UserId>, AdapterError>;

    /// Records a signed-in socket; true when the user just came online anywhere in the cluster.
    async fn sign_in(&self, user_id: &UserId, conn: &ConnHandle) -> Result<bool, AdapterError>;

    /// Forgets a signed-in socket; true when the user just went offline everywhere.
    async fn sign_out(
        &self,
        app_id: &AppId,
        user_id: &UserId,
        socket_id: SocketId,
    ) -> Result<bool, AdapterError>;

    /// Which of `user_ids` are signed in somewhere, in the same order.
    async fn online(&self, app_id: &AppId, user_ids: &[UserId]) -> Result<Vec<bool>, AdapterError>;

    /// Closes every socket signed in as `user_id` with 4009.
    async fn terminate_user(&self, app_id: &AppId, user_id: &UserId) -> Result<(), AdapterError>;

    /// Stores a cache channel's last event for `ttl`.
    async fn cache_store(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        event: &str,
        data: &str,
        ttl: Duration,
    ) -> Result<(), AdapterError>;

    async fn cache_lookup(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<Option<CachedEvent>, AdapterError>;

    /// Remembers `key` for `ttl` cluster-wide; true the first time (idempotency keys, notification ids).
    async fn first_seen(
        &self,
        app_id: &AppId,
        key: &str,
        ttl: Duration,
    ) -> Result<bool, AdapterError>;

    /// Forgets a remembered key so a retry of failed work is not taken for a duplicate.
    async fn forget(&self, app_id: &AppId, key: &str) -> Result<(), AdapterError>;

    /// Whether the cluster backend answers; `/ready` reports it.
    fn healthy(&self) -> bool {
        true
    }

    /// Leaves the cluster on a graceful shutdown, after the sessions are gone.
    async fn shutdown(&self) {}
}
