//! Signed REST publishing over kept-alive HTTP/1.1 connections (hyper), and the publisher that
//! sends stamped events at a set rate from several such connections (spec §9.2, §9.3).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::fleet::Fleet;
use crate::sign::{self, Credentials};
use crate::socket;
use crate::stats::{self, now_ns};
use crate::target::Endpoint;
use crate::wire;

/// Where and as whom events are published.
pub struct PublishTarget {
    pub endpoint: Endpoint,
    pub source_ip: Option<IpAddr>,
    pub credentials: Credentials,
    pub event_name: String,
    pub payload_bytes: usize,
}

impl PublishTarget {
    fn signed_path(&self) -> String {
        format!("/apps/{}/events", self.credentials.app_id)
    }
}

/// One kept-alive HTTP/1.1 connection that publishes one event per request.
pub struct RestClient {
    sender: SendRequest<Full<Bytes>>,
    body: Vec<u8>,
    signed_path: String,
}

impl RestClient {
    pub async fn connect(target: &PublishTarget) -> anyhow::Result<Self> {
        let stream = socket::connect_tcp(target.endpoint.addr, target.source_ip).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            body: Vec::with_capacity(target.payload_bytes + 256),
            signed_path: target.signed_path(),
        })
    }

    /// Publishes one event stamped `sent_at` to `channel`; returns the HTTP status and, for a
    /// failure, the start of the response body.
    pub async fn publish(
        &mut self,
        target: &PublishTarget,
        channel: &str,
        sent_at: u64,
    ) -> anyhow::Result<(u16, Option<String>)> {
        wire::publish_body(
            &mut self.body,
            &target.event_name,
            channel,
            sent_at,
            target.payload_bytes,
        );
        let auth_timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let query = sign::signed_query(
            &target.credentials,
            "POST",
            &self.signed_path,
            &self.body,
            auth_timestamp,
        );
        let request = hyper::Request::post(format!(
            "{}{}?{query}",
            target.endpoint.prefix, self.signed_path
        ))
        .header(hyper::header::HOST, &target.endpoint.host_header)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(&self.body)))
        .context("building the request")?;
        self.sender.ready().await.context("connection not ready")?;
        let response = self.sender.send_request(request).await.context("sending")?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the response")?;
        let failure = (!(200..300).contains(&status)).then(|| {
            let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
            text.chars().take(200).collect()
        });
        Ok((status, failure))
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// What the publisher does: which channels, how fast, until when.
pub struct Plan {
    pub channels: Arc<Vec<String>>,
    /// Events per second over all workers; `0.0` means as fast as the workers can go.
    pub rate: f64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The measured fleet, whose per-channel subscribers make the expected deliveries.
    pub subscribers: Option<Arc<Fleet>>,
}

/// The outcome of a publishing run, over all workers.
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    pub failed_status: u64,
    pub transport_errors: u64,
    /// Successful publishes stamped inside the measurement window.
    pub ok_in_window: u64,
    /// Deliveries expected from `ok_in_window`: each event times its channel's subscribers.
    pub expected_deliveries: u64,
    /// How far behind its schedule a send started, at worst.
    pub max_lag_ns: u64,
    /// Request round trips of in-window publishes, in nanoseconds.
    pub latency: Histogram<u64>,
    pub first_failure: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            sent: 0,
            ok: 0,
            failed_status: 0,
            transport_errors: 0,
            ok_in_window: 0,
            expected_deliveries: 0,
            max_lag_ns: 0,
            latency: stats::new_histogram(),
            first_failure: None,
        }
    }

    fn absorb(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.failed_status += other.failed_status;
        self.transport_errors += other.transport_errors;
        self.ok_in_window += other.ok_in_window;
        self.expected_deliveries += other.expected_deliveries;
        self.max_lag_ns = self.max_lag_ns.max(other.max_lag_ns);
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// Live progress of a publisher, for the progress line.
#[derive(Default)]
pub struct Progress {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// Opens `count` kept-alive REST connections.
pub async fn connect_clients(
    target: &PublishTarget,
    count: usize,
) -> anyhow::Result<Vec<RestClient>> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        clients.push(
            RestClient::connect(target)
                .await
                .context("opening a REST connection")?,
        );
    }
    Ok(clients)
}

/// Publishes from every client along one schedule: event `i` is due at `start + i / rate`, and
/// whichever client is free takes it. Returns the clients, for the next step, and the tally.
pub async fn run_publishers(
    clients: Vec<RestClient>,
    target: &Arc<PublishTarget>,
    plan: &Arc<Plan>,
    progress: &Arc<Progress>,
) -> anyhow::Result<(Vec<RestClient>, Tally)> {
    let next_ticket = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (target, plan, progress) = (Arc::clone(target), Arc::clone(plan), Arc::clone(progress));
        let next_ticket = Arc::clone(&next_ticket);
        tasks.spawn(async move {
            publish_worker(client, &target, &plan, &next_ticket, &progress).await
        });
    }
    let mut clients = Vec::with_capacity(tasks.len());
    let mut tally = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        let (client, worker_tally) = joined.context("publisher worker panicked")?;
        clients.push(client);
        tally.absorb(worker_tally);
    }
    if tally.ok == 0 && tally.sent > 0 {
        bail!(
            "no publish succeeded ({} sent); first failure: {}",
            tally.sent,
            tally.first_failure.as_deref().unwrap_or("none")
        );
    }
    Ok((clients, tally))
}

async fn publish_worker(
    mut client: RestClient,
    target: &PublishTarget,
    plan: &Plan,
    next_ticket: &AtomicU64,
    progress: &Progress,
) -> (RestClient, Tally) {
    let mut tally = Tally::new();
    loop {
        let ticket = next_ticket.fetch_add(1, Ordering::Relaxed);
        let due = if plan.rate > 0.0 {
            plan.start_ns + (ticket as f64 * 1e9 / plan.rate) as u64
        } else {
            now_ns()
        };
        if due >= plan.end_ns {
            break;
        }
        if due > now_ns() {
            tokio::time::sleep_until(stats::instant_of(due).into()).await;
        }
        if client.is_closed() {
            match RestClient::connect(target).await {
                Ok(reconnected) => client = reconnected,
                Err(error) => {
                    tally.transport_errors += 1;
                    tally
                        .first_failure
                        .get_or_insert_with(|| format!("{error:#}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let channel_index = (ticket % plan.channels.len() as u64) as usize;
        let sent_at = now_ns();
        tally.max_lag_ns = tally.max_lag_ns.max(sent_at.saturating_sub(due));
        let measured = stats::in_window(sent_at);
        let subscribers = plan
            .subscribers
            .as_ref()
            .map_or(0, |fleet| fleet.subscribers(channel_index));
        tally.sent += 1;
        match client
            .publish(target, &plan.channels[channel_index], sent_at)
            .await
        {
            Ok((_, None)) => {
                tally.ok += 1;
                progress.ok.fetch_add(1, Ordering::Relaxed);
                if measured {
                    tally.ok_in_window += 1;
                    tally.expected_deliveries += subscribers;
                    tally
                        .latency
                        .saturating_record(now_ns().saturating_sub(sent_at).max(1));
                }
            }
            Ok((status, Some(body))) => {
                tally.failed_status += 1;
                progress.failed.fetch_add(1, Ordering::Relaxed);
                tally
                    .first_failure
                    .get_or_insert_with(|| format!("HTTP {status}: {body}"));
            }
            Err(error) => {
                tally.transport_errors += 1;
                progress.failed.fetch_add(1, Ordering::Relaxed);
                tally
                    .first_failure
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    (client, tally)
}
