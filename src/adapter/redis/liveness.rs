//! Node liveness: a heartbeat key that expires when a node dies, survivors removing a dead node's state
//! (its share of every count, its presence members, its signed-in users) and announcing what changed,
//! and resynchronising this node's share after Redis was unreachable.

use std::collections::{HashMap, HashSet};

use redis::{RedisResult, Value};

use super::{AppKeys, ClusterNotice, RedisAdapter, text, tracked};
use crate::{
    adapter::Adapter,
    app::AppId,
    protocol::{
        ChannelName, Member,
        frames::{self, MemberRef, Presence},
    },
};

impl RedisAdapter {
    fn nodes_key(&self) -> String {
        format!("{{{}}}:nodes", self.config.key_prefix)
    }

    fn alive_key(&self, node: &str) -> String {
        format!("{{{}}}:alive:{node}", self.config.key_prefix)
    }

    /// Announces this node: its alive key expires `node_timeout` after the last heartbeat.
    pub(super) async fn heartbeat(&self) -> RedisResult<()> {
        let mut connection = self.backend.probe();
        let timeout_ms = self.config.node_timeout.as_millis() as u64;
        redis::pipe()
            .sadd(self.nodes_key(), &self.node_id)
            .ignore()
            .cmd("SET")
            .arg(self.alive_key(&self.node_id))
            .arg(1)
            .arg("PX")
            .arg(timeout_ms)
            .ignore()
            .exec_async(&mut connection)
            .await
    }

    /// Removes everything `node` owns in one app.
    async fn remove_node(&self, keys: &AppKeys, node: &str) -> RedisResult<Removed> {
        let value: Value = self
            .scripts
            .remove_node
            .key(keys.channels())
            .key(keys.node(node))
            .key(keys.users())
            .key(keys.user_nodes())
            .arg(node)
            .arg(&keys.base)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(Removed::parse(value))
    }
}

/// What removing a node's state changed in one app.
#[derive(Default)]
struct Removed {
    /// Channel, whether it is now empty cluster-wide, users who left it for good.
    channels: Vec<(String, bool, Vec<String>)>,
    offline: Vec<String>,
}

impl Removed {
    fn parse(value: Value) -> Removed {
        let mut removed = Removed::default();
        let Value::Array(parts) = value else {
            return removed;
        };
        if let Some(Value::Array(effects)) = parts.first() {
            for effect in effects {
                if let Value::Array(fields) = effect {
                    let users = match fields.get(2) {
                        Some(Value::Array(users)) => users.iter().map(text).collect(),
                        _ => Vec::new(),
                    };
                    let vacated = matches!(fields.get(1), Some(Value::Int(1)));
                    removed.channels.push((
                        fields.first().map(text).unwrap_or_default(),
                        vacated,
                        users,
                    ));
                }
            }
        }
        if let Some(Value::Array(users)) = parts.get(1) {
            removed.offline = users.iter().map(text).collect();
        }
        removed
    }
}

/// The heartbeat loop: announce, recover, resynchronise, reap.
pub(super) async fn run(adapter: std::sync::Arc<RedisAdapter>) {
    let mut interval = tokio::time::interval(adapter.config.heartbeat_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = adapter.heartbeat().await {
            adapter.degraded(&error);
            continue;
        }
        if !adapter.backend.set_healthy(true) {
            tracing::info!("Redis is reachable again; resynchronising this node's state");
        }
        if adapter
            .needs_resync
            .swap(false, std::sync::atomic::Ordering::Relaxed)
            && let Err(error) = resync(&adapter).await
        {
            adapter.degraded(&error);
            continue;
        }
        if let Err(error) = reap(&adapter).await {
            adapter.degraded(&error);
        }
    }
}

/// Removes the state of every node whose alive key expired, announcing the members that left.
/// Safe when several survivors do it at once: the script empties a node's state atomically, so only
/// the first survivor sees (and announces) anything.
async fn reap(adapter: &RedisAdapter) -> RedisResult<()> {
    let mut connection = adapter.connection();
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(adapter.nodes_key())
        .query_async(&mut connection)
        .await?;
    for node in nodes.iter().filter(|node| **node != adapter.node_id) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(adapter.alive_key(node))
            .query_async(&mut connection)
            .await?;
        if alive {
            continue;
        }
        tracing::warn!(node = %node, "a node stopped answering; removing its sockets from the cluster");
        for (app_id, keys) in &adapter.keys {
            let removed = adapter.remove_node(keys, node).await?;
            announce_removed(
                adapter,
                app_id,
                &removed,
                &HashSet::new(),
                &HashSet::new(),
                &HashSet::new(),
            )
            .await;
        }
        redis::cmd("SREM")
            .arg(adapter.nodes_key())
            .arg(node)
            .exec_async(&mut connection)
            .await?;
    }
    Ok(())
}

