//! `idle`: N connections, each subscribed to one of C channels, held open; reports the
//! connect+subscribe rate and the server's RSS per connection.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::cli::IdleArgs;
use crate::report::Report;
use crate::report::{FleetStats, IdleStats, round1, round3};
use crate::scenario::Harness;

pub async fn run(harness: &mut Harness, args: &IdleArgs) -> anyhow::Result<Report> {
    let settings = harness.settings.clone();
    let (_, connections) = settings.share(args.connections);
    let channels = Arc::new(settings.channel_names(args.channels.max(1)));
    let params = json!({
        "connections": connections,
        "channels": channels.len(),
        "hold_seconds": round3(args.hold.as_secs_f64()),
        "ws_url": settings.ws.addr.to_string(),
        "source_ips": settings.source_ips,
    });

    let before = harness.samples();
    let fleet = harness.fleet(&settings.ws, &channels, true);
    harness.spawn_connections(&fleet, connections);
    harness.wait_for_ramp("idle", &fleet, connections).await;
    fleet.ensure_any_subscribed()?;

    eprintln!("[idle] holding for {:.1}s", args.hold.as_secs_f64());
    let hold_end = tokio::time::Instant::now() + args.hold;
    while tokio::time::Instant::now() < hold_end {
        tokio::time::sleep_until(
            hold_end.min(tokio::time::Instant::now() + Duration::from_secs(5)),
        )
        .await;
        eprintln!("[idle] {} connections open", fleet.counters.live());
    }
    let after = harness.samples();

    let mut report = harness.report("idle", params, &before, &after);
    let stats = FleetStats::of(&fleet, connections, settings.histograms);
    let rss_per_connection_bytes = match (&report.server, stats.subscribed) {
        (Some(server), subscribed) if subscribed > 0 => Some(round1(
            server
                .rss_after_bytes
                .saturating_sub(server.rss_before_bytes) as f64
                / subscribed as f64,
        )),
        _ => None,
    };
    if stats.failed > 0 {
        report.warnings.push(format!(
            "{} of {connections} connections failed",
            stats.failed
        ));
    }
    report.connections = Some(stats);
    report.idle = Some(IdleStats {
        hold_seconds: round3(args.hold.as_secs_f64()),
        rss_per_connection_bytes,
    });
    Ok(report)
}
