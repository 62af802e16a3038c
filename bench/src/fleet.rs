//! A fleet of WebSocket clients: each connects (from one of the source addresses), subscribes to one
//! public channel, then reads frames until it is aborted, closed, or its hold time ends.
//! One light task per connection; each read's frames are byte-searched in place (see `wire`) and
//! their stamps recorded into the thread's delivery shard, locked once per read.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use crate::socket::{self, WsStream};
use crate::stats::{self, DeliverySink, now_ns};
use crate::target::Endpoint;
use crate::wire::{self, Received};
use crate::ws::{Message, Outgoing};

/// Settings and counters shared by every connection of one fleet.
pub struct Fleet {
    pub endpoint: Endpoint,
    /// Request path of the upgrade: prefix, `/app/{key}` and the protocol query.
    pub path: String,
    pub source_ips: Vec<IpAddr>,
    pub channels: Arc<Vec<String>>,
    /// Live subscribers per channel, read by the publisher to count expected deliveries.
    pub subscribers_per_channel: Vec<AtomicU32>,
    /// Whether this fleet's deliveries are measured (the churning fleet's are not).
    pub measured: bool,
    /// Bounds connections between connect and subscription_succeeded.
    pub gate: Semaphore,
    pub setup_timeout: Duration,
    pub counters: Counters,
    /// Connect → subscription_succeeded, in nanoseconds.
    pub setup_latency: Mutex<Histogram<u64>>,
    pub first_failure: Mutex<Option<String>>,
}

/// Monotonic counters of one fleet.
#[derive(Default)]
pub struct Counters {
    pub attempted: AtomicU64,
    pub subscribed: AtomicU64,
    pub failed: AtomicU64,
    /// Subscribed connections that the server (or the network) closed.
    pub disconnected: AtomicU64,
    /// Connections that ended their hold and closed normally.
    pub closed_by_us: AtomicU64,
    pub pusher_errors: AtomicU64,
    pub first_attempt_ns: AtomicU64,
    pub last_subscribed_ns: AtomicU64,
}

impl Counters {
    /// Subscribed connections still open.
    pub fn live(&self) -> u64 {
        self.subscribed.load(Ordering::Relaxed)
            - self.disconnected.load(Ordering::Relaxed)
            - self.closed_by_us.load(Ordering::Relaxed)
    }

