//! One channel on this node: its subscribers and, for presence channels, its members by user id.
//! Joins and leaves happen under the channel's own lock, so first-join and last-leave are decided exactly once.

use std::{
    sync::{RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{Duration, Instant},
};

use bytestring::ByteString;
use indexmap::IndexMap;
use serde_json::value::RawValue;

use super::{ConnHandle, outbox::Pushed};
use crate::protocol::{
    ChannelName, Member, SocketId, UserId,
    frames::{self, MemberRef},
};

/// A subscribed socket and, on presence channels, the user it joined as.
pub struct Subscriber {
    pub conn: ConnHandle,
    pub user_id: Option<UserId>,
}

struct MemberEntry {
    user_info: Option<Box<RawValue>>,
    /// Sockets of this user in the channel on this node.
    sockets: usize,
}

#[derive(Default)]
struct State {
    subscribers: IndexMap<SocketId, Subscriber>,
    /// Presence members in join order; empty on other channels.
    members: IndexMap<UserId, MemberEntry>,
    count_throttle: CountThrottle,
}

/// When the last `subscription_count` went out, and whether a deferred one is waiting (spec §8.2).
#[derive(Default)]
struct CountThrottle {
    last_sent: Option<Instant>,
    deferred: bool,
}

/// What a successful join changed.
#[derive(Debug, PartialEq, Eq)]
pub struct Joined {
    /// This was the first subscription: the channel became occupied.
    pub occupied: bool,
    /// On presence channels: this was the user's first socket in the channel.
    pub member_added: bool,
    /// The user came back within the webhook grace window after leaving (on another node): members
    /// see `member_added`, but no webhook is due, since the removal was never reported.
    pub member_resumed: bool,
    pub subscription_count: usize,
}

/// What a leave changed.
#[derive(Debug, PartialEq, Eq)]
pub struct Left {
    /// On presence channels: the user the leaving socket had joined as.
    pub user_id: Option<UserId>,
    /// The last subscription is gone.
    pub vacated: bool,
    /// On presence channels: the user whose last socket left.
    pub member_removed: Option<UserId>,
    pub subscription_count: usize,
}

/// Whether `join` queues the `subscription_succeeded` reply itself (from this node's state), or leaves it
/// to the caller (a cluster adapter that answers with the cluster-wide member list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Now,
    Later,
}

/// A presence join refused because the channel already has its maximum of distinct users.
#[derive(Debug, PartialEq, Eq)]
pub struct ChannelFull;

/// Whether to send a `subscription_count` update now, later, or not at all.
#[derive(Debug, PartialEq, Eq)]
pub enum CountUpdate {
    Now,
    /// Throttled: send once at this time, then the count as it is then.
    At(Instant),
    /// A deferred update is already waiting.
    Pending,
}

pub struct Channel {
    name: ChannelName,
    state: RwLock<State>,
}

impl Channel {
    pub fn new(name: ChannelName) -> Channel {
        Channel {
            name,
            state: RwLock::new(State::default()),
        }
    }

