//! `pusher:subscribe` and `pusher:unsubscribe`, with their side effects (spec §3.4, §3.5, §6, §8).

use std::time::{Duration, Instant};

use super::session::Session;
use crate::{
    adapter::AdapterError,
    auth::{self, AuthError},
    protocol::{
        ChannelKind, ChannelName, Member, SocketError, Subscribe,
        frames::{self, MemberRef},
        user,
    },
    registry::{CountUpdate, Left},
    webhooks::WebhookEvent,
};

/// Channels with more subscribers than this send `subscription_count` at most every `COUNT_INTERVAL`.
const BUSY_CHANNEL: usize = 100;
const COUNT_INTERVAL: Duration = Duration::from_secs(5);

impl From<AuthError> for SocketError {
    fn from(error: AuthError) -> SocketError {
        match error {
            AuthError::InvalidKey(key) => SocketError::InvalidAuthKey(key),
            AuthError::InvalidSignature { signed, got } => {
                SocketError::InvalidSignature { signed, got }
            }
        }
    }
}

impl Session {
    pub(super) async fn subscribe(&mut self, request: Subscribe) -> Result<(), SocketError> {
        let app = self.conn.app.clone();
        let channel = ChannelName::parse(&request.channel, app.limits.max_channel_name_length)
            .map_err(SocketError::InvalidChannel)?;
        if self.subscriptions.contains_key(&channel) {
            return Err(SocketError::ExistingSubscription(channel.to_string()));
        }
        let member = self.authorize(&channel, &request)?;
        let announced = member.clone();
        let user_id = member.as_ref().map(|member| member.user_id.clone());
        let joined = match self
            .context
            .adapter
            .subscribe(&channel, &self.conn, member)
            .await
        {
            Ok(joined) => joined,
            Err(AdapterError::ChannelFull) => {
                return Err(SocketError::PresenceFull {
                    channel: channel.to_string(),
                    limit: app.limits.max_presence_members,
                });
            }
            Err(error) => {
                tracing::warn!(app = %app.id, channel = %channel, %error, "subscribe failed");
                return Err(SocketError::InvalidMessage(format!(
                    "could not subscribe to {channel}: {error}"
                )));
            }
        };
        self.subscriptions.insert(channel.clone(), user_id.clone());
        if joined.occupied && !channel.is_reserved() {
            self.context.webhooks.emit(
                &app,
                WebhookEvent::ChannelOccupied {
                    channel: channel.to_string(),
                },
            );
        }
        if matches!(
            channel.kind(),
            ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence
        ) {
            self.authorized = true;
        }
        if joined.member_added
            && let Some(member) = announced
        {
            let frame = frames::member_added(
                channel.as_str(),
                MemberRef {
                    user_id: member.user_id.as_str(),
                    user_info: member.user_info.as_deref(),
                },
            );
            self.publish(&channel, frame, Some(self.conn.socket_id))
                .await;
            if !joined.member_resumed {
                self.context.webhooks.emit(
                    &app,
                    WebhookEvent::MemberAdded {
                        channel: channel.to_string(),
                        user_id: member.user_id.to_string(),
                    },
                );
            }
        }
        if channel.is_cache() {
            self.replay_cache(&channel).await;
        }
        self.count_changed(&channel);
        Ok(())
    }

    /// Checks the subscription's signature and works out the presence member (spec §3.4 steps 3–4, §5.3).
    fn authorize(
        &self,
        channel: &ChannelName,
        request: &Subscribe,
    ) -> Result<Option<Member>, SocketError> {
        let app = &self.conn.app;
        let socket_id = self.conn.socket_id.to_string();
        let auth = request.auth.as_deref().unwrap_or_default();
        match channel.kind() {
            ChannelKind::Public => Ok(None),
            ChannelKind::Private | ChannelKind::PrivateEncrypted => {
                let signed = auth::channel_string_to_sign(&socket_id, channel.as_str(), None);
                auth::check_socket_auth(&app.key, &app.secret, auth, &signed)?;
                Ok(None)
            }
            ChannelKind::Presence => {
                let channel_data = request
                    .channel_data
                    .as_deref()
                    .filter(|data| !data.is_empty());
                let signed =
                    auth::channel_string_to_sign(&socket_id, channel.as_str(), channel_data);
                auth::check_socket_auth(&app.key, &app.secret, auth, &signed)?;
                let member = match channel_data {
                    Some(data) => {
                        let limit = app.limits.max_presence_user_bytes;
                        if data.len() > limit {
                            return Err(SocketError::UserDataTooLarge {
                                size: data.len(),
                                limit,
                            });
                        }
                        user::parse_channel_data(data).map_err(SocketError::InvalidChannelData)?
                    }
                    // A signed-in socket may join without channel_data, as its signed-in user (spec §3.4 step 4).
                    None => match &self.signed_in {
                        Some(signed_in) => Member {
                            user_id: signed_in.user_id.clone(),
                            user_info: signed_in.user_info.clone(),
                        },
                        None => {
                            return Err(SocketError::InvalidChannelData(
                                "channel_data is required unless the connection is signed in"
                                    .into(),
                            ));
                        }
                    },
                };
                let limit = app.limits.max_presence_user_id_length;
                if member.user_id.len() > limit {
                    return Err(SocketError::UserIdTooLong {
                        length: member.user_id.len(),
                        limit,
                    });
                }
                Ok(Some(member))
            }
            ChannelKind::User => {
                let owner = channel.user_channel_owner().unwrap_or_default();
                match &self.signed_in {
                    Some(signed_in) if signed_in.user_id.as_str() == owner => Ok(None),
                    _ => Err(SocketError::UserChannelForbidden {
                        channel: channel.to_string(),
                        owner: owner.to_owned(),
                    }),
                }
            }
            ChannelKind::Internal => Err(SocketError::InvalidChannel(
                crate::protocol::ChannelNameError::BadCharacters(channel.to_string()),
            )),
        }
    }

