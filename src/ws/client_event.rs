//! Client events: `client-*` frames relayed to the channel's other subscribers (spec §7).

use std::time::Instant;

use serde_json::value::RawValue;

use super::session::Session;
use crate::{
    protocol::{ChannelKind, ChannelName, SocketError, frames},
    webhooks::WebhookEvent,
};

/// Webhook `data` is always a string: a string is passed as is, anything else as its JSON text.
fn data_as_string(data: Option<&RawValue>) -> String {
    match data {
        None => String::new(),
        Some(raw) => {
            serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned())
        }
    }
}

impl Session {
    pub(super) async fn client_event(
        &mut self,
        event: &str,
        channel: &str,
        data: Option<Box<RawValue>>,
    ) -> Result<(), SocketError> {
        let app = self.conn.app.clone();
        if !app.client_events {
            return Err(SocketError::ClientEventsDisabled);
        }
        let channel = ChannelName::parse(channel, app.limits.max_channel_name_length)
            .map_err(SocketError::InvalidChannel)?;
        // Encrypted channels carry opaque ciphertext; official clients refuse client events there (spec §3.6).
        if !matches!(channel.kind(), ChannelKind::Private | ChannelKind::Presence) {
            return Err(SocketError::ClientEventChannel(channel.to_string()));
        }
        let Some(presence_user) = self.subscriptions.get(&channel) else {
            return Err(SocketError::ClientEventNotSubscribed(channel.to_string()));
        };
        let name_limit = app.limits.max_event_name_length;
        if event.chars().count() > name_limit {
            return Err(SocketError::EventNameTooLong {
                length: event.chars().count(),
                limit: name_limit,
            });
        }
        let size = data.as_ref().map_or(0, |raw| raw.get().len());
        let size_limit = app.limits.max_event_data_bytes;
        if size > size_limit {
            return Err(SocketError::ClientEventTooLarge {
                size,
                limit: size_limit,
            });
        }
        if !self
            .client_events
            .admit(Instant::now(), app.limits.client_events_per_second)
        {
            return Err(SocketError::ClientEventRateLimited);
        }
        let user_id = presence_user.as_ref().map(|user_id| user_id.to_string());
        let frame =
            frames::client_event(event, channel.as_str(), data.as_deref(), user_id.as_deref());
        // Never echoed to the sender.
        self.publish(&channel, frame, Some(self.conn.socket_id))
            .await;
        self.context.metrics.client_events.inc();
        self.context.webhooks.emit(
            &app,
            WebhookEvent::ClientEvent {
                channel: channel.to_string(),
                event: event.to_owned(),
                data: data_as_string(data.as_deref()),
                socket_id: self.conn.socket_id.to_string(),
                user_id,
            },
        );
        Ok(())
    }
}
