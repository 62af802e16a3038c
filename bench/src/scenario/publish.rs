//! `publish`: REST publish throughput and request latency with K concurrent keep-alive
//! connections and no subscribers.

use std::sync::Arc;

use serde_json::json;

use crate::cli::PublishArgs;
use crate::report::{PublishStats, Report, round3};
use crate::rest;
use crate::scenario::fanout::measure;
use crate::scenario::{Harness, spawn_progress};

pub async fn run(harness: &mut Harness, args: &PublishArgs) -> anyhow::Result<Report> {
    let settings = harness.settings.clone();
    let channels = Arc::new(settings.channel_names(args.channels.max(1)));
    let rate = settings.share_rate(args.rate);
    let params = json!({
        "concurrency": args.concurrency,
        "channels": channels.len(),
        "rate": rate,
        "payload_bytes": settings.payload_bytes,
        "warmup_seconds": round3(settings.warmup.as_secs_f64()),
        "duration_seconds": round3(settings.duration.as_secs_f64()),
        "publisher_on": settings.http.addr.to_string(),
    });

    let target = harness.publish_target();
    let clients = rest::connect_clients(&target, args.concurrency).await?;
    let publish_progress = Arc::new(rest::Progress::default());
    let progress = spawn_progress(
        "publish",
        Arc::clone(&publish_progress),
        false,
        harness.server_pids(),
    );
    let measured = measure(
        harness,
        clients,
        &target,
        None,
        &channels,
        rate,
        settings.warmup,
        settings.duration,
        &publish_progress,
    )
    .await;
    progress.abort();
    let (_clients, measurement) = measured?;

    let mut report = harness.report("publish", params, &measurement.before, &measurement.after);
    let publish = PublishStats::of(
        &measurement.tally,
        rate,
        args.concurrency,
        measurement.window_seconds,
        settings.histograms,
    );
    if publish.failed_status + publish.transport_errors > 0 {
        report.warnings.push(format!(
            "{} publishes failed",
            publish.failed_status + publish.transport_errors
        ));
    }
    eprintln!(
        "[publish] {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms; generator cpu {:.0}%",
        publish.rate_per_s,
        publish.latency.p50_ms,
        publish.latency.p99_ms,
        report.generator.cpu_percent
    );
    report.publish = Some(publish);
    Ok(report)
}
