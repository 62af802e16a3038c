//! The JSON summary each scenario prints on stdout, and how shards' summaries merge into one.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::fleet::Fleet;
use crate::process::{self, Sample};
use crate::rest::Tally;
use crate::stats::{self, LatencySummary};

/// One scenario's result. Sections that do not apply to a scenario are left out.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub version: String,
    pub shard: ShardInfo,
    /// The scenario's settings, as this process ran them (after dividing by the shard count).
    pub params: serde_json::Value,
    pub generator: GeneratorStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_b: Option<ServerStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<FleetStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
}

/// The generator's own load over the measured part of the run.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct GeneratorStats {
    pub threads: usize,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    /// Percent of one core; near `100 × threads` means the generator, not the server, was the limit.
    pub cpu_percent: f64,
    pub saturated: bool,
    pub max_rss_bytes: u64,
}

impl GeneratorStats {
    pub fn between(threads: usize, before: &Sample, after: &Sample) -> Self {
        let cpu_percent = process::cpu_percent(before, after);
        Self {
            threads,
            wall_seconds: round3(after.at.duration_since(before.at).as_secs_f64()),
            cpu_seconds: round3(after.cpu_seconds - before.cpu_seconds),
            cpu_percent,
            saturated: cpu_percent >= 90.0 * threads as f64,
            max_rss_bytes: after.rss_bytes,
        }
    }
}

/// The server process under test, when its pid was given.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ServerStats {
    pub pid: u32,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// Percent of one core over the measured part of the run.
    pub cpu_percent: f64,
}

impl ServerStats {
    pub fn between(pid: u32, before: &Sample, after: &Sample) -> Self {
        Self {
            pid,
            rss_before_bytes: before.rss_bytes,
            rss_after_bytes: after.rss_bytes,
            cpu_percent: process::cpu_percent(before, after),
        }
    }
}

/// How a fleet's connections fared.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct FleetStats {
    pub requested: u64,
    pub subscribed: u64,
    pub failed: u64,
    pub disconnected: u64,
    pub pusher_errors: u64,
    /// First connect attempt to last subscription_succeeded.
    pub ramp_seconds: f64,
    pub subscriptions_per_s: f64,
    /// Connect → subscription_succeeded per connection.
    pub setup_latency: LatencySummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
}

impl FleetStats {
    pub fn of(fleet: &Fleet, requested: u64, keep_buckets: bool) -> Self {
        let (ramp_seconds, subscriptions_per_s) = fleet.ramp();
        let counters = &fleet.counters;
        Self {
            requested,
            subscribed: counters.subscribed.load(Ordering::Relaxed),
            failed: counters.failed.load(Ordering::Relaxed),
            disconnected: counters.disconnected.load(Ordering::Relaxed),
            pusher_errors: counters.pusher_errors.load(Ordering::Relaxed),
            ramp_seconds: round3(ramp_seconds),
            subscriptions_per_s: round1(subscriptions_per_s),
            setup_latency: stats::summarize(
                &fleet.setup_latency.lock().expect("latency lock"),
                keep_buckets,
            ),
            first_failure: fleet.first_failure.lock().expect("failure lock").clone(),
        }
    }
}

/// The idle scenario's memory figure.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct IdleStats {
    pub hold_seconds: f64,
    /// (server RSS after the hold − server RSS before connecting) ÷ subscribed connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_per_connection_bytes: Option<f64>,
}

/// REST publishing as the publisher saw it.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct PublishStats {
    /// Events per second asked for; 0 means as fast as the connections allow.
    pub target_rate: f64,
    pub concurrency: usize,
    pub sent: u64,
    pub ok: u64,
    pub failed_status: u64,
    pub transport_errors: u64,
    /// Successful in-window publishes per second of the window.
    pub rate_per_s: f64,
    pub max_lag_ms: f64,
    /// Round trip of one publish request.
    pub latency: LatencySummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
}

impl PublishStats {
    pub fn of(
        tally: &Tally,
        target_rate: f64,
        concurrency: usize,
        window_seconds: f64,
        keep_buckets: bool,
    ) -> Self {
        Self {
            target_rate,
            concurrency,
            sent: tally.sent,
            ok: tally.ok,
            failed_status: tally.failed_status,
            transport_errors: tally.transport_errors,
            rate_per_s: round1(per_second(tally.ok_in_window, window_seconds)),
            max_lag_ms: round3(tally.max_lag_ns as f64 / 1e6),
            latency: stats::summarize(&tally.latency, keep_buckets),
            first_failure: tally.first_failure.clone(),
        }
    }
}

/// Publish → receive, over the measured subscribers.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct DeliveryStats {
    pub window_seconds: f64,
    /// Σ over in-window events of the subscribers of its channel.
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries of events sent before the window (warm-up) or after it.
    pub outside_window: u64,
    /// 1 − delivered ÷ expected.
    pub loss_ratio: f64,
    pub deliveries_per_s: f64,
    pub latency: LatencySummary,
}