    /// Sends the cached event, or `pusher:cache_miss` when there is none (spec §8.1).
    async fn replay_cache(&self, channel: &ChannelName) {
        let app_id = &self.conn.app.id;
        match self.context.adapter.cache_lookup(app_id, channel).await {
            Ok(Some(cached)) => self.send(frames::channel_event(
                &cached.event,
                channel.as_str(),
                &cached.data,
            )),
            Ok(None) => {
                self.send(frames::cache_miss(channel.as_str()));
                self.context.webhooks.emit(
                    &self.conn.app,
                    WebhookEvent::CacheMiss {
                        channel: channel.to_string(),
                    },
                );
            }
            Err(error) => {
                tracing::warn!(app = %app_id, channel = %channel, %error, "cache lookup failed");
                self.send(frames::cache_miss(channel.as_str()));
            }
        }
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) {
        let Ok(channel) = ChannelName::parse(channel, usize::MAX) else {
            return;
        };
        self.leave(&channel).await;
    }

    /// Leaves one channel and runs the leave side effects; a no-op when not subscribed.
    pub(super) async fn leave(&mut self, channel: &ChannelName) {
        if self.subscriptions.remove(channel).is_none() {
            return;
        }
        let app_id = self.conn.app.id.clone();
        let left = self
            .context
            .adapter
            .unsubscribe(&app_id, channel, self.conn.socket_id)
            .await;
        match left {
            Ok(Some(Left {
                member_removed,
                vacated,
                ..
            })) => {
                let app = self.conn.app.clone();
                if let Some(user_id) = member_removed {
                    let frame = frames::member_removed(channel.as_str(), user_id.as_str());
                    self.publish(channel, frame, None).await;
                    self.context.webhooks.emit(
                        &app,
                        WebhookEvent::MemberRemoved {
                            channel: channel.to_string(),
                            user_id: user_id.to_string(),
                        },
                    );
                }
                if vacated && !channel.is_reserved() {
                    self.context.webhooks.emit(
                        &app,
                        WebhookEvent::ChannelVacated {
                            channel: channel.to_string(),
                        },
                    );
                }
                self.count_changed(channel);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(app = %app_id, channel = %channel, %error, "unsubscribe failed")
            }
        }
    }

    /// Broadcasts `pusher_internal:subscription_count` when the app enables it (spec §8.2).
    fn count_changed(&self, channel: &ChannelName) {
        let app = &self.conn.app;
        if !app.subscription_count
            || !matches!(
                channel.kind(),
                ChannelKind::Public | ChannelKind::Private | ChannelKind::PrivateEncrypted
            )
        {
            return;
        }
        let registry = self.context.adapter.registry();
        let now = Instant::now();
        let Some(update) =
            registry.count_update(&app.id, channel, now, BUSY_CHANNEL, COUNT_INTERVAL)
        else {
            return;
        };
        let adapter = self.context.adapter.clone();
        let webhooks = self.context.webhooks.clone();
        let app = app.clone();
        let app_id = app.id.clone();
        let channel = channel.clone();
        let send_at = match update {
            CountUpdate::Now => None,
            CountUpdate::At(at) => Some(at),
            CountUpdate::Pending => return,
        };
        actix_web::rt::spawn(async move {
            if let Some(at) = send_at {
                tokio::time::sleep_until(at.into()).await;
                adapter
                    .registry()
                    .count_sent(&app_id, &channel, Instant::now());
            }
            let count = match adapter.channel_counts(&app_id, &channel).await {
                Ok(counts) => counts.subscription_count,
                Err(error) => {
                    tracing::warn!(app = %app_id, channel = %channel, %error, "subscription count failed");
                    return;
                }
            };
            let frame = frames::subscription_count(channel.as_str(), count);
            if let Err(error) = adapter.publish(&app_id, &channel, frame.into(), None).await {
                tracing::warn!(app = %app_id, channel = %channel, %error, "publish failed");
            }
            webhooks.emit(
                &app,
                WebhookEvent::SubscriptionCount {
                    channel: channel.to_string(),
                    subscription_count: count,
                },
            );
        });
    }
}
