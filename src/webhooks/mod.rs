//! Webhooks (spec §10): the events, the grace window before `channel_vacated`/`member_removed`,
//! batching, and the durable outbox. Sessions and the REST side only `emit`; one background loop turns
//! events into stored deliveries and `sender` delivers them at least once.

mod embedded;
pub mod sender;
pub mod store;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio_util::time::{DelayQueue, delay_queue};

pub use crate::config::WebhookConfig;
use crate::{
    app::{App, AppId},
    metrics::Metrics,
};
pub use embedded::EmbeddedStore;
pub use store::{DeliveryStore, NewDelivery};

/// How long a cache miss webhook for a channel suppresses the next one (spec §8.1).
const CACHE_MISS_QUIET: Duration = Duration::from_secs(5);

/// One webhook event, serialized as Pusher sends it (spec §10.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum WebhookEvent {
    ChannelOccupied {
        channel: String,
    },
    ChannelVacated {
        channel: String,
    },
    MemberAdded {
        channel: String,
        user_id: String,
    },
    MemberRemoved {
        channel: String,
        user_id: String,
    },
    ClientEvent {
        channel: String,
        event: String,
        /// Always a string: object data is JSON-encoded (the Go SDK requires a string).
        data: String,
        socket_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    CacheMiss {
        channel: String,
    },
    SubscriptionCount {
        channel: String,
        subscription_count: usize,
    },
}

impl WebhookEvent {
    pub fn name(&self) -> &'static str {
        match self {
            WebhookEvent::ChannelOccupied { .. } => "channel_occupied",
            WebhookEvent::ChannelVacated { .. } => "channel_vacated",
            WebhookEvent::MemberAdded { .. } => "member_added",
            WebhookEvent::MemberRemoved { .. } => "member_removed",
            WebhookEvent::ClientEvent { .. } => "client_event",
            WebhookEvent::CacheMiss { .. } => "cache_miss",
            WebhookEvent::SubscriptionCount { .. } => "subscription_count",
        }
    }

    fn channel(&self) -> &str {
        match self {
            WebhookEvent::ChannelOccupied { channel }
            | WebhookEvent::ChannelVacated { channel }
            | WebhookEvent::MemberAdded { channel, .. }
            | WebhookEvent::MemberRemoved { channel, .. }
            | WebhookEvent::ClientEvent { channel, .. }
            | WebhookEvent::CacheMiss { channel }
            | WebhookEvent::SubscriptionCount { channel, .. } => channel,
        }
    }
}

/// Decides, when a leave's grace window ends, whether it still stands: in a cluster the user (or the
/// channel's first subscriber) may have come back on another node. Without one, every leave stands.
#[async_trait::async_trait]
pub trait LeaveArbiter: Send + Sync {
    async fn confirm_leave(&self, app_id: &AppId, channel: &str, user_id: Option<&str>) -> bool;
}

/// Sessions and the REST side report events here; never blocks.
#[derive(Clone)]
pub struct Webhooks {
    commands: Option<mpsc::UnboundedSender<Command>>,
}

/// What the background loop is asked to do.
enum Command {
    Emit { app: Arc<App>, event: WebhookEvent },
}

impl Webhooks {
    /// A handle that drops everything: no app has webhook targets.
    pub fn disabled() -> Webhooks {
        Webhooks { commands: None }
    }

    /// Reports an event of `app`; ignored unless one of its targets wants this kind of event.
    pub fn emit(&self, app: &Arc<App>, event: WebhookEvent) {
        let Some(commands) = &self.commands else {
            return;
        };
        let wanted = app.webhooks.iter().any(|target| {
            target.events.is_empty() || target.events.iter().any(|name| name == event.name())
        });
        if wanted {
            // The loop only ends when the server stops; a closed channel then drops late events.
            let _ = commands.send(Command::Emit {
                app: app.clone(),
                event,
            });
        }
    }
}

/// Starts the producer loop (grace window, batching, outbox writes); returns the handle for emitting
/// and a notifier the sender waits on.
pub fn start(
    store: Arc<dyn DeliveryStore>,
    config: WebhookConfig,
    metrics: Arc<Metrics>,
    arbiter: Option<Arc<dyn LeaveArbiter>>,
) -> (Webhooks, Arc<Notify>) {
    let (commands, receiver) = mpsc::unbounded_channel();
    let produced = Arc::new(Notify::new());
    let producer = Producer {
        store,
        config,
        metrics,
        arbiter,
        produced: produced.clone(),
        leaving: HashMap::new(),
        timers: DelayQueue::new(),
        cache_misses: HashMap::new(),
        batches: HashMap::new(),
    };
    actix_web::rt::spawn(producer.run(receiver));
    (
        Webhooks {
            commands: Some(commands),
        },
        produced,
    )
}

