//! The Redis adapter: many nodes behind a load balancer act as one Pusher server.
//! Every node delivers to its own sockets from its registry; one publish per event reaches the other
//! nodes over the app's pub/sub channel; cluster-wide counts, presence and sign-ins live in Redis,
//! changed by Lua scripts so first-join and last-leave are decided exactly once. When Redis is down
//! the node keeps serving its own sockets and resynchronises when Redis returns (`liveness`).

mod backend;
mod liveness;
mod message;
mod outbox;
mod scripts;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytestring::ByteString;
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::{Adapter, AdapterError};
use crate::webhooks::LeaveArbiter;
use crate::{
    app::{AppId, Apps},
    config::RedisConfig,
    protocol::{ChannelKind, ChannelName, Member, SocketError, SocketId, UserId, frames},
    registry::{CachedEvent, ChannelCounts, ConnHandle, Joined, Left, Registry, Reply},
};
use backend::Backend;
use message::NodeMessage;
pub use outbox::RedisOutbox;
use scripts::AppKeys;

/// Changes the cluster learned about without a session asking, which webhooks must still hear of
/// (a dead node's sockets removed, or a resynchronisation after an outage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterNotice {
    ChannelOccupied {
        app_id: AppId,
        channel: String,
    },
    ChannelVacated {
        app_id: AppId,
        channel: String,
    },
    MemberAdded {
        app_id: AppId,
        channel: String,
        user_id: String,
    },
    MemberRemoved {
        app_id: AppId,
        channel: String,
        user_id: String,
    },
}

struct Scripts {
    join: redis::Script,
    leave: redis::Script,
    sign_in: redis::Script,
    sign_out: redis::Script,
    remove_node: redis::Script,
}

pub struct RedisAdapter {
    registry: Arc<Registry>,
    backend: Backend,
    /// Random per process start, so a restarted node never inherits a dead one's state.
    node_id: String,
    config: RedisConfig,
    /// The webhook grace window before `channel_vacated` and `member_removed`.
    grace: Duration,
    apps: Apps,
    keys: HashMap<AppId, AppKeys>,
    scripts: Scripts,
    /// Set when Redis missed changes and this node's share of the state must be rewritten.
    needs_resync: AtomicBool,
    notices: mpsc::UnboundedSender<ClusterNotice>,
}

fn unavailable(error: redis::RedisError) -> AdapterError {
    AdapterError::Unavailable(error.to_string())
}

impl RedisAdapter {
    /// Connects, subscribes to every app's channel and starts the heartbeat; returns the adapter and
    /// the notices webhooks must hear.
    pub async fn start(
        config: RedisConfig,
        grace: Duration,
        apps: Apps,
        registry: Arc<Registry>,
    ) -> Result<(Arc<RedisAdapter>, mpsc::UnboundedReceiver<ClusterNotice>), AdapterError> {
        let node_id = format!("{:016x}", rand::random::<u64>());
        let keys: HashMap<AppId, AppKeys> = apps
            .iter()
            .map(|app| {
                (
                    app.id.clone(),
                    AppKeys::new(&config.key_prefix, app.id.as_str()),
                )
            })
            .collect();
        let listener = Listener {
            registry: registry.clone(),
            node_id: node_id.clone(),
            apps_by_channel: keys
                .iter()
                .map(|(app_id, keys)| (keys.events(), app_id.clone()))
                .collect(),
        };
        let backend = Backend::connect(&config.target, listener)
            .await
            .map_err(unavailable)?;
        for app_keys in keys.values() {
            backend
                .subscribe(&app_keys.events())
                .await
                .map_err(unavailable)?;
        }
        let (notices, notices_received) = mpsc::unbounded_channel();
        let adapter = Arc::new(RedisAdapter {
            registry,
            backend,
            node_id,
            config,
            grace,
            apps,
            keys,
            scripts: Scripts {
                join: scripts::join(),
                leave: scripts::leave(),
                sign_in: scripts::sign_in(),
                sign_out: scripts::sign_out(),
                remove_node: scripts::remove_node(),
            },
            needs_resync: AtomicBool::new(false),
            notices,
        });
        adapter.heartbeat().await.map_err(unavailable)?;
        tracing::info!(node = %adapter.node_id, "joined the Redis cluster");
        actix_web::rt::spawn(liveness::run(adapter.clone()));
        Ok((adapter, notices_received))
    }

    fn keys(&self, app_id: &AppId) -> Result<&AppKeys, AdapterError> {
        self.keys
            .get(app_id)
            .ok_or_else(|| AdapterError::Unavailable(format!("unknown app {app_id}")))
    }

