//! `maxfanout`: fanout with the publish rate multiplied each step until a step loses more than
//! `--max-loss`, its p99 exceeds `--max-p99-ms`, the publisher falls behind, or a subscriber is
//! dropped; reports every step and the best sustained one.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use crate::cli::MaxfanoutArgs;
use crate::process;
use crate::report::{self, FleetStats, Report, Step, round1, round3};
use crate::rest;
use crate::scenario::fanout::measure;
use crate::scenario::{Harness, spawn_progress};
use crate::stats;

pub async fn run(harness: &mut Harness, args: &MaxfanoutArgs) -> anyhow::Result<Report> {
    let settings = harness.settings.clone();
    let (_, connections) = settings.share(args.connections);
    let channels = Arc::new(settings.channel_names(args.channels.max(1)));
    let params = json!({
        "connections": connections,
        "channels": channels.len(),
        "publishers": args.publishers,
        "payload_bytes": settings.payload_bytes,
        "start_rate": settings.share_rate(args.start_rate),
        "step_factor": args.step_factor,
        "step_seconds": round3(args.step_duration.as_secs_f64()),
        "step_warmup_seconds": round3(args.step_warmup.as_secs_f64()),
        "max_loss": args.max_loss,
        "max_p99_ms": args.max_p99_ms,
        "max_steps": args.max_steps,
        "source_ips": settings.source_ips,
    });

    let fleet = harness.fleet(&settings.ws, &channels, true);
    harness.spawn_connections(&fleet, connections);
    harness
        .wait_for_ramp("maxfanout", &fleet, connections)
        .await;
    fleet.ensure_any_subscribed()?;

    let target = harness.publish_target();
    let mut clients = rest::connect_clients(&target, args.publishers).await?;
    let publish_progress = Arc::new(rest::Progress::default());
    let progress = spawn_progress(
        "maxfanout",
        Arc::clone(&publish_progress),
        true,
        harness.server_pids(),
    );

    let mut steps: Vec<Step> = Vec::new();
    let mut best: Option<Step> = None;
    let mut rate = settings.share_rate(args.start_rate);
    let first_samples = harness.samples();
    let mut last_samples = first_samples;
    for step_number in 1..=args.max_steps {
        let disconnected_before = fleet.counters.disconnected.load(Ordering::Relaxed);
        eprintln!("[maxfanout] step {step_number}: {rate:.1} events/s");
        let measured = measure(
            harness,
            clients,
            &target,
            Some(&fleet),
            &channels,
            rate,
            args.step_warmup,
            args.step_duration,
            &publish_progress,
        )
        .await;
        let (returned, measurement) = match measured {
            Ok(done) => done,
            Err(error) => {
                progress.abort();
                return Err(error);
            }
        };
        clients = returned;
        last_samples = measurement.after;
        let latency = stats::summarize(&measurement.deliveries.latency, false);
        let expected = measurement.tally.expected_deliveries;
        let delivered = measurement.deliveries.delivered;
        let loss_ratio = report::loss_ratio(expected, delivered);
        let publish_rate =
            report::per_second(measurement.tally.ok_in_window, measurement.window_seconds);
        let disconnected =
            fleet.counters.disconnected.load(Ordering::Relaxed) - disconnected_before;
        let stopped_because = if delivered == 0 {
            Some("nothing was delivered".to_owned())
        } else if loss_ratio > args.max_loss {
            Some(format!("loss {loss_ratio} > {}", args.max_loss))
        } else if latency.p99_ms > args.max_p99_ms {
            Some(format!(
                "p99 {} ms > {} ms",
                latency.p99_ms, args.max_p99_ms
            ))
        } else if publish_rate < rate * 0.95 {
            Some(format!("published only {publish_rate:.1}/s of {rate:.1}/s"))
        } else if disconnected > 0 {
            Some(format!("{disconnected} subscribers were dropped"))
        } else {
            None
        };
        let step = Step {
            target_rate: round1(rate),
            publish_rate_per_s: round1(publish_rate),
            expected,
            delivered,
            deliveries_per_s: round1(report::per_second(delivered, measurement.window_seconds)),
            loss_ratio,
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
            max_ms: latency.max_ms,
            disconnected,
            generator_cpu_percent: process::cpu_percent(
                &measurement.before.own,
                &measurement.after.own,
            ),
            server_cpu_percent: match (measurement.before.server, measurement.after.server) {
                (Some(before), Some(after)) => Some(process::cpu_percent(&before, &after)),
                _ => None,
            },
            sustained: stopped_because.is_none(),
            stopped_because,
        };
        eprintln!(
            "[maxfanout] step {step_number}: {:.0} deliveries/s, loss {:.4} %, p99 {:.2} ms, generator cpu {:.0}%{}",
            step.deliveries_per_s,
            step.loss_ratio * 100.0,
            step.p99_ms,
            step.generator_cpu_percent,
            step.stopped_because
                .as_deref()
                .map(|why| format!(" — stop: {why}"))
                .unwrap_or_default(),
        );
        let sustained = step.sustained;
        if sustained {
            best = Some(step.clone());
        }
        steps.push(step);
        rate *= args.step_factor;
        if !sustained || rate > args.max_rate {
            break;
        }
    }
    progress.abort();

    let mut report = harness.report("maxfanout", params, &first_samples, &last_samples);
    if let Some(last) = steps.last()
        && last.sustained
    {
        report.warnings.push(
            "every step was sustained: raise --max-steps or --max-rate to find the limit"
                .to_owned(),
        );
    }
    if steps
        .iter()
        .any(|step| step.generator_cpu_percent >= 90.0 * settings.threads as f64)
    {
        report
            .warnings
            .push("the generator was saturated in some step: its numbers are a floor, not the server's limit".to_owned());
    }
    report.connections = Some(FleetStats::of(&fleet, connections, settings.histograms));
    report.steps = Some(steps);
    report.best = best;
    if let Some(best) = &report.best {
        eprintln!(
            "[maxfanout] best sustained: {:.0} deliveries/s at {:.1} events/s, p99 {:.2} ms",
            best.deliveries_per_s, best.target_rate, best.p99_ms
        );
    }
    Ok(report)
}