/// A leave event waiting out the grace window, keyed by app, channel and (for members) user.
type LeaveKey = (AppId, String, Option<String>);

struct Leaving {
    app: Arc<App>,
    event: WebhookEvent,
    timer: delay_queue::Key,
}

/// Events gathered for one target while batching.
struct Batch {
    app: Arc<App>,
    url: String,
    headers: Vec<(String, String)>,
    events: Vec<WebhookEvent>,
    flush_at: Instant,
}

struct Producer {
    store: Arc<dyn DeliveryStore>,
    config: WebhookConfig,
    metrics: Arc<Metrics>,
    arbiter: Option<Arc<dyn LeaveArbiter>>,
    produced: Arc<Notify>,
    leaving: HashMap<LeaveKey, Leaving>,
    timers: DelayQueue<LeaveKey>,
    cache_misses: HashMap<(AppId, String), Instant>,
    batches: HashMap<(AppId, String), Batch>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[derive(Serialize)]
struct Body<'a> {
    time_ms: u64,
    events: &'a [WebhookEvent],
}

fn body(events: &[WebhookEvent]) -> String {
    serde_json::to_string(&Body {
        time_ms: now_ms(),
        events,
    })
    .expect("webhook events are plain strings and numbers")
}

impl Producer {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut ready = Vec::new();
        loop {
            let next_flush = self.batches.values().map(|batch| batch.flush_at).min();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Emit { app, event }) => self.on_event(app, event, &mut ready),
                    None => break,
                },
                Some(expired) = self.timers.next(), if !self.timers.is_empty() => {
                    let key = expired.into_inner();
                    if let Some(leaving) = self.leaving.remove(&key) {
                        self.settle_members_before_vacate(&key, &mut ready).await;
                        if self.confirmed(&key).await {
                            self.produce(leaving.app, leaving.event, &mut ready);
                        }
                    }
                }
                () = sleep_until_or_forever(next_flush) => self.flush_due(Instant::now(), &mut ready),
            }
            // Gather whatever else is already waiting, then write it all in one transaction.
            while let Ok(Command::Emit { app, event }) = commands.try_recv() {
                self.on_event(app, event, &mut ready);
            }
            self.write(&mut ready).await;
        }
        self.flush_due(Instant::now() + Duration::from_secs(3600), &mut ready);
        self.write(&mut ready).await;
    }

    /// Applies the grace window and cache-miss de-duplication (spec §8.1, §10.2).
    fn on_event(&mut self, app: Arc<App>, event: WebhookEvent, ready: &mut Vec<NewDelivery>) {
        let channel = event.channel().to_owned();
        match &event {
            WebhookEvent::ChannelVacated { .. } | WebhookEvent::MemberRemoved { .. } => {
                let key = leave_key(&app.id, &event);
                let timer = self.timers.insert(key.clone(), self.config.grace);
                if let Some(previous) = self.leaving.insert(key, Leaving { app, event, timer }) {
                    self.timers.remove(&previous.timer);
                }
                return;
            }
            WebhookEvent::ChannelOccupied { .. } => {
                let key = (app.id.clone(), channel, None);
                if let Some(leaving) = self.leaving.remove(&key) {
                    // Re-occupied within the grace window: neither the vacate nor this occupy is sent.
                    self.timers.remove(&leaving.timer);
                    return;
                }
            }
            WebhookEvent::MemberAdded { user_id, .. } => {
                let key = (app.id.clone(), channel, Some(user_id.clone()));
                if let Some(leaving) = self.leaving.remove(&key) {
                    self.timers.remove(&leaving.timer);
                    return;
                }
            }
            WebhookEvent::CacheMiss { .. } => {
                let now = Instant::now();
                let key = (app.id.clone(), channel);
                if self
                    .cache_misses
                    .get(&key)
                    .is_some_and(|last| now < *last + CACHE_MISS_QUIET)
                {
                    return;
                }
                self.cache_misses
                    .retain(|_, last| now < *last + CACHE_MISS_QUIET);
                self.cache_misses.insert(key, now);
            }
            WebhookEvent::ClientEvent { .. } | WebhookEvent::SubscriptionCount { .. } => {}
        }
        self.produce(app, event, ready);
    }

    /// Before a channel's vacate goes out, its members' pending removals go first (spec §10.2 order).
    /// Whether a leave still stands cluster-wide once its grace window is over.
    async fn confirmed(&self, key: &LeaveKey) -> bool {
        match &self.arbiter {
            Some(arbiter) => {
                arbiter
                    .confirm_leave(&key.0, &key.1, key.2.as_deref())
                    .await
            }
            None => true,
        }
    }

    async fn settle_members_before_vacate(
        &mut self,
        vacate: &LeaveKey,
        ready: &mut Vec<NewDelivery>,
    ) {
        if vacate.2.is_some() {
            return;
        }
        let members: Vec<LeaveKey> = self
            .leaving
            .keys()
            .filter(|key| key.0 == vacate.0 && key.1 == vacate.1 && key.2.is_some())
            .cloned()
            .collect();
        for key in members {
            if let Some(leaving) = self.leaving.remove(&key) {
                self.timers.remove(&leaving.timer);
                if self.confirmed(&key).await {
                    self.produce(leaving.app, leaving.event, ready);
                }
            }
        }
    }

    /// The event now counts: one delivery per interested target, or into the target's batch.
    fn produce(&mut self, app: Arc<App>, event: WebhookEvent, ready: &mut Vec<NewDelivery>) {
        self.metrics.webhooks_produced.inc();
        for target in &app.webhooks {
            if !(target.events.is_empty() || target.events.iter().any(|name| name == event.name()))
            {
                continue;
            }
            if app.webhook_batching {
                let key = (app.id.clone(), target.url.clone());
                let flush_at = Instant::now() + self.config.batch_interval;
                let batch = self.batches.entry(key).or_insert_with(|| Batch {
                    app: app.clone(),
                    url: target.url.clone(),
                    headers: target.headers.clone(),
                    events: Vec::new(),
                    flush_at,
                });
                batch.events.push(event.clone());
                if batch.events.len() >= self.config.batch_max_events {
                    batch.flush_at = Instant::now();
                }
            } else {
                ready.push(NewDelivery {
                    app_id: app.id.to_string(),
                    url: target.url.clone(),
                    headers: target.headers.clone(),
                    body: body(std::slice::from_ref(&event)),
                    created_ms: now_ms(),
                });
            }
        }
    }

    fn flush_due(&mut self, now: Instant, ready: &mut Vec<NewDelivery>) {
        let due: Vec<_> = self
            .batches
            .iter()
            .filter(|(_, batch)| batch.flush_at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some(batch) = self.batches.remove(&key) {
                ready.push(NewDelivery {
                    app_id: batch.app.id.to_string(),
                    url: batch.url,
                    headers: batch.headers,
                    body: body(&batch.events),
                    created_ms: now_ms(),
                });
            }
        }
    }

    /// Writes produced deliveries to the outbox; on failure, keeps them and tries again shortly.
    async fn write(&mut self, ready: &mut Vec<NewDelivery>) {
        while !ready.is_empty() {
            match self.store.append(ready.clone()).await {
                Ok(()) => {
                    ready.clear();
                    self.produced.notify_one();
                }
                Err(error) => {
                    tracing::error!(%error, waiting = ready.len(), "cannot write webhooks to the outbox; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn leave_key(app_id: &AppId, event: &WebhookEvent) -> LeaveKey {
    let user = match event {
        WebhookEvent::MemberRemoved { user_id, .. } => Some(user_id.clone()),
        _ => None,
    };
    (app_id.clone(), event.channel().to_owned(), user)
}

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_pusher_sends_them() {
        let check = |event: WebhookEvent, json: &str| {
            assert_eq!(serde_json::to_string(&event).unwrap(), json)
        };
        check(
            WebhookEvent::ChannelOccupied {
                channel: "my-channel".into(),
            },
            r#"{"name":"channel_occupied","channel":"my-channel"}"#,
        );
        check(
            WebhookEvent::ClientEvent {
                channel: "private-chat".into(),
                event: "client-typing".into(),
                data: "{\"typing\":true}".into(),
                socket_id: "123456.7890123".into(),
                user_id: None,
            },
            r#"{"name":"client_event","channel":"private-chat","event":"client-typing","data":"{\"typing\":true}","socket_id":"123456.7890123"}"#,
        );
        check(
            WebhookEvent::MemberAdded {
                channel: "presence-room".into(),
                user_id: "u-42".into(),
            },
            r#"{"name":"member_added","channel":"presence-room","user_id":"u-42"}"#,
        );
        check(
            WebhookEvent::SubscriptionCount {
                channel: "c".into(),
                subscription_count: 3,
            },
            r#"{"name":"subscription_count","channel":"c","subscription_count":3}"#,
        );
    }
}
