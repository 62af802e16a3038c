//! Metric handles and their Prometheus text exposition at `GET /metrics`.
//! Counters are plain atomics, cheap enough for the paths that update them.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

/// Every metric Herald exports. Gauges that mirror state are set just before they are read.
pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub channel_events: Counter,
    pub client_events: Counter,
    pub webhooks_produced: Counter,
    pub webhooks_delivered: Counter,
    pub webhooks_retried: Counter,
    pub webhooks_failed: Counter,
    pub webhooks_dead_lettered: Counter,
    pub webhooks_pending: Gauge,
    pub webhooks_dead: Gauge,
    pub webhooks_oldest_pending_seconds: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("herald");
        let mut gauge = |name: &str, help: &str| {
            let metric = Gauge::default();
            registry.register(name, help, metric.clone());
            metric
        };
        let connections = gauge("connections", "Open WebSocket connections on this node");
        let webhooks_pending = gauge(
            "webhooks_pending",
            "Webhook deliveries waiting in the outbox",
        );
        let webhooks_dead = gauge("webhooks_dead", "Webhook deliveries in the dead letters");
        let webhooks_oldest_pending_seconds = gauge(
            "webhooks_oldest_pending_seconds",
            "Age of the oldest pending webhook delivery",
        );
        let mut counter = |name: &str, help: &str| {
            let metric = Counter::default();
            registry.register(name, help, metric.clone());
            metric
        };
        Metrics {
            channel_events: counter(
                "channel_events",
                "Events published through the HTTP API, per channel",
            ),
            client_events: counter("client_events", "Client events relayed"),
            webhooks_produced: counter("webhooks_produced", "Webhook events produced"),
            webhooks_delivered: counter(
                "webhooks_delivered",
                "Webhook deliveries answered with 2xx",
            ),
            webhooks_retried: counter(
                "webhooks_retried",
                "Failed webhook attempts that will be retried",
            ),
            webhooks_failed: counter("webhooks_failed", "Failed webhook attempts"),
            webhooks_dead_lettered: counter(
                "webhooks_dead_lettered",
                "Webhook deliveries moved to the dead letters",
            ),
            connections,
            webhooks_pending,
            webhooks_dead,
            webhooks_oldest_pending_seconds,
            registry,
        }
    }

    /// The Prometheus text format of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