    /// Connections that have finished setting up, well or badly.
    pub fn settled(&self) -> u64 {
        self.subscribed.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// How a fleet is built.
pub struct FleetConfig {
    pub endpoint: Endpoint,
    pub app_key: String,
    pub source_ips: Vec<IpAddr>,
    pub channels: Arc<Vec<String>>,
    pub measured: bool,
    pub connect_concurrency: usize,
    pub setup_timeout: Duration,
}

impl Fleet {
    pub fn new(config: FleetConfig) -> Arc<Self> {
        let path = format!(
            "{}/app/{}?protocol=7&client=herald-bench&version={}&flash=false",
            config.endpoint.prefix,
            config.app_key,
            env!("CARGO_PKG_VERSION")
        );
        let counters = Counters::default();
        counters.first_attempt_ns.store(u64::MAX, Ordering::Relaxed);
        Arc::new(Self {
            path,
            source_ips: config.source_ips,
            subscribers_per_channel: config.channels.iter().map(|_| AtomicU32::new(0)).collect(),
            channels: config.channels,
            measured: config.measured,
            gate: Semaphore::new(config.connect_concurrency.max(1)),
            setup_timeout: config.setup_timeout,
            counters,
            setup_latency: Mutex::new(stats::new_histogram()),
            first_failure: Mutex::new(None),
            endpoint: config.endpoint,
        })
    }

    /// Subscribers of `channel_index` right now.
    pub fn subscribers(&self, channel_index: usize) -> u64 {
        u64::from(self.subscribers_per_channel[channel_index].load(Ordering::Relaxed))
    }

    /// Subscriptions per second from the first connect attempt to the last success.
    pub fn ramp(&self) -> (f64, f64) {
        let first = self.counters.first_attempt_ns.load(Ordering::Relaxed);
        let last = self.counters.last_subscribed_ns.load(Ordering::Relaxed);
        let subscribed = self.counters.subscribed.load(Ordering::Relaxed);
        if subscribed == 0 || last <= first {
            return (0.0, 0.0);
        }
        let seconds = (last - first) as f64 / 1e9;
        (seconds, subscribed as f64 / seconds)
    }

    /// Fails the scenario when not one connection subscribed, naming the first failure.
    pub fn ensure_any_subscribed(&self) -> anyhow::Result<()> {
        if self.counters.subscribed.load(Ordering::Relaxed) > 0 {
            return Ok(());
        }
        bail!(
            "no connection subscribed; first failure: {}",
            self.first_failure
                .lock()
                .expect("failure lock")
                .as_deref()
                .unwrap_or("none")
        )
    }

    fn note_failure(&self, error: &anyhow::Error) {
        let mut first = self.first_failure.lock().expect("failure lock");
        if first.is_none() {
            *first = Some(format!("{error:#}"));
        }
    }
}

/// Runs connection `index` of the fleet: connect, subscribe, then read until aborted, or for `hold`
/// and then close with code 1000.
pub async fn run_connection(fleet: Arc<Fleet>, index: usize, hold: Option<Duration>) {
    let channel_index = index % fleet.channels.len();
    let source_ip =
        (!fleet.source_ips.is_empty()).then(|| fleet.source_ips[index % fleet.source_ips.len()]);
    let counters = &fleet.counters;

    let permit = fleet
        .gate
        .acquire()
        .await
        .expect("the gate is never closed");
    let started = now_ns();
    counters.attempted.fetch_add(1, Ordering::Relaxed);
    counters
        .first_attempt_ns
        .fetch_min(started, Ordering::Relaxed);
    let setup = tokio::time::timeout(
        fleet.setup_timeout,
        open_and_subscribe(&fleet, source_ip, &fleet.channels[channel_index]),
    )
    .await;
    drop(permit);
    let (mut socket, mut seen) = match setup {
        Ok(Ok(opened)) => opened,
        Ok(Err(error)) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            fleet.note_failure(&error);
            return;
        }
        Err(_) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            fleet.note_failure(&anyhow::anyhow!(
                "no subscription_succeeded within {:?}",
                fleet.setup_timeout
            ));
            return;
        }
    };
    let subscribed_at = now_ns();
    fleet
        .setup_latency
        .lock()
        .expect("latency lock")
        .saturating_record(subscribed_at.saturating_sub(started).max(1));
    fleet.subscribers_per_channel[channel_index].fetch_add(1, Ordering::Relaxed);
    counters.subscribed.fetch_add(1, Ordering::Relaxed);
    counters
        .last_subscribed_ns
        .fetch_max(subscribed_at, Ordering::Relaxed);

    let ended = match hold {
        None => read_until_closed(&fleet, &mut socket, &mut seen).await,
        Some(hold) => {
            match tokio::time::timeout(hold, read_until_closed(&fleet, &mut socket, &mut seen))
                .await
            {
                Ok(ended) => ended,
                Err(_) => {
                    close_gracefully(&fleet, &mut socket, &mut seen).await;
                    Ended::ByUs
                }
            }
        }
    };
    fleet.subscribers_per_channel[channel_index].fetch_sub(1, Ordering::Relaxed);
    match ended {
        Ended::ByServer => counters.disconnected.fetch_add(1, Ordering::Relaxed),
        Ended::ByUs => counters.closed_by_us.fetch_add(1, Ordering::Relaxed),
    };
}

/// Sends a normal close and waits briefly for the server's close reply.
async fn close_gracefully(fleet: &Fleet, socket: &mut WsStream, seen: &mut Seen) {
    if socket
        .send(Outgoing::Close, &1000u16.to_be_bytes())
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while read_batch(fleet, socket, seen).await.is_ok() {}
    })
    .await;
}

enum Ended {
    ByServer,
    ByUs,
}

