//! This node's live state: connections, channel subscriptions, presence members, signed-in users and
//! cache-channel events. No IO. Locks are `std::sync` locks held briefly and never across `.await`;
//! fan-out takes only the published channel's own read lock.

pub mod channel;
pub mod outbox;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytestring::ByteString;
use dashmap::DashMap;

use crate::{
    app::{App, AppId},
    protocol::{ChannelName, Member, SocketError, SocketId, UserId},
};
pub use channel::{Channel, ChannelFull, CountUpdate, Joined, Left, Reply};
pub use outbox::{Batch, Outbox, Pushed};

/// One open socket as the rest of the node sees it.
pub struct Connection {
    pub socket_id: SocketId,
    pub app: Arc<App>,
    pub outbox: Outbox,
}

pub type ConnHandle = Arc<Connection>;

/// A subscribed socket and the presence member it joined as.
pub type Subscription = (ConnHandle, Option<Member>);

/// The last event published to a cache channel (spec §8.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedEvent {
    pub event: String,
    pub data: String,
    pub expires_at: Instant,
}

/// Counts for one channel on this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    pub subscription_count: usize,
    pub user_count: usize,
}

#[derive(Default)]
struct AppState {
    n_connections: AtomicUsize,
    channels: DashMap<ChannelName, Arc<Channel>>,
    connections: DashMap<SocketId, ConnHandle>,
    /// Signed-in users and their sockets on this node.
    users: DashMap<UserId, Vec<ConnHandle>>,
    cache: DashMap<ChannelName, CachedEvent>,
    /// Keys already seen (idempotency keys, Salesforce notification ids) and when they may be forgotten.
    seen: DashMap<String, Instant>,
}

/// Keys remembered per app before a sweep is forced; beyond it new keys are not remembered.
const MAX_SEEN_KEYS: usize = 1_000_000;

/// All apps' state on this node. Apps are fixed at start-up.
pub struct Registry {
    apps: HashMap<AppId, AppState>,
    n_connections: AtomicUsize,
}