    fn connection(&self) -> Backend {
        self.backend.clone()
    }

    /// Records a failed Redis call: the node degrades to local answers and resynchronises later.
    fn degraded(&self, error: &redis::RedisError) {
        self.needs_resync.store(true, Ordering::Relaxed);
        if self.backend.set_healthy(false) {
            tracing::error!(%error, "Redis is unavailable; serving this node's sockets only until it returns");
        }
    }

    /// Sends a node message on the app's channel; a failure marks the node degraded.
    async fn send(&self, app_id: &AppId, message: &NodeMessage<'_>) -> Result<(), AdapterError> {
        let keys = self.keys(app_id)?;
        let command = self
            .backend
            .publish_command(&keys.events(), &message::encode(message));
        command
            .exec_async(&mut self.connection())
            .await
            .map_err(|error| {
                self.degraded(&error);
                unavailable(error)
            })
    }

    async fn run_join(
        &self,
        keys: &AppKeys,
        channel: &ChannelName,
        member: Option<&Member>,
        max_members: usize,
    ) -> Result<Option<ClusterJoin>, redis::RedisError> {
        let (presence, user, info) = presence_args(member);
        let value: Value = self
            .scripts
            .join
            .key(keys.channels())
            .key(keys.subscriptions(channel.as_str()))
            .key(keys.node(&self.node_id))
            .key(keys.presence_users(channel.as_str()))
            .key(keys.presence_info(channel.as_str()))
            .key(keys.presence_nodes(channel.as_str()))
            .key(keys.grace(channel.as_str(), None))
            .key(keys.grace(channel.as_str(), member.map(|m| m.user_id.as_str())))
            .arg(&self.node_id)
            .arg(channel.as_str())
            .arg(presence)
            .arg(user)
            .arg(info)
            .arg(max_members)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(ClusterJoin::parse(value))
    }

    async fn run_leave(
        &self,
        keys: &AppKeys,
        channel: &ChannelName,
        user_id: Option<&UserId>,
    ) -> Result<(bool, bool, i64), redis::RedisError> {
        let (vacated, member_removed, total): (i64, i64, i64) = self
            .scripts
            .leave
            .key(keys.channels())
            .key(keys.subscriptions(channel.as_str()))
            .key(keys.node(&self.node_id))
            .key(keys.presence_users(channel.as_str()))
            .key(keys.presence_info(channel.as_str()))
            .key(keys.presence_nodes(channel.as_str()))
            .key(keys.grace(channel.as_str(), None))
            .key(keys.grace(channel.as_str(), user_id.map(UserId::as_str)))
            .arg(&self.node_id)
            .arg(channel.as_str())
            .arg(if user_id.is_some() { "1" } else { "0" })
            .arg(user_id.map_or("", UserId::as_str))
            .arg(self.grace_key_ms())
            .invoke_async(&mut self.connection())
            .await?;
        Ok((vacated == 1, member_removed == 1, total))
    }

    async fn run_sign(
        &self,
        keys: &AppKeys,
        script: &redis::Script,
        user_id: &UserId,
    ) -> Result<bool, redis::RedisError> {
        let changed: i64 = script
            .key(keys.users())
            .key(keys.user_nodes())
            .arg(&self.node_id)
            .arg(user_id.as_str())
            .invoke_async(&mut self.connection())
            .await?;
        Ok(changed == 1)
    }

    /// The webhook outbox in this Redis, shared by the cluster. A node holds a target for three times
    /// the request timeout, so a node that died mid-request hands over soon after.
    pub fn outbox(&self, request_timeout: Duration) -> Arc<RedisOutbox> {
        let lease = (request_timeout * 3).max(Duration::from_secs(1));
        RedisOutbox::new(
            self.backend.clone(),
            self.node_id.clone(),
            &self.config.key_prefix,
            self.apps.clone(),
            lease,
        )
    }

    /// How long a pending leave's marker lives: the grace window, plus a margin so it outlives the timer
    /// of the node that will confirm it (a node that dies first leaves it to expire).
    fn grace_key_ms(&self) -> u64 {
        if self.grace.is_zero() {
            return 0;
        }
        (self.grace + Duration::from_secs(30)).as_millis() as u64
    }

    /// Whether Redis answered the last call; reported by `/ready`.
    pub fn is_healthy(&self) -> bool {
        self.backend.is_healthy()
    }
}

/// The presence part of a join script's arguments.
fn presence_args(member: Option<&Member>) -> (&'static str, String, String) {
    match member {
        Some(member) => (
            "1",
            member.user_id.to_string(),
            member
                .user_info
                .as_ref()
                .map_or_else(String::new, |info| info.get().to_owned()),
        ),
        None => ("0", String::new(), String::new()),
    }
}