impl DeliveryStats {
    pub fn of(
        deliveries: &stats::Deliveries,
        expected: u64,
        window_seconds: f64,
        keep_buckets: bool,
    ) -> Self {
        Self {
            window_seconds: round3(window_seconds),
            expected,
            delivered: deliveries.delivered,
            outside_window: deliveries.outside_window,
            loss_ratio: loss_ratio(expected, deliveries.delivered),
            deliveries_per_s: round1(per_second(deliveries.delivered, window_seconds)),
            latency: stats::summarize(&deliveries.latency, keep_buckets),
        }
    }
}

/// The churning connections of the churn scenario.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ChurnStats {
    pub target_rate: f64,
    pub hold_seconds: f64,
    /// New connections started per second.
    pub achieved_rate: f64,
    /// Starts skipped because `--churn-max-open` connections were already open.
    pub skipped: u64,
    pub closed_normally: u64,
    pub connections: FleetStats,
}

/// One step of the maxfanout search.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Step {
    pub target_rate: f64,
    pub publish_rate_per_s: f64,
    pub expected: u64,
    pub delivered: u64,
    pub deliveries_per_s: f64,
    pub loss_ratio: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub disconnected: u64,
    pub generator_cpu_percent: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_percent: Option<f64>,
    pub sustained: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_because: Option<String>,
}

pub fn loss_ratio(expected: u64, delivered: u64) -> f64 {
    if expected == 0 {
        return 0.0;
    }
    let ratio = 1.0 - delivered as f64 / expected as f64;
    (ratio * 1e6).round() / 1e6
}

pub fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

pub fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Merges the summaries of shards that ran side by side against the same server.
///
/// Counts and rates add up; latencies merge from the histogram buckets each shard kept
/// (`--histograms`); the server's figures come from the widest view any shard had.
pub fn merge(reports: Vec<Report>) -> Result<Report, String> {
    let mut reports = reports.into_iter();
    let mut merged = reports.next().ok_or("nothing to merge")?;
    if merged.scenario == "maxfanout" {
        return Err("maxfanout steps cannot be merged: run it as one process, or shards of fanout at fixed rates".to_owned());
    }
    let mut n_shards = 1;
    for report in reports {
        if report.scenario != merged.scenario {
            return Err(format!(
                "cannot merge {} with {}",
                merged.scenario, report.scenario
            ));
        }
        n_shards += 1;
        merge_generator(&mut merged.generator, &report.generator);
        merge_option(&mut merged.server, report.server, merge_server);
        merge_option(&mut merged.server_b, report.server_b, merge_server);
        merge_option(&mut merged.connections, report.connections, merge_fleet);
        merge_option(&mut merged.publish, report.publish, merge_publish);
        merge_option(&mut merged.delivery, report.delivery, merge_delivery);
        merge_option(&mut merged.churn, report.churn, |into, from| {
            into.target_rate += from.target_rate;
            into.achieved_rate = round1(into.achieved_rate + from.achieved_rate);
            into.skipped += from.skipped;
            into.closed_normally += from.closed_normally;
            merge_fleet(&mut into.connections, from.connections);
        });
        merged.warnings.extend(report.warnings);
    }
    if let (Some(idle), Some(server), Some(connections)) =
        (&mut merged.idle, &merged.server, &merged.connections)
        && connections.subscribed > 0
    {
        idle.rss_per_connection_bytes = Some(round1(
            server
                .rss_after_bytes
                .saturating_sub(server.rss_before_bytes) as f64
                / connections.subscribed as f64,
        ));
    }
    merged.shard = ShardInfo {
        index: 0,
        count: n_shards,
    };
    Ok(merged)
}

fn merge_option<T>(into: &mut Option<T>, from: Option<T>, merge: impl FnOnce(&mut T, T)) {
    match (into.as_mut(), from) {
        (Some(into), Some(from)) => merge(into, from),
        (None, Some(from)) => *into = Some(from),
        (_, None) => {}
    }
}

fn merge_generator(into: &mut GeneratorStats, from: &GeneratorStats) {
    into.threads += from.threads;
    into.wall_seconds = into.wall_seconds.max(from.wall_seconds);
    into.cpu_seconds = round3(into.cpu_seconds + from.cpu_seconds);
    into.cpu_percent = round1(into.cpu_percent + from.cpu_percent);
    into.saturated |= from.saturated;
    into.max_rss_bytes += from.max_rss_bytes;
}

fn merge_server(into: &mut ServerStats, from: ServerStats) {
    into.rss_before_bytes = into.rss_before_bytes.min(from.rss_before_bytes);
    into.rss_after_bytes = into.rss_after_bytes.max(from.rss_after_bytes);
    into.cpu_percent = into.cpu_percent.max(from.cpu_percent);
}