impl Registry {
    pub fn new<'a>(apps: impl IntoIterator<Item = &'a Arc<App>>) -> Registry {
        Registry {
            apps: apps
                .into_iter()
                .map(|app| (app.id.clone(), AppState::default()))
                .collect(),
            n_connections: AtomicUsize::new(0),
        }
    }

    fn app(&self, app_id: &AppId) -> Option<&AppState> {
        self.apps.get(app_id)
    }

    /// Open sockets on this node, all apps together.
    pub fn connection_count(&self) -> usize {
        self.n_connections.load(Ordering::Relaxed)
    }

    /// Open sockets of one app on this node.
    pub fn app_connection_count(&self, app_id: &AppId) -> usize {
        self.app(app_id)
            .map_or(0, |state| state.n_connections.load(Ordering::Relaxed))
    }

    /// Registers a new socket with a fresh socket id, enforcing the node and app connection limits.
    pub fn connect(
        &self,
        app: &Arc<App>,
        node_limit: Option<usize>,
        outbox_bytes: usize,
    ) -> Result<ConnHandle, SocketError> {
        let state = self.app(&app.id).ok_or(SocketError::AppDisabled)?;
        // Count first and undo on refusal, so concurrent connects cannot overshoot a limit.
        let n_node = self.n_connections.fetch_add(1, Ordering::Relaxed);
        if node_limit.is_some_and(|limit| n_node >= limit) {
            self.n_connections.fetch_sub(1, Ordering::Relaxed);
            return Err(SocketError::OverCapacity);
        }
        let n_app = state.n_connections.fetch_add(1, Ordering::Relaxed);
        if app.max_connections.is_some_and(|quota| n_app >= quota) {
            state.n_connections.fetch_sub(1, Ordering::Relaxed);
            self.n_connections.fetch_sub(1, Ordering::Relaxed);
            return Err(SocketError::OverQuota);
        }
        let mut rng = rand::rng();
        loop {
            let socket_id = SocketId::random(&mut rng);
            if let dashmap::Entry::Vacant(slot) = state.connections.entry(socket_id) {
                let conn = Arc::new(Connection {
                    socket_id,
                    app: app.clone(),
                    outbox: Outbox::new(outbox_bytes),
                });
                slot.insert(conn.clone());
                return Ok(conn);
            }
        }
    }

    /// Forgets a socket. Its subscriptions and sign-in are removed by the caller first.
    pub fn disconnect(&self, app_id: &AppId, socket_id: SocketId) {
        if let Some(state) = self.app(app_id)
            && state.connections.remove(&socket_id).is_some()
        {
            state.n_connections.fetch_sub(1, Ordering::Relaxed);
            self.n_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Every socket of one app on this node (for shutdown and tests).
    pub fn connections(&self, app_id: &AppId) -> Vec<ConnHandle> {
        self.app(app_id)
            .map(|state| {
                state
                    .connections
                    .iter()
                    .map(|entry| entry.value().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every socket on this node.
    pub fn all_connections(&self) -> Vec<ConnHandle> {
        self.apps
            .keys()
            .flat_map(|app_id| self.connections(app_id))
            .collect()
    }

    fn channel(&self, app_id: &AppId, channel: &ChannelName) -> Option<Arc<Channel>> {
        self.app(app_id)?
            .channels
            .get(channel)
            .map(|entry| entry.value().clone())
    }

    /// Adds `conn` to `channel`, creating it if needed; the join runs under the map shard's lock so a
    /// concurrent last-leave cannot remove the channel in between.
    pub fn subscribe(
        &self,
        channel: &ChannelName,
        conn: &ConnHandle,
        member: Option<Member>,
        max_members: usize,
        reply: Reply,
    ) -> Result<Joined, ChannelFull> {
        let Some(state) = self.app(&conn.app.id) else {
            return Err(ChannelFull);
        };
        let entry = state
            .channels
            .entry(channel.clone())
            .or_insert_with(|| Arc::new(Channel::new(channel.clone())));
        entry.value().join(conn, member, max_members, reply)
    }

    /// Every channel of an app on this node with its subscribers (for a cluster adapter's resync).
    pub fn subscriptions(&self, app_id: &AppId) -> Vec<(ChannelName, Vec<Subscription>)> {
        let Some(state) = self.app(app_id) else {
            return Vec::new();
        };
        state
            .channels
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().subscribers()))
            .collect()
    }

    /// Signed-in users of an app on this node with their sockets.
    pub fn signed_in_users(&self, app_id: &AppId) -> Vec<(UserId, Vec<ConnHandle>)> {
        self.app(app_id)
            .map(|state| {
                state
                    .users
                    .iter()
                    .map(|entry| (entry.key().clone(), entry.value().clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds `conn` to one of Herald's internal `#` channels (watchlists), with no reply to the client.
    pub fn join_internal(&self, channel: &ChannelName, conn: &ConnHandle) {
        if let Some(state) = self.app(&conn.app.id) {
            state
                .channels
                .entry(channel.clone())
                .or_insert_with(|| Arc::new(Channel::new(channel.clone())))
                .value()
                .join_quietly(conn);
        }
    }

    /// Removes a socket from a channel, dropping the channel once nobody is left.
    pub fn unsubscribe(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        socket_id: SocketId,
    ) -> Option<Left> {
        let state = self.app(app_id)?;
        let found = self.channel(app_id, channel)?;
        let left = found.leave(socket_id)?;
        if left.vacated {
            state.channels.remove_if(channel, |_, current| {
                Arc::ptr_eq(current, &found) && current.is_empty()
            });
        }
        Some(left)
    }

    /// Queues `frame` for the channel's subscribers on this node except `except`.
    pub fn broadcast(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        frame: &ByteString,
        except: Option<SocketId>,
    ) -> usize {
        match self.channel(app_id, channel) {
            Some(found) => found.broadcast(frame, except),
            None => 0,
        }
    }

    /// The `subscription_succeeded` reply from this node's state alone (when the cluster cannot answer).
    pub fn local_reply(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        presence: bool,
    ) -> Option<String> {
        Some(self.channel(app_id, channel)?.reply(presence))
    }

    pub fn counts(&self, app_id: &AppId, channel: &ChannelName) -> ChannelCounts {
        self.channel(app_id, channel)
            .map(|found| ChannelCounts {
                subscription_count: found.subscription_count(),
                user_count: found.user_count(),
            })
            .unwrap_or_default()
    }

    /// Occupied channels of an app with their counts, reserved `#` channels left out.
    pub fn channels(&self, app_id: &AppId) -> Vec<(ChannelName, ChannelCounts)> {
        let Some(state) = self.app(app_id) else {
            return Vec::new();
        };
        state
            .channels
            .iter()
            .filter(|entry| !entry.key().is_reserved())
            .map(|entry| {
                let counts = ChannelCounts {
                    subscription_count: entry.value().subscription_count(),
                    user_count: entry.value().user_count(),
                };
                (entry.key().clone(), counts)
            })
            .filter(|(_, counts)| counts.subscription_count > 0)
            .collect()
    }

    pub fn presence_users(&self, app_id: &AppId, channel: &ChannelName) -> Vec<UserId> {
        self.channel(app_id, channel)
            .map(|found| found.user_ids())
            .unwrap_or_default()
    }

    pub fn presence_member(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        user_id: &UserId,
    ) -> Option<Member> {
        self.channel(app_id, channel)?.member(user_id)
    }

    /// See `Channel::count_update`.
    pub fn count_update(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        now: Instant,
        busy_threshold: usize,
        interval: Duration,
    ) -> Option<CountUpdate> {
        Some(
            self.channel(app_id, channel)?
                .count_update(now, busy_threshold, interval),
        )
    }

    pub fn count_sent(&self, app_id: &AppId, channel: &ChannelName, now: Instant) {
        if let Some(found) = self.channel(app_id, channel) {
            found.count_sent(now);
        }
    }

    /// Records a signed-in socket; true when it is the user's first on this node.
    pub fn sign_in(&self, user_id: &UserId, conn: &ConnHandle) -> bool {
        let Some(state) = self.app(&conn.app.id) else {
            return false;
        };
        let mut sockets = state.users.entry(user_id.clone()).or_default();
        sockets.push(conn.clone());
        sockets.len() == 1
    }

    /// Forgets a signed-in socket; true when it was the user's last on this node.
    pub fn sign_out(&self, app_id: &AppId, user_id: &UserId, socket_id: SocketId) -> bool {
        let Some(state) = self.app(app_id) else {
            return false;
        };
        state
            .users
            .remove_if_mut(user_id, |_, sockets| {
                sockets.retain(|conn| conn.socket_id != socket_id);
                sockets.is_empty()
            })
            .is_some()
    }

    pub fn is_signed_in(&self, app_id: &AppId, user_id: &UserId) -> bool {
        self.app(app_id)
            .is_some_and(|state| state.users.contains_key(user_id))
    }

    /// The sockets signed in as `user_id` on this node.
    pub fn user_connections(&self, app_id: &AppId, user_id: &UserId) -> Vec<ConnHandle> {
        self.app(app_id)
            .and_then(|state| state.users.get(user_id).map(|sockets| sockets.clone()))
            .unwrap_or_default()
    }

    pub fn cache_store(&self, app_id: &AppId, channel: &ChannelName, event: CachedEvent) {
        if let Some(state) = self.app(app_id) {
            state.cache.insert(channel.clone(), event);
        }
    }

    /// The channel's cached event if it has not expired by `now`.
    pub fn cache_lookup(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        now: Instant,
    ) -> Option<CachedEvent> {
        let state = self.app(app_id)?;
        let cached = state.cache.get(channel)?.value().clone();
        if cached.expires_at <= now {
            state
                .cache
                .remove_if(channel, |_, current| current.expires_at <= now);
            return None;
        }
        Some(cached)
    }

    /// Drops expired cache entries and seen keys; called periodically so they do not hold memory.
    pub fn sweep(&self, now: Instant) {
        for state in self.apps.values() {
            state.cache.retain(|_, cached| cached.expires_at > now);
            state.seen.retain(|_, expires_at| *expires_at > now);
        }
    }

    /// Remembers `key` until `expires_at`; true when it was not already remembered (or had expired).
    pub fn first_seen(&self, app_id: &AppId, key: &str, now: Instant, expires_at: Instant) -> bool {
        let Some(state) = self.app(app_id) else {
            return true;
        };
        if state.seen.len() >= MAX_SEEN_KEYS {
            state.seen.retain(|_, expires| *expires > now);
            if state.seen.len() >= MAX_SEEN_KEYS {
                return true;
            }
        }
        match state.seen.entry(key.to_owned()) {
            dashmap::Entry::Occupied(mut entry) if *entry.get() <= now => {
                entry.insert(expires_at);
                true
            }
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(entry) => {
                entry.insert(expires_at);
                true
            }
        }
    }

    /// Forgets a remembered key, e.g. when the work it guarded failed and must be retried.
    pub fn forget(&self, app_id: &AppId, key: &str) {
        if let Some(state) = self.app(app_id) {
            state.seen.remove(key);
        }
    }
}

#[cfg(test)]
mod tests;
