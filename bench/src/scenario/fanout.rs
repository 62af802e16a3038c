//! `fanout`, `cluster` and `churn`: subscribers on C channels, a publisher at a fixed rate through
//! the signed REST API, and publish → receive latency and loss measured over a window.
//! `cluster` puts the subscribers on another node; `churn` adds connections that come and go.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::task::JoinSet;

use crate::cli::{ChurnArgs, ClusterArgs, FanoutArgs};
use crate::fleet::{self, Fleet};
use crate::report::{ChurnStats, DeliveryStats, FleetStats, PublishStats, Report, round1, round3};
use crate::rest::{self, Plan, PublishTarget, RestClient, Tally};
use crate::scenario::{Harness, Samples, spawn_progress};
use crate::stats::{self, Deliveries, now_ns};
use crate::target::{self, Endpoint};

/// What one measured stretch of publishing produced.
pub struct Measurement {
    pub tally: Tally,
    pub deliveries: Deliveries,
    pub window_seconds: f64,
    pub before: Samples,
    pub after: Samples,
}

/// Publishes at `rate` for `warmup + duration`, measuring events sent after the warm-up, then
/// waits (up to `--drain`) for their last deliveries. Returns the REST clients for reuse.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    harness: &Harness,
    clients: Vec<RestClient>,
    target: &Arc<PublishTarget>,
    fleet: Option<&Arc<Fleet>>,
    channels: &Arc<Vec<String>>,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    progress: &Arc<rest::Progress>,
) -> anyhow::Result<(Vec<RestClient>, Measurement)> {
    let start_ns = now_ns() + 20_000_000;
    let window_start_ns = start_ns + warmup.as_nanos() as u64;
    let end_ns = window_start_ns + duration.as_nanos() as u64;
    // Opened ahead of time, so every event is stamped after the window's start is known.
    stats::open_window(window_start_ns);
    let plan = Arc::new(Plan {
        channels: Arc::clone(channels),
        rate,
        start_ns,
        end_ns,
        subscribers: fleet.cloned(),
    });
    let publishing = {
        let (target, progress) = (Arc::clone(target), Arc::clone(progress));
        tokio::spawn(async move { rest::run_publishers(clients, &target, &plan, &progress).await })
    };
    tokio::time::sleep_until(stats::instant_of(window_start_ns).into()).await;
    let before = harness.samples();
    let (clients, tally) = publishing.await.context("publisher panicked")??;
    let after = harness.samples();
    let window_seconds = after.own.at.duration_since(before.own.at).as_secs_f64();

    if fleet.is_some() {
        let drain_end = tokio::time::Instant::now() + harness.settings.drain;
        while stats::delivered_so_far() < tally.expected_deliveries
            && tokio::time::Instant::now() < drain_end
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stats::close_window();
    let deliveries = stats::take_deliveries();
    Ok((
        clients,
        Measurement {
            tally,
            deliveries,
            window_seconds,
            before,
            after,
        },
    ))
}

pub async fn run_fanout(harness: &mut Harness, args: &FanoutArgs) -> anyhow::Result<Report> {
    let endpoint = harness.settings.ws.clone();
    run_steady(harness, "fanout", args, endpoint, None).await
}

pub async fn run_cluster(harness: &mut Harness, args: &ClusterArgs) -> anyhow::Result<Report> {
    let endpoint_b = target::parse_endpoint(&args.ws_url_b, "ws", harness.settings.allow_remote)
        .map_err(|reason| anyhow::anyhow!("--ws-url-b: {reason}"))?;
    harness.server_b_pid = args.server_pid_b;
    run_steady(harness, "cluster", &args.fanout, endpoint_b, None).await
}

pub async fn run_churn(harness: &mut Harness, args: &ChurnArgs) -> anyhow::Result<Report> {
    let endpoint = harness.settings.ws.clone();
    run_steady(harness, "churn", &args.fanout, endpoint, Some(args)).await
}

async fn run_steady(
    harness: &mut Harness,
    scenario: &'static str,
    args: &FanoutArgs,
    subscriber_endpoint: Endpoint,
    churn: Option<&ChurnArgs>,
) -> anyhow::Result<Report> {
    let settings = harness.settings.clone();
    let (_, connections) = settings.share(args.connections);
    let channels = Arc::new(settings.channel_names(args.channels.max(1)));
    let rate = settings.share_rate(args.rate);
    let mut params = json!({
        "connections": connections,
        "channels": channels.len(),
        "rate": rate,
        "publishers": args.publishers,
        "payload_bytes": settings.payload_bytes,
        "warmup_seconds": round3(settings.warmup.as_secs_f64()),
        "duration_seconds": round3(settings.duration.as_secs_f64()),
        "subscribers_on": subscriber_endpoint.addr.to_string(),
        "publisher_on": settings.http.addr.to_string(),
        "source_ips": settings.source_ips,
    });

    let fleet = harness.fleet(&subscriber_endpoint, &channels, true);
    harness.spawn_connections(&fleet, connections);
    harness.wait_for_ramp(scenario, &fleet, connections).await;
    fleet.ensure_any_subscribed()?;

    let target = harness.publish_target();
    let clients = rest::connect_clients(&target, args.publishers).await?;
    let publish_progress = Arc::new(rest::Progress::default());
    let progress = spawn_progress(
        scenario,
        Arc::clone(&publish_progress),
        true,
        harness.server_pids(),
    );

    let churning = churn.map(|churn| {
        let churn_fleet = harness.fleet(&subscriber_endpoint, &channels, false);
        let churn_rate = settings.share_rate(churn.churn_rate);
        let (_, max_open) = settings.share(churn.churn_max_open);
        let run_for = Duration::from_millis(20) + settings.warmup + settings.duration;
        let counts = Arc::new(ChurnCounts::default());
        let driver = tokio::spawn(drive_churn(
            Arc::clone(&churn_fleet),
            churn_rate,
            churn.churn_hold,
            max_open,
            run_for,
            Arc::clone(&counts),
        ));
        params["churn_rate"] = json!(churn_rate);
        params["churn_hold_seconds"] = json!(round3(churn.churn_hold.as_secs_f64()));
        params["churn_max_open"] = json!(max_open);
        (churn_fleet, churn_rate, churn.churn_hold, counts, driver)
    });

    let measured = measure(
        harness,
        clients,
        &target,
        Some(&fleet),
        &channels,
        rate,
        settings.warmup,
        settings.duration,
        &publish_progress,
    )
    .await;
    progress.abort();
    let (_clients, measurement) = measured?;

    let mut report = harness.report(scenario, params, &measurement.before, &measurement.after);
    let fleet_stats = FleetStats::of(&fleet, connections, settings.histograms);
    let publish = PublishStats::of(
        &measurement.tally,
        rate,
        args.publishers,
        measurement.window_seconds,
        settings.histograms,
    );
    let delivery = DeliveryStats::of(
        &measurement.deliveries,
        measurement.tally.expected_deliveries,
        measurement.window_seconds,
        settings.histograms,
    );
    add_warnings(&mut report.warnings, &fleet_stats, &publish, &delivery);

    if let Some((churn_fleet, churn_rate, hold, counts, driver)) = churning {
        driver.await.context("churn driver panicked")?;
        let churn_stats = FleetStats::of(
            &churn_fleet,
            counts.started.load(Ordering::Relaxed),
            settings.histograms,
        );
        if churn_stats.failed > 0 {
            report.warnings.push(format!(
                "{} churning connections failed",
                churn_stats.failed
            ));
        }
        report.churn = Some(ChurnStats {
            target_rate: churn_rate,
            hold_seconds: round3(hold.as_secs_f64()),
            achieved_rate: round1(
                counts.started.load(Ordering::Relaxed) as f64
                    / (settings.warmup + settings.duration).as_secs_f64(),
            ),
            skipped: counts.skipped.load(Ordering::Relaxed),
            closed_normally: churn_fleet.counters.closed_by_us.load(Ordering::Relaxed),
            connections: churn_stats,
        });
    }
    report.connections = Some(fleet_stats);
    report.publish = Some(publish);
    report.delivery = Some(delivery);
    eprintln!(
        "[{scenario}] {} deliveries/s, loss {:.4} %, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; generator cpu {:.0}%",
        report.delivery.as_ref().map_or(0.0, |d| d.deliveries_per_s),
        report
            .delivery
            .as_ref()
            .map_or(0.0, |d| d.loss_ratio * 100.0),
        report.delivery.as_ref().map_or(0.0, |d| d.latency.p50_ms),
        report.delivery.as_ref().map_or(0.0, |d| d.latency.p99_ms),
        report.delivery.as_ref().map_or(0.0, |d| d.latency.max_ms),
        report.generator.cpu_percent,
    );
    Ok(report)
}

/// Flags results that should not be read at face value.
pub fn add_warnings(
    warnings: &mut Vec<String>,
    fleet: &FleetStats,
    publish: &PublishStats,
    delivery: &DeliveryStats,
) {
    if fleet.failed > 0 {
        warnings.push(format!(
            "{} of {} connections failed to subscribe",
            fleet.failed, fleet.requested
        ));
    }
    if fleet.disconnected > 0 {
        warnings.push(format!(
            "{} subscribed connections were closed by the server",
            fleet.disconnected
        ));
    }
    if publish.target_rate > 0.0 && publish.rate_per_s < publish.target_rate * 0.95 {
        warnings.push(format!(
            "published {:.1}/s of the {:.1}/s asked for: the publisher or the REST API was the limit",
            publish.rate_per_s, publish.target_rate
        ));
    }
    if publish.failed_status + publish.transport_errors > 0 {
        warnings.push(format!(
            "{} publishes failed",
            publish.failed_status + publish.transport_errors
        ));
    }
    if delivery.loss_ratio > 0.0 {
        warnings.push(format!(
            "lost {:.4} % of deliveries",
            delivery.loss_ratio * 100.0
        ));
    }
}

#[derive(Default)]
struct ChurnCounts {
    started: AtomicU64,
    skipped: AtomicU64,
}

/// Starts churning connections at `rate` for `run_for`; each subscribes, holds, and closes.
async fn drive_churn(
    fleet: Arc<Fleet>,
    rate: f64,
    hold: Duration,
    max_open: u64,
    run_for: Duration,
    counts: Arc<ChurnCounts>,
) {
    let mut connections = JoinSet::new();
    let deadline = tokio::time::Instant::now() + run_for;
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
    let mut index = 0usize;
    loop {
        let tick = interval.tick().await;
        if tick >= deadline {
            break;
        }
        while connections.try_join_next().is_some() {}
        if connections.len() as u64 >= max_open {
            counts.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        connections.spawn(fleet::run_connection(Arc::clone(&fleet), index, Some(hold)));
        counts.started.fetch_add(1, Ordering::Relaxed);
        index += 1;
    }
    // Let the last ones finish their hold and close normally, then drop any stragglers.
    let _ = tokio::time::timeout(hold + Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}
