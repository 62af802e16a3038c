//! The webhook outbox: deliveries are written here before they count as produced, and leave it only
//! when a target answered 2xx or an operator dropped them. `DeliveryStore` has an embedded
//! implementation for one node and a Redis one for clusters.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Attempts kept per delivery for the operator API; older ones are summarised by `n_attempts`.
pub const KEPT_ATTEMPTS: usize = 20;

/// One webhook request to make: the body is final, the signature is computed when it is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    pub app_id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// `{"time_ms":…,"events":[…]}`.
    pub body: String,
    /// Unix milliseconds when the events were produced.
    pub created_ms: u64,
}

impl NewDelivery {
    /// Deliveries to one target are made strictly in order, which keeps every channel's events in order.
    pub fn target(&self) -> String {
        target_key(&self.app_id, &self.url)
    }
}

pub fn target_key(app_id: &str, url: &str) -> String {
    format!("{app_id} {url}")
}

/// One try at sending a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at_ms: u64,
    /// HTTP status, when the target answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    /// Gave up after the maximum age; kept for the operator to retry or drop.
    Dead,
}

/// A stored delivery with its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: u64,
    #[serde(flatten)]
    pub request: NewDelivery,
    pub state: DeliveryState,
    pub n_attempts: u32,
    /// The last `KEPT_ATTEMPTS` attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// Unix milliseconds of the next try (pending deliveries).
    pub next_attempt_ms: u64,
}

impl Delivery {
    pub fn record(&mut self, attempt: Attempt) {
        self.n_attempts += 1;
        self.attempts.push(attempt);
        if self.attempts.len() > KEPT_ATTEMPTS {
            self.attempts.remove(0);
        }
    }
}

/// Counts for metrics and `/ready`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub pending: u64,
    pub dead: u64,
    /// Creation time of the oldest pending delivery.
    pub oldest_pending_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("webhook store: {0}")]
    Backend(String),
}

/// Where webhook deliveries wait. Every method is durable when it returns.
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Appends deliveries in order, due at once.
    async fn append(&self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError>;

    /// The oldest pending delivery of every target.
    async fn heads(&self) -> Result<Vec<Delivery>, StoreError>;

    /// Removes a delivered delivery.
    async fn delivered(&self, delivery: &Delivery) -> Result<(), StoreError>;

    /// Saves a failed attempt: the delivery stays pending until `next_attempt_ms`, or goes to the
    /// dead letters when `next_attempt_ms` is `None`.
    async fn failed(
        &self,
        delivery: &Delivery,
        next_attempt_ms: Option<u64>,
    ) -> Result<(), StoreError>;

    /// An app's deliveries in one state, oldest first, at most `limit`.
    async fn list(
        &self,
        app_id: &str,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Moves one dead delivery (or all of an app's) back to pending, due now. Returns how many moved.
    async fn retry(&self, app_id: &str, id: Option<u64>, now_ms: u64) -> Result<usize, StoreError>;

    /// Deletes one delivery, pending or dead. Returns whether it existed.
    async fn drop_delivery(&self, app_id: &str, id: u64) -> Result<bool, StoreError>;

    async fn stats(&self) -> Result<StoreStats, StoreError>;
}