/// Rewrites this node's share of the cluster state from its registry after Redis missed changes,
/// announcing only the net differences (a member removed and re-added is no news).
async fn resync(adapter: &RedisAdapter) -> RedisResult<()> {
    for (app_id, keys) in &adapter.keys {
        let removed = adapter.remove_node(keys, &adapter.node_id).await?;
        let mut occupied: HashSet<String> = HashSet::new();
        let mut added: HashMap<(String, String), Member> = HashMap::new();
        for (channel, subscribers) in adapter.registry.subscriptions(app_id) {
            if !tracked(&channel) {
                continue;
            }
            for (_, member) in subscribers {
                if let Some(join) = adapter
                    .run_join(keys, &channel, member.as_ref(), usize::MAX)
                    .await?
                {
                    if join.occupied {
                        occupied.insert(channel.to_string());
                    }
                    if let (true, Some(member)) = (join.member_added, member) {
                        added.insert((channel.to_string(), member.user_id.to_string()), member);
                    }
                }
            }
        }
        let mut online: HashSet<String> = HashSet::new();
        for (user_id, sockets) in adapter.registry.signed_in_users(app_id) {
            for _ in sockets {
                if adapter
                    .run_sign(keys, &adapter.scripts.sign_in, &user_id)
                    .await?
                {
                    online.insert(user_id.to_string());
                }
            }
        }
        let re_added: HashSet<(String, String)> = added.keys().cloned().collect();
        announce_removed(adapter, app_id, &removed, &re_added, &occupied, &online).await;
        let was_removed: HashSet<(String, String)> = removed
            .channels
            .iter()
            .flat_map(|(channel, _, users)| {
                users
                    .iter()
                    .map(move |user| (channel.clone(), user.clone()))
            })
            .collect();
        let was_vacated: HashSet<&String> = removed
            .channels
            .iter()
            .filter(|(_, vacated, _)| *vacated)
            .map(|(c, _, _)| c)
            .collect();
        for channel in occupied
            .iter()
            .filter(|channel| !was_vacated.contains(channel))
        {
            notice(
                adapter,
                &channel_name(channel),
                ClusterNotice::ChannelOccupied {
                    app_id: app_id.clone(),
                    channel: channel.clone(),
                },
            );
        }
        for ((channel, user_id), member) in
            added.iter().filter(|(key, _)| !was_removed.contains(*key))
        {
            let name = channel_name(channel);
            let frame = frames::member_added(
                channel,
                MemberRef {
                    user_id,
                    user_info: member.user_info.as_deref(),
                },
            );
            let _ = adapter.publish(app_id, &name, frame.into(), None).await;
            notice(
                adapter,
                &name,
                ClusterNotice::MemberAdded {
                    app_id: app_id.clone(),
                    channel: channel.clone(),
                    user_id: user_id.clone(),
                },
            );
        }
        let was_offline: HashSet<&String> = removed.offline.iter().collect();
        for user_id in online.iter().filter(|user| !was_offline.contains(user)) {
            announce_presence(adapter, app_id, user_id, Presence::Online).await;
        }
    }
    tracing::info!("resynchronised with Redis");
    Ok(())
}

/// Announces removed members, vacated channels and users gone offline, except those `re_added`,
/// `re_occupied` or back `online` (after a resync).
async fn announce_removed(
    adapter: &RedisAdapter,
    app_id: &AppId,
    removed: &Removed,
    re_added: &HashSet<(String, String)>,
    re_occupied: &HashSet<String>,
    online: &HashSet<String>,
) {
    for (channel, vacated, users) in &removed.channels {
        let name = channel_name(channel);
        for user_id in users {
            if re_added.contains(&(channel.clone(), user_id.clone())) {
                continue;
            }
            let frame = frames::member_removed(channel, user_id);
            let _ = adapter.publish(app_id, &name, frame.into(), None).await;
            notice(
                adapter,
                &name,
                ClusterNotice::MemberRemoved {
                    app_id: app_id.clone(),
                    channel: channel.clone(),
                    user_id: user_id.clone(),
                },
            );
        }
        if *vacated && !re_occupied.contains(channel) {
            notice(
                adapter,
                &name,
                ClusterNotice::ChannelVacated {
                    app_id: app_id.clone(),
                    channel: channel.clone(),
                },
            );
        }
    }
    for user_id in removed
        .offline
        .iter()
        .filter(|user| !online.contains(*user))
    {
        announce_presence(adapter, app_id, user_id, Presence::Offline).await;
    }
}

/// Tells a user's watchers, on every node, that it went online or offline.
async fn announce_presence(
    adapter: &RedisAdapter,
    app_id: &AppId,
    user_id: &str,
    presence: Presence,
) {
    let watches = adapter
        .apps
        .by_id(app_id.as_str())
        .is_some_and(|app| app.watchlist_events);
    if !watches {
        return;
    }
    let frame = frames::watchlist_events(&[(presence, vec![user_id])]);
    let channel = ChannelName::watchlist_of(user_id);
    let _ = adapter.publish(app_id, &channel, frame.into(), None).await;
}

fn channel_name(name: &str) -> ChannelName {
    ChannelName::parse(name, usize::MAX).unwrap_or_else(|_| ChannelName::for_user(name))
}

/// Forwards a change to webhooks, except for Herald's reserved channels, which have none.
fn notice(adapter: &RedisAdapter, channel: &ChannelName, notice: ClusterNotice) {
    if !channel.is_reserved() {
        let _ = adapter.notices.send(notice);
    }
}

/// A graceful exit: the sessions already removed their state; the node leaves the membership set.
pub(super) async fn leave(adapter: &RedisAdapter) {
    let mut connection = adapter.connection();
    let result: RedisResult<()> = redis::pipe()
        .srem(adapter.nodes_key(), &adapter.node_id)
        .ignore()
        .del(adapter.alive_key(&adapter.node_id))
        .ignore()
        .exec_async(&mut connection)
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, "could not leave the Redis cluster cleanly; survivors will reap this node");
    }
}