/// A join as the cluster decided it.
struct ClusterJoin {
    occupied: bool,
    member_added: bool,
    member_resumed: bool,
    total: usize,
    /// Presence members cluster-wide: user id and raw `user_info` ("" when none).
    members: Vec<(String, String)>,
}

impl ClusterJoin {
    /// `None` when the presence channel is full.
    fn parse(value: Value) -> Option<ClusterJoin> {
        let Value::Array(items) = value else {
            return None;
        };
        let int = |value: Option<&Value>| match value {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        if int(items.first()) < 0 {
            return None;
        }
        let mut members = Vec::new();
        if let Some(Value::Array(flat)) = items.get(3) {
            for pair in flat.chunks(2) {
                if let [user, info] = pair {
                    members.push((text(user), text(info)));
                }
            }
        }
        Some(ClusterJoin {
            occupied: int(items.first()) == 1,
            member_added: int(items.get(1)) == 1,
            member_resumed: int(items.get(4)) == 1,
            total: int(items.get(2)).max(0) as usize,
            members,
        })
    }

    /// The presence `subscription_succeeded` with the cluster-wide member list.
    fn presence_reply(&self, channel: &ChannelName) -> String {
        let infos: Vec<Option<Box<serde_json::value::RawValue>>> = self
            .members
            .iter()
            .map(|(_, info)| serde_json::value::RawValue::from_string(info.clone()).ok())
            .collect();
        let members = self
            .members
            .iter()
            .zip(&infos)
            .map(|((user_id, _), info)| frames::MemberRef {
                user_id,
                user_info: info.as_deref(),
            })
            .collect::<Vec<_>>();
        frames::presence_subscription_succeeded(
            channel.as_str(),
            members.iter().map(|member| frames::MemberRef {
                user_id: member.user_id,
                user_info: member.user_info,
            }),
        )
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Int(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Receives pub/sub pushes and delivers them to this node's sockets, on the connection's own task.
struct Listener {
    registry: Arc<Registry>,
    node_id: String,
    apps_by_channel: HashMap<String, AppId>,
}

impl redis::aio::AsyncPushSender for Listener {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        if !matches!(info.kind, PushKind::Message | PushKind::SMessage) {
            return Ok(());
        }
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
            (info.data.first(), info.data.get(1))
        else {
            return Ok(());
        };
        let Some(app_id) = std::str::from_utf8(channel)
            .ok()
            .and_then(|name| self.apps_by_channel.get(name))
        else {
            return Ok(());
        };
        match message::decode(payload) {
            // This node delivered its own messages when it sent them.
            Some(NodeMessage::Broadcast { origin, .. } | NodeMessage::Terminate { origin, .. })
                if origin == self.node_id => {}
            Some(NodeMessage::Broadcast {
                channel,
                except,
                frame,
                ..
            }) => {
                let (Ok(channel), Ok(frame)) = (
                    ChannelName::parse(channel, usize::MAX).or_else(|_| internal_channel(channel)),
                    ByteString::try_from(frame.to_vec()),
                ) else {
                    return Ok(());
                };
                let except = except.and_then(|text| text.parse::<SocketId>().ok());
                self.registry.broadcast(app_id, &channel, &frame, except);
            }
            Some(NodeMessage::Terminate { user_id, .. }) => {
                for conn in self
                    .registry
                    .user_connections(app_id, &UserId::new(user_id))
                {
                    conn.outbox.close(SocketError::TerminatedByApp);
                }
            }
            None => tracing::warn!("ignoring a malformed node message"),
        }
        Ok(())
    }
}

/// Herald's own `#watchlist-…` channels are not valid client names but travel between nodes too.
fn internal_channel(name: &str) -> Result<ChannelName, ()> {
    name.strip_prefix("#watchlist-")
        .map(ChannelName::watchlist_of)
        .ok_or(())
}

#[async_trait]
impl Adapter for RedisAdapter {
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
        let except = except.map(|id| id.to_string());
        let message = NodeMessage::Broadcast {
            origin: &self.node_id,
            channel: channel.as_str(),
            except: except.as_deref(),
            frame: frame.as_bytes(),
        };
        self.send(app_id, &message).await
    }

    async fn subscribe(
        &self,
        channel: &ChannelName,
        conn: &ConnHandle,
        member: Option<Member>,
    ) -> Result<Joined, AdapterError> {
        let app = &conn.app;
        let keys = self.keys(&app.id)?;
        // Join locally first (without a reply), so events published from now on reach the socket;
        // the reply, queued after the cluster answered, then carries the cluster-wide member list.
        let local = self
            .registry
            .subscribe(channel, conn, member.clone(), usize::MAX, Reply::Later)
            .map_err(|_| AdapterError::ChannelFull)?;
        let presence = member.is_some();
        match self
            .run_join(
                keys,
                channel,
                member.as_ref(),
                app.limits.max_presence_members,
            )
            .await
        {
            Ok(Some(cluster)) => {
                let reply = if presence {
                    cluster.presence_reply(channel)
                } else {
                    frames::subscription_succeeded(channel.as_str())
                };
                conn.outbox.push(reply.into());
                Ok(Joined {
                    occupied: cluster.occupied,
                    member_added: cluster.member_added,
                    member_resumed: cluster.member_resumed,
                    subscription_count: cluster.total,
                })
            }
            Ok(None) => {
                self.registry.unsubscribe(&app.id, channel, conn.socket_id);
                Err(AdapterError::ChannelFull)
            }
            Err(error) => {
                self.degraded(&error);
                if let Some(reply) = self.registry.local_reply(&app.id, channel, presence) {
                    conn.outbox.push(reply.into());
                }
                Ok(local)
            }
        }
    }

    async fn unsubscribe(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        socket_id: SocketId,
    ) -> Result<Option<Left>, AdapterError> {
        let Some(local) = self.registry.unsubscribe(app_id, channel, socket_id) else {
            return Ok(None);
        };
        let keys = self.keys(app_id)?;
        match self.run_leave(keys, channel, local.user_id.as_ref()).await {
            // This node's share was already gone (removed while Redis was unreachable): nothing changed.
            Ok((_, _, total)) if total < 0 => Ok(Some(Left {
                vacated: false,
                member_removed: None,
                subscription_count: 0,
                ..local
            })),
            Ok((vacated, member_removed, total)) => Ok(Some(Left {
                member_removed: member_removed.then(|| local.user_id.clone()).flatten(),
                vacated,
                subscription_count: total.max(0) as usize,
                user_id: local.user_id,
            })),
            Err(error) => {
                self.degraded(&error);
                Ok(Some(local))
            }
        }
    }

    async fn channel_counts(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<ChannelCounts, AdapterError> {
        let keys = self.keys(app_id)?;
        let (subscriptions, users): (Vec<i64>, usize) = redis::pipe()
            .hvals(keys.subscriptions(channel.as_str()))
            .hlen(keys.presence_users(channel.as_str()))
            .query_async(&mut self.connection())
            .await
            .map_err(|error| {
                self.degraded(&error);
                unavailable(error)
            })?;
        Ok(ChannelCounts {
            subscription_count: scripts::sum(&subscriptions),
            user_count: users,
        })
    }

    async fn channels(
        &self,
        app_id: &AppId,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, AdapterError> {
        let keys = self.keys(app_id)?;
        let mut connection = self.connection();
        let names: Vec<String> = connection
            .smembers(keys.channels())
            .await
            .map_err(unavailable)?;
        let names: Vec<ChannelName> = names
            .iter()
            .filter_map(|name| ChannelName::parse(name, usize::MAX).ok())
            .filter(|name| !name.is_reserved())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.hvals(keys.subscriptions(name.as_str()))
                .hlen(keys.presence_users(name.as_str()));
        }
        let counts: Vec<Value> = pipe
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let mut listed = Vec::new();
        for (name, pair) in names.into_iter().zip(counts.chunks(2)) {
            let subscriptions: Vec<i64> =
                redis::from_redis_value(pair[0].clone()).unwrap_or_default();
            let users: usize = redis::from_redis_value(pair[1].clone()).unwrap_or_default();
            let subscription_count = scripts::sum(&subscriptions);
            if subscription_count > 0 {
                listed.push((
                    name,
                    ChannelCounts {
                        subscription_count,
                        user_count: users,
                    },
                ));
            }
        }
        Ok(listed)
    }

    async fn presence_users(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<Vec<UserId>, AdapterError> {
        let keys = self.keys(app_id)?;
        let users: Vec<String> = self
            .connection()
            .hkeys(keys.presence_users(channel.as_str()))
            .await
            .map_err(unavailable)?;
        let mut users: Vec<UserId> = users.iter().map(|user| UserId::new(user)).collect();
        users.sort();
        Ok(users)
    }

    async fn sign_in(&self, user_id: &UserId, conn: &ConnHandle) -> Result<bool, AdapterError> {
        let local_first = self.registry.sign_in(user_id, conn);
        let keys = self.keys(&conn.app.id)?;
        match self.run_sign(keys, &self.scripts.sign_in, user_id).await {
            Ok(online) => Ok(online),
            Err(error) => {
                self.degraded(&error);
                Ok(local_first)
            }
        }
    }

    async fn sign_out(
        &self,
        app_id: &AppId,
        user_id: &UserId,
        socket_id: SocketId,
    ) -> Result<bool, AdapterError> {
        let local_last = self.registry.sign_out(app_id, user_id, socket_id);
        let keys = self.keys(app_id)?;
        match self.run_sign(keys, &self.scripts.sign_out, user_id).await {
            Ok(offline) => Ok(offline),
            Err(error) => {
                self.degraded(&error);
                Ok(local_last)
            }
        }
    }

    async fn online(&self, app_id: &AppId, user_ids: &[UserId]) -> Result<Vec<bool>, AdapterError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(app_id)?;
        let fields: Vec<&str> = user_ids.iter().map(UserId::as_str).collect();
        let counts: Result<Vec<Option<i64>>, _> = redis::cmd("HMGET")
            .arg(keys.users())
            .arg(&fields)
            .query_async(&mut self.connection())
            .await;
        match counts {
            Ok(counts) => Ok(counts
                .into_iter()
                .map(|count| count.unwrap_or(0) > 0)
                .collect()),
            Err(error) => {
                self.degraded(&error);
                Ok(user_ids
                    .iter()
                    .map(|user| self.registry.is_signed_in(app_id, user))
                    .collect())
            }
        }
    }

    async fn terminate_user(&self, app_id: &AppId, user_id: &UserId) -> Result<(), AdapterError> {
        for conn in self.registry.user_connections(app_id, user_id) {
            conn.outbox.close(SocketError::TerminatedByApp);
        }
        let message = NodeMessage::Terminate {
            origin: &self.node_id,
            user_id: user_id.as_str(),
        };
        self.send(app_id, &message).await
    }

    async fn cache_store(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        event: &str,
        data: &str,
        ttl: Duration,
    ) -> Result<(), AdapterError> {
        let keys = self.keys(app_id)?;
        let value = serde_json::json!({ "event": event, "data": data }).to_string();
        let ttl_ms = ttl.as_millis().max(1) as u64;
        self.connection()
            .pset_ex::<_, _, ()>(keys.cache(channel.as_str()), value, ttl_ms)
            .await
            .map_err(unavailable)
    }

    async fn cache_lookup(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
    ) -> Result<Option<CachedEvent>, AdapterError> {
        let keys = self.keys(app_id)?;
        let key = keys.cache(channel.as_str());
        let (value, ttl_ms): (Option<String>, i64) = redis::pipe()
            .get(&key)
            .pttl(&key)
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let Some(value) = value else {
            return Ok(None);
        };
        let parsed: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
        let (Some(event), Some(data)) = (parsed["event"].as_str(), parsed["data"].as_str()) else {
            return Ok(None);
        };
        Ok(Some(CachedEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            expires_at: Instant::now() + Duration::from_millis(ttl_ms.max(0) as u64),
        }))
    }

    async fn first_seen(
        &self,
        app_id: &AppId,
        key: &str,
        ttl: Duration,
    ) -> Result<bool, AdapterError> {
        let keys = self.keys(app_id)?;
        let set: Option<String> = redis::cmd("SET")
            .arg(keys.seen(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn forget(&self, app_id: &AppId, key: &str) -> Result<(), AdapterError> {
        let keys = self.keys(app_id)?;
        self.connection()
            .del::<_, ()>(keys.seen(key))
            .await
            .map_err(unavailable)
    }

    fn healthy(&self) -> bool {
        self.is_healthy()
    }

    async fn shutdown(&self) {
        liveness::leave(self).await;
    }
}

/// Whether a channel's state is tracked in Redis (Herald's internal channels stay local).
fn tracked(channel: &ChannelName) -> bool {
    channel.kind() != ChannelKind::Internal
}

#[async_trait]
impl LeaveArbiter for RedisAdapter {
    /// A pending leave stands unless a join on any node took its marker away.
    async fn confirm_leave(&self, app_id: &AppId, channel: &str, user_id: Option<&str>) -> bool {
        let Ok(keys) = self.keys(app_id) else {
            return true;
        };
        let marker: Result<Option<String>, _> = redis::cmd("GETDEL")
            .arg(keys.grace(channel, user_id))
            .query_async(&mut self.connection())
            .await;
        // When Redis cannot tell, report the leave: a duplicate beats a lost event.
        marker.map_or(true, |marker| marker.is_some())
    }
}
