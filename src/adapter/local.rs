//! The single-node adapter: fan-out and queries answered straight from this node's registry.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytestring::ByteString;

use super::{Adapter, AdapterError};
use crate::{
    app::AppId,
    protocol::{ChannelName, Member, SocketError, SocketId, UserId},
    registry::{CachedEvent, ChannelCounts, ConnHandle, Joined, Left, Registry, Reply},
};

pub struct LocalAdapter {
    registry: Arc<Registry>,
}

impl LocalAdapter {
    pub fn new(registry: Arc<Registry>) -> LocalAdapter {
        LocalAdapter { registry }
    }
}

#[async_trait]
impl Adapter for LocalAdapter {
    fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    async fn publish(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        frame: ByteString,
        except: Option<SocketId>,
    ) -> Result<(), AdapterError> {
        self.registry.broadcast(app_id, channel, &frame, except);
        Ok(())
    }

    async fn subscribe(
        &self,
        channel: &ChannelName,
        conn: &ConnHandle,
        member: Option<Member>,
    ) -> Result<Joined, AdapterError> {
        let max_members = conn.app.limits.max_presence_members;
        self.registry
            .subscribe(channel, conn, member, max_members, Reply::Now)
            .map_err(|_| AdapterError::ChannelFull)
    }

    async fn unsubscribe(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        socket_id: SocketId,
    ) -> Result<Option<Left>, AdapterError> {
        Ok(self.registry.unsubscribe(app_id, channel, socket_id))
    }

    async fn channel_counts(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<ChannelCounts, AdapterError> {
        Ok(self.registry.counts(app_id, channel))
    }

    async fn channels(
        &self,
        app_id: &AppId,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, AdapterError> {
        Ok(self.registry.channels(app_id))
    }

    async fn presence_users(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<Vec<UserId>, AdapterError> {
        Ok(self.registry.presence_users(app_id, channel))
    }

    async fn sign_in(&self, user_id: &UserId, conn: &ConnHandle) -> Result<bool, AdapterError> {
        Ok(self.registry.sign_in(user_id, conn))
    }

    async fn sign_out(
        &self,
        app_id: &AppId,
        user_id: &UserId,
        socket_id: SocketId,
    ) -> Result<bool, AdapterError> {
        Ok(self.registry.sign_out(app_id, user_id, socket_id))
    }

    async fn online(&self, app_id: &AppId, user_ids: &[UserId]) -> Result<Vec<bool>, AdapterError> {
        Ok(user_ids
            .iter()
            .map(|user_id| self.registry.is_signed_in(app_id, user_id))
            .collect())
    }

    async fn terminate_user(&self, app_id: &AppId, user_id: &UserId) -> Result<(), AdapterError> {
        for conn in self.registry.user_connections(app_id, user_id) {
            conn.outbox.close(SocketError::TerminatedByApp);
        }
        Ok(())
    }

    async fn cache_store(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        event: &str,
        data: &str,
        ttl: Duration,
    ) -> Result<(), AdapterError> {
        let cached = CachedEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            expires_at: Instant::now() + ttl,
        };
        self.registry.cache_store(app_id, channel, cached);
        Ok(())
    }

    async fn cache_lookup(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<Option<CachedEvent>, AdapterError> {
        Ok(self.registry.cache_lookup(app_id, channel, Instant::now()))
    }

    async fn first_seen(
        &self,
        app_id: &AppId,
        key: &str,
        ttl: Duration,
    ) -> Result<bool, AdapterError> {
        let now = Instant::now();
        Ok(self.registry.first_seen(app_id, key, now, now + ttl))
    }

    async fn forget(&self, app_id: &AppId, key: &str) -> Result<(), AdapterError> {
        self.registry.forget(app_id, key);
        Ok(())
    }
}