/// What a connection has been told by the server, updated message by message.
#[derive(Default)]
struct Seen {
    established: bool,
    subscribed: bool,
    /// `pusher:ping`s not answered yet.
    pusher_pings: u32,
    /// The payload of a WebSocket ping not answered yet.
    ws_ping: Option<Vec<u8>>,
    /// Why the server closed the connection.
    closed: Option<String>,
    /// A `pusher:error` received before the subscription succeeded.
    setup_error: Option<String>,
}

impl Seen {
    fn on_message(
        &mut self,
        fleet: &Fleet,
        sink: &mut DeliverySink<'_>,
        message: Message<'_>,
        received_at: u64,
    ) {
        match message {
            Message::Text(text) => match wire::classify(text) {
                Received::Stamped(sent_at) => {
                    if fleet.measured {
                        sink.record(sent_at, received_at);
                    }
                }
                Received::Ping => self.pusher_pings += 1,
                Received::ConnectionEstablished => self.established = true,
                Received::SubscriptionSucceeded => self.subscribed = true,
                Received::Error if self.subscribed => {
                    fleet.counters.pusher_errors.fetch_add(1, Ordering::Relaxed);
                }
                Received::Error => {
                    self.setup_error
                        .get_or_insert_with(|| String::from_utf8_lossy(text).into_owned());
                }
                Received::Other => {}
            },
            Message::Ping(payload) => self.ws_ping = Some(payload.to_vec()),
            Message::Close(payload) => {
                self.closed
                    .get_or_insert_with(|| close_description(payload));
            }
        }
    }
}

/// Reads once, handles what arrived, and answers pings. Errors once the connection is over.
async fn read_batch(fleet: &Fleet, socket: &mut WsStream, seen: &mut Seen) -> anyhow::Result<()> {
    std::future::poll_fn(|context| {
        stats::with_delivery_sink(|sink| {
            socket.poll_batch(context, &mut |message, received_at| {
                seen.on_message(fleet, sink, message, received_at);
            })
        })
    })
    .await
    .context("reading")?;
    if let Some(reason) = &seen.closed {
        bail!("server closed the socket: {reason}");
    }
    if let Some(payload) = seen.ws_ping.take() {
        socket
            .send(Outgoing::Pong, &payload)
            .await
            .context("answering a ping")?;
    }
    while seen.pusher_pings > 0 {
        seen.pusher_pings -= 1;
        socket
            .send(Outgoing::Text, wire::PONG_FRAME)
            .await
            .context("answering pusher:ping")?;
    }
    Ok(())
}

async fn read_until_closed(fleet: &Fleet, socket: &mut WsStream, seen: &mut Seen) -> Ended {
    while read_batch(fleet, socket, seen).await.is_ok() {}
    Ended::ByServer
}

async fn open_and_subscribe(
    fleet: &Fleet,
    source_ip: Option<IpAddr>,
    channel: &str,
) -> anyhow::Result<(WsStream, Seen)> {
    let mut socket = socket::connect(&fleet.endpoint, &fleet.path, source_ip).await?;
    let mut seen = Seen::default();
    wait_for(fleet, &mut socket, &mut seen, |seen| seen.established).await?;
    socket
        .send(Outgoing::Text, &wire::subscribe_frame(channel))
        .await
        .context("sending pusher:subscribe")?;
    wait_for(fleet, &mut socket, &mut seen, |seen| seen.subscribed).await?;
    Ok((socket, seen))
}

async fn wait_for(
    fleet: &Fleet,
    socket: &mut WsStream,
    seen: &mut Seen,
    done: impl Fn(&Seen) -> bool,
) -> anyhow::Result<()> {
    while !done(seen) {
        let read = read_batch(fleet, socket, seen).await;
        // A server refusing the connection often closes it right after saying why.
        if let Some(error) = &seen.setup_error {
            bail!("server answered {error}");
        }
        read.context("reading the handshake frames")?;
    }
    Ok(())
}

fn close_description(payload: &[u8]) -> String {
    if payload.len() < 2 {
        return "no close code".to_owned();
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    format!("{code} {}", String::from_utf8_lossy(&payload[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payload_is_described() {
        assert_eq!(close_description(&[0x0f, 0xa1, b'n', b'o']), "4001 no");
        assert_eq!(close_description(&[]), "no close code");
    }
}