fn merge_latency(into: &mut LatencySummary, from: &LatencySummary) {
    if from.count == 0 {
        return;
    }
    if into.count == 0 {
        *into = from.clone();
        return;
    }
    if into.histogram.is_empty() || from.histogram.is_empty() {
        // Without buckets only the extremes merge exactly; percentiles are left as the worst shard's.
        into.count += from.count;
        into.min_ms = into.min_ms.min(from.min_ms);
        into.max_ms = into.max_ms.max(from.max_ms);
        into.p50_ms = into.p50_ms.max(from.p50_ms);
        into.p90_ms = into.p90_ms.max(from.p90_ms);
        into.p99_ms = into.p99_ms.max(from.p99_ms);
        into.p999_ms = into.p999_ms.max(from.p999_ms);
        into.mean_ms = into.mean_ms.max(from.mean_ms);
        return;
    }
    let mut histogram = stats::histogram_from_buckets(&into.histogram);
    histogram
        .add(stats::histogram_from_buckets(&from.histogram))
        .expect("histograms share bounds");
    *into = stats::summarize(&histogram, true);
}

fn merge_fleet(into: &mut FleetStats, from: FleetStats) {
    into.requested += from.requested;
    into.subscribed += from.subscribed;
    into.failed += from.failed;
    into.disconnected += from.disconnected;
    into.pusher_errors += from.pusher_errors;
    into.ramp_seconds = into.ramp_seconds.max(from.ramp_seconds);
    into.subscriptions_per_s = round1(into.subscriptions_per_s + from.subscriptions_per_s);
    merge_latency(&mut into.setup_latency, &from.setup_latency);
    if into.first_failure.is_none() {
        into.first_failure = from.first_failure;
    }
}

fn merge_publish(into: &mut PublishStats, from: PublishStats) {
    into.target_rate += from.target_rate;
    into.concurrency += from.concurrency;
    into.sent += from.sent;
    into.ok += from.ok;
    into.failed_status += from.failed_status;
    into.transport_errors += from.transport_errors;
    into.rate_per_s = round1(into.rate_per_s + from.rate_per_s);
    into.max_lag_ms = into.max_lag_ms.max(from.max_lag_ms);
    merge_latency(&mut into.latency, &from.latency);
    if into.first_failure.is_none() {
        into.first_failure = from.first_failure;
    }
}

fn merge_delivery(into: &mut DeliveryStats, from: DeliveryStats) {
    into.window_seconds = into.window_seconds.max(from.window_seconds);
    into.expected += from.expected;
    into.delivered += from.delivered;
    into.outside_window += from.outside_window;
    into.loss_ratio = loss_ratio(into.expected, into.delivered);
    into.deliveries_per_s = round1(into.deliveries_per_s + from.deliveries_per_s);
    merge_latency(&mut into.latency, &from.latency);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fanout_shard(delivered: u64, millis: &[u64]) -> Report {
        let mut histogram = stats::new_histogram();
        for value in millis {
            histogram.record(value * 1_000_000).unwrap();
        }
        Report {
            scenario: "fanout".to_owned(),
            version: "0".to_owned(),
            shard: ShardInfo { index: 0, count: 2 },
            params: serde_json::Value::Null,
            generator: GeneratorStats {
                threads: 1,
                cpu_percent: 40.0,
                ..Default::default()
            },
            server: None,
            server_b: None,
            connections: None,
            idle: None,
            publish: None,
            delivery: Some(DeliveryStats {
                window_seconds: 10.0,
                expected: 1000,
                delivered,
                outside_window: 0,
                loss_ratio: loss_ratio(1000, delivered),
                deliveries_per_s: delivered as f64 / 10.0,
                latency: stats::summarize(&histogram, true),
            }),
            churn: None,
            steps: None,
            best: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn shards_add_up_and_latencies_merge_from_buckets() {
        let merged = merge(vec![
            fanout_shard(1000, &[1, 2, 3]),
            fanout_shard(990, &[4, 5, 100]),
        ])
        .unwrap();
        let delivery = merged.delivery.unwrap();
        assert_eq!(delivery.expected, 2000);
        assert_eq!(delivery.delivered, 1990);
        assert_eq!(delivery.loss_ratio, 0.005);
        assert_eq!(delivery.deliveries_per_s, 199.0);
        assert_eq!(delivery.latency.count, 6);
        assert!((delivery.latency.max_ms - 100.0).abs() < 0.1);
        assert_eq!(merged.generator.cpu_percent, 80.0);
        assert_eq!(merged.shard.count, 2);
    }

    #[test]
    fn different_scenarios_do_not_merge() {
        let mut other = fanout_shard(1, &[1]);
        other.scenario = "publish".to_owned();
        assert!(merge(vec![fanout_shard(1, &[1]), other]).is_err());
    }

    #[test]
    fn loss_of_nothing_expected_is_zero() {
        assert_eq!(loss_ratio(0, 0), 0.0);
        assert_eq!(loss_ratio(1000, 999), 0.001);
    }
}