    // A panic under this lock cannot leave the maps half-updated in a way later calls depend on.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        self.read().subscribers.is_empty()
    }

    /// Queues `frame` for every subscriber but `except`; returns how many got it.
    pub fn broadcast(&self, frame: &ByteString, except: Option<SocketId>) -> usize {
        let state = self.read();
        let mut n_delivered = 0;
        for (socket_id, subscriber) in &state.subscribers {
            if Some(*socket_id) == except {
                continue;
            }
            if subscriber.conn.outbox.push(frame.clone()) == Pushed::Queued {
                n_delivered += 1;
            }
        }
        n_delivered
    }

    /// Adds `conn` and queues its `subscription_succeeded` (with the member list on presence channels)
    /// before the lock is released, so the reply precedes any event about the channel.
    pub fn join(
        &self,
        conn: &ConnHandle,
        member: Option<Member>,
        max_members: usize,
        reply: Reply,
    ) -> Result<Joined, ChannelFull> {
        let mut state = self.write();
        let occupied = state.subscribers.is_empty();
        let mut member_added = false;
        let user_id = member.as_ref().map(|m| m.user_id.clone());
        if let Some(member) = member {
            if let Some(entry) = state.members.get_mut(&member.user_id) {
                entry.sockets += 1;
            } else if state.members.len() >= max_members {
                return Err(ChannelFull);
            } else {
                member_added = true;
                state.members.insert(
                    member.user_id,
                    MemberEntry {
                        user_info: member.user_info,
                        sockets: 1,
                    },
                );
            }
        }
        if reply == Reply::Now {
            conn.outbox
                .push(self.reply_frame(&state, user_id.is_some()).into());
        }
        state.subscribers.insert(
            conn.socket_id,
            Subscriber {
                conn: conn.clone(),
                user_id,
            },
        );
        Ok(Joined {
            occupied,
            member_added,
            member_resumed: false,
            subscription_count: state.subscribers.len(),
        })
    }

    /// The `subscription_succeeded` reply as this node alone would give it.
    pub fn reply(&self, presence: bool) -> String {
        self.reply_frame(&self.read(), presence)
    }

    fn reply_frame(&self, state: &State, presence: bool) -> String {
        if presence {
            frames::presence_subscription_succeeded(
                self.name.as_str(),
                state.members.iter().map(|(user_id, entry)| MemberRef {
                    user_id: user_id.as_str(),
                    user_info: entry.user_info.as_deref(),
                }),
            )
        } else {
            frames::subscription_succeeded(self.name.as_str())
        }
    }

    /// Adds `conn` with no reply and no presence data: for Herald's internal channels.
    pub fn join_quietly(&self, conn: &ConnHandle) {
        self.write().subscribers.insert(
            conn.socket_id,
            Subscriber {
                conn: conn.clone(),
                user_id: None,
            },
        );
    }

    /// Removes a socket; `None` if it was not subscribed.
    pub fn leave(&self, socket_id: SocketId) -> Option<Left> {
        let mut state = self.write();
        let subscriber = state.subscribers.swap_remove(&socket_id)?;
        let mut member_removed = None;
        if let Some(user_id) = &subscriber.user_id
            && let Some(entry) = state.members.get_mut(user_id)
        {
            entry.sockets -= 1;
            if entry.sockets == 0 {
                state.members.shift_remove(user_id);
                member_removed = Some(user_id.clone());
            }
        }
        Some(Left {
            user_id: subscriber.user_id,
            vacated: state.subscribers.is_empty(),
            member_removed,
            subscription_count: state.subscribers.len(),
        })
    }

    pub fn subscription_count(&self) -> usize {
        self.read().subscribers.len()
    }

    /// Distinct presence users (0 on other channels).
    pub fn user_count(&self) -> usize {
        self.read().members.len()
    }

    /// Every subscriber with the presence member it joined as (for a cluster adapter's resync).
    pub fn subscribers(&self) -> Vec<super::Subscription> {
        let state = self.read();
        state
            .subscribers
            .values()
            .map(|subscriber| {
                let member = subscriber.user_id.as_ref().and_then(|user_id| {
                    state.members.get(user_id).map(|entry| Member {
                        user_id: user_id.clone(),
                        user_info: entry.user_info.as_ref().map(|raw| raw.to_owned()),
                    })
                });
                (subscriber.conn.clone(), member)
            })
            .collect()
    }

    pub fn user_ids(&self) -> Vec<UserId> {
        self.read().members.keys().cloned().collect()
    }

    /// The presence member `user_id`, if present on this node.
    pub fn member(&self, user_id: &UserId) -> Option<Member> {
        self.read().members.get(user_id).map(|entry| Member {
            user_id: user_id.clone(),
            user_info: entry.user_info.as_ref().map(|raw| raw.to_owned()),
        })
    }

    /// Decides whether a `subscription_count` change goes out now. Busy channels (more than
    /// `busy_threshold` subscribers) send at most once per `interval`, with one deferred update (spec §8.2).
    pub fn count_update(
        &self,
        now: Instant,
        busy_threshold: usize,
        interval: Duration,
    ) -> CountUpdate {
        let mut state = self.write();
        let busy = state.subscribers.len() > busy_threshold;
        let throttle = &mut state.count_throttle;
        if throttle.deferred {
            return CountUpdate::Pending;
        }
        match throttle.last_sent {
            Some(last) if busy && now < last + interval => {
                throttle.deferred = true;
                CountUpdate::At(last + interval)
            }
            _ => {
                throttle.last_sent = Some(now);
                CountUpdate::Now
            }
        }
    }

    /// Records that the deferred `subscription_count` update went out at `now`.
    pub fn count_sent(&self, now: Instant) {
        let mut state = self.write();
        state.count_throttle.deferred = false;
        state.count_throttle.last_sent = Some(now);
    }
}
