//! Delivers stored webhooks at least once: the oldest pending delivery of each target is sent, in
//! order, with exponential back-off and jitter between failures, until a 2xx or the maximum age.
//! This is the only place Herald makes outbound HTTP calls.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use rand::RngExt;
use tokio::sync::{Notify, mpsc};

use super::{
    WebhookConfig, now_ms,
    store::{Attempt, Delivery, DeliveryStore},
};
use crate::{app::Apps, auth, metrics::Metrics};

/// The longest the loop waits before looking at the outbox again.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the delivery loop on the current (actix) thread.
pub fn start(
    store: Arc<dyn DeliveryStore>,
    apps: Apps,
    config: WebhookConfig,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
) {
    let client = http_client(config.request_timeout);
    let sender = Sender {
        store,
        apps,
        config,
        metrics,
        wake,
        client,
    };
    actix_web::rt::spawn(sender.run());
}

fn http_client(timeout: Duration) -> awc::Client {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .timeout(timeout)
        .disable_redirects()
        .add_default_header(("User-Agent", concat!("Herald/", env!("CARGO_PKG_VERSION"))))
        .finish()
}

struct Sender {
    store: Arc<dyn DeliveryStore>,
    apps: Apps,
    config: WebhookConfig,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    client: awc::Client,
}

impl Sender {
    async fn run(self) {
        // The awc client is single-threaded, so the loop and its sends share it through an Rc.
        let this = std::rc::Rc::new(self);
        let mut in_flight: HashSet<String> = HashSet::new();
        let (finished, mut finished_targets) = mpsc::unbounded_channel::<String>();
        loop {
            let mut next_due: Option<u64> = None;
            match this.store.heads().await {
                Ok(heads) => {
                    let now = now_ms();
                    for head in heads {
                        let target = head.request.target();
                        if in_flight.contains(&target) {
                            continue;
                        }
                        if head.next_attempt_ms > now {
                            next_due =
                                Some(next_due.map_or(head.next_attempt_ms, |due| {
                                    due.min(head.next_attempt_ms)
                                }));
                            continue;
                        }
                        in_flight.insert(target.clone());
                        let sender = this.clone();
                        let finished = finished.clone();
                        actix_web::rt::spawn(async move {
                            sender.deliver(head).await;
                            let _ = finished.send(target);
                        });
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the webhook outbox; retrying");
                    next_due = Some(now_ms() + 1000);
                }
            }
            this.update_gauges().await;
            // Look again at least this often: in a cluster, another node's deliveries may need taking over.
            let wait = next_due
                .map(|due| Duration::from_millis(due.saturating_sub(now_ms())))
                .unwrap_or(POLL_INTERVAL)
                .min(POLL_INTERVAL);
            tokio::select! {
                () = this.wake.notified() => {}
                Some(target) = finished_targets.recv() => {
                    in_flight.remove(&target);
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn update_gauges(&self) {
        if let Ok(stats) = self.store.stats().await {
            self.metrics.webhooks_pending.set(stats.pending as i64);
            self.metrics.webhooks_dead.set(stats.dead as i64);
            let age = stats
                .oldest_pending_ms
                .map_or(0, |created| now_ms().saturating_sub(created) / 1000);
            self.metrics.webhooks_oldest_pending_seconds.set(age as i64);
        }
    }

    /// One attempt at the target's oldest delivery, and what follows from it.
    async fn deliver(&self, mut delivery: Delivery) {
        let started = Instant::now();
        let outcome = self.send(&delivery).await;
        let attempt = Attempt {
            at_ms: now_ms(),
            status: outcome
                .as_ref()
                .map_or_else(|(status, _)| *status, |status| Some(*status)),
            latency_ms: started.elapsed().as_millis() as u64,
            error: outcome.as_ref().err().map(|(_, error)| error.clone()),
        };
        delivery.record(attempt);
        let saved = match outcome {
            Ok(_) => {
                self.metrics.webhooks_delivered.inc();
                self.store.delivered(&delivery).await
            }
            Err((_, error)) => {
                self.metrics.webhooks_failed.inc();
                let next = self.next_attempt(&delivery);
                match next {
                    Some(_) => self.metrics.webhooks_retried.inc(),
                    None => self.metrics.webhooks_dead_lettered.inc(),
                };
                tracing::warn!(
                    app = %delivery.request.app_id,
                    url = %delivery.request.url,
                    id = delivery.id,
                    attempts = delivery.n_attempts,
                    %error,
                    dead = next.is_none(),
                    "webhook delivery failed"
                );
                self.store.failed(&delivery, next).await
            }
        };
        if let Err(error) = saved {
            // The delivery stays as it was in the outbox and is tried again: at least once, never lost.
            tracing::error!(%error, id = delivery.id, "cannot record a webhook attempt");
        }
    }

    /// Exponential back-off with ±50 % jitter; `None` once the next try would pass the maximum age.
    fn next_attempt(&self, delivery: &Delivery) -> Option<u64> {
        let exponent = delivery.n_attempts.saturating_sub(1).min(30);
        let backoff = self
            .config
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.config.max_backoff);
        let jitter = rand::rng().random_range(0.5..1.5);
        let next = now_ms() + backoff.mul_f64(jitter).as_millis() as u64;
        let deadline = delivery.request.created_ms + self.config.max_age.as_millis() as u64;
        (next <= deadline).then_some(next)
    }

    /// POSTs the body, signed with the app's current secret; `Ok(status)` for 2xx.
    async fn send(&self, delivery: &Delivery) -> Result<u16, (Option<u16>, String)> {
        let Some(app) = self.apps.by_id(&delivery.request.app_id) else {
            return Err((
                None,
                format!("app {} is no longer configured", delivery.request.app_id),
            ));
        };
        let signature = auth::webhook_signature(&app.secret, delivery.request.body.as_bytes());
        let mut request = self
            .client
            .post(&delivery.request.url)
            // Title-case names: the PHP SDK's verifier looks headers up with exact casing (spec §10.1).
            .camel_case()
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Pusher-Key", app.key.as_str()))
            .insert_header(("X-Pusher-Signature", signature));
        for (name, value) in &delivery.request.headers {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        match request.send_body(delivery.request.body.clone()).await {
            Ok(mut response) => {
                let status = response.status();
                // Drain a little of the body so the connection can be reused.
                let _ = response.body().limit(64 * 1024).await;
                if status.is_success() {
                    Ok(status.as_u16())
                } else {
                    Err((Some(status.as_u16()), format!("HTTP {status}")))
                }
            }
            Err(error) => Err((None, error.to_string())),
        }
    }
}
