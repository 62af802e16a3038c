//! herald-bench: a load generator that speaks the Pusher protocol to Herald or any compatible server.
//!
//! Code map, in reading order:
//! - `cli`: options, checked into `Settings` (loopback targets only, bounded sizes and times, shards).
//! - `target`: URLs to addresses, and the loopback rule.
//! - `wire`: the frames and REST bodies written, and byte searches over frames received (pure).
//! - `sign`: REST request signatures (pure).
//! - `stats`: the clock, the measurement window, per-thread delivery shards, histogram summaries.
//! - `process`: CPU and RSS of the generator and the server, and the open-file limit.
//! - `ws`: WebSocket frames split and written by hand, without allocating per frame (pure).
//! - `socket`: TCP from a chosen source address, the WebSocket upgrade by hand, and reads of up
//!   to 64 KiB into a per-thread buffer whose messages are handled in place.
//! - `fleet`: WebSocket connections, one light task each.
//! - `rest`: signed publishing over kept-alive HTTP/1.1 written and parsed by hand, on a shared
//!   schedule.
//! - `report`: the JSON summary, and merging shards' summaries.
//! - `summary`: median and spread over repeated runs.
//! - `scenario`: idle, fanout (and cluster, churn), maxfanout, publish.
//!
//! **Invariant:** every run is bounded: each phase by its options, and the whole process by a
//! watchdog thread that exits if the run overstays its computed budget.

mod cli;
mod fleet;
mod process;
mod report;
mod rest;
mod scenario;
mod sign;
mod socket;
mod stats;
mod summary;
mod target;
mod wire;
mod ws;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, Command, Settings};
use crate::report::Report;
use crate::scenario::Harness;

fn main() {
    if let Err(error) = run(Cli::parse()) {
        eprintln!("herald-bench: {error:#}");
        std::process::exit(2);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Merge(args) => {
            let reports = read_json_files(&args.files)?;
            let reports = reports
                .into_iter()
                .map(serde_json::from_value::<Report>)
                .collect::<Result<Vec<_>, _>>()
                .context("not a herald-bench report")?;
            let merged = report::merge(reports).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&merged)?);
            return Ok(());
        }
        Command::Summary(args) => {
            let reports = read_json_files(&args.files)?;
            let summary = summary::summarize_runs(&reports).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            return Ok(());
        }
        _ => {}
    }

    let settings = Settings::from_common(&cli.common).map_err(anyhow::Error::msg)?;
    let open_file_limit = process::raise_open_file_limit().context("raising RLIMIT_NOFILE")?;
    let budget =
        check_and_budget(&cli.command, &settings, open_file_limit).map_err(anyhow::Error::msg)?;
    start_watchdog(budget);
    // Start the stamp clock before anything is stamped.
    stats::now_ns();
    eprintln!(
        "herald-bench {}: open-file limit {open_file_limit}, {} thread(s), shard {}/{}, stops within {}s",
        env!("CARGO_PKG_VERSION"),
        settings.threads,
        settings.shard.0,
        settings.shard.1,
        budget.as_secs()
    );

    let runtime = if settings.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads)
            .enable_all()
            .build()?
    };
    let report = runtime.block_on(async {
        let mut harness = Harness::new(settings);
        let report = match &cli.command {
            Command::Idle(args) => scenario::idle::run(&mut harness, args).await,
            Command::Fanout(args) => scenario::fanout::run_fanout(&mut harness, args).await,
            Command::Maxfanout(args) => scenario::maxfanout::run(&mut harness, args).await,
            Command::Publish(args) => scenario::publish::run(&mut harness, args).await,
            Command::Cluster(args) => scenario::fanout::run_cluster(&mut harness, args).await,
            Command::Churn(args) => scenario::fanout::run_churn(&mut harness, args).await,
            Command::Merge(_) | Command::Summary(_) => {
                unreachable!("handled before the runtime starts")
            }
        };
        harness.connections.abort_all();
        report
    })?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    // Dropping the runtime closes every socket; don't wait for servers to answer each close.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn read_json_files(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<serde_json::Value>> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        })
        .collect()
}

/// Checks the scenario's sizes against the caps and the open-file limit, and returns the longest
/// the whole run may take.
fn check_and_budget(
    command: &Command,
    settings: &Settings,
    open_file_limit: u64,
) -> Result<Duration, String> {
    let ramp = |connections: u64| {
        let waves = connections.div_ceil(settings.connect_concurrency as u64) + 1;
        settings
            .connect_timeout
            .saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX))
    };
    let steady = settings.warmup + settings.duration + settings.drain;
    let budget = match command {
        Command::Idle(args) => {
            let (_, connections) = settings.share(args.connections);
            cli::check_connections("--connections", connections, open_file_limit, 0)?;
            cli::check_phase("--hold", args.hold)?;
            ramp(connections) + args.hold
        }
        Command::Fanout(args) | Command::Cluster(cli::ClusterArgs { fanout: args, .. }) => {
            let (_, connections) = settings.share(args.connections);
            cli::check_connections(
                "--connections",
                connections,
                open_file_limit,
                args.publishers as u64,
            )?;
            cli::check_publishers("--publishers", args.publishers)?;
            cli::check_rate("--rate", args.rate, false)?;
            ramp(connections) + steady
        }
        Command::Churn(args) => {
            let (_, connections) = settings.share(args.fanout.connections);
            let (_, max_open) = settings.share(args.churn_max_open);
            cli::check_connections(
                "--connections + --churn-max-open",
                connections + max_open,
                open_file_limit,
                args.fanout.publishers as u64,
            )?;
            cli::check_publishers("--publishers", args.fanout.publishers)?;
            cli::check_rate("--rate", args.fanout.rate, false)?;
            cli::check_rate("--churn-rate", args.churn_rate, false)?;
            cli::check_phase("--churn-hold", args.churn_hold)?;
            ramp(connections) + steady + args.churn_hold + Duration::from_secs(3)
        }
        Command::Maxfanout(args) => {
            let (_, connections) = settings.share(args.connections);
            cli::check_connections(
                "--connections",
                connections,
                open_file_limit,
                args.publishers as u64,
            )?;
            cli::check_publishers("--publishers", args.publishers)?;
            cli::check_rate("--start-rate", args.start_rate, false)?;
            cli::check_phase("--step-duration", args.step_duration)?;
            cli::check_phase("--step-warmup", args.step_warmup)?;
            if !(1.01..=10.0).contains(&args.step_factor) {
                return Err("--step-factor must be between 1.01 and 10".to_owned());
            }
            if args.max_steps == 0 || args.max_steps > 60 {
                return Err("--max-steps must be between 1 and 60".to_owned());
            }
            let step = args.step_warmup + args.step_duration + settings.drain;
            ramp(connections) + step * args.max_steps
        }
        Command::Publish(args) => {
            cli::check_publishers("--concurrency", args.concurrency)?;
            cli::check_rate("--rate", args.rate, true)?;
            steady
        }
        Command::Merge(_) | Command::Summary(_) => Duration::ZERO,
    };
    Ok(budget + Duration::from_secs(60))
}

/// Exits the process if the run is still going after `budget`, whatever state it is in.
fn start_watchdog(budget: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(budget);
        eprintln!(
            "herald-bench: still running after {}s, over its budget; exiting",
            budget.as_secs()
        );
        std::process::exit(3);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(args: &[&str]) -> Result<Duration, String> {
        let cli = Cli::parse_from(args);
        let settings = Settings::from_common(&cli.common).unwrap();
        check_and_budget(&cli.command, &settings, 20_000)
    }

    #[test]
    fn every_scenario_has_a_finite_budget() {
        for args in [
            &["herald-bench", "idle"][..],
            &["herald-bench", "fanout"],
            &["herald-bench", "maxfanout"],
            &["herald-bench", "publish"],
            &[
                "herald-bench",
                "cluster",
                "--ws-url-b",
                "ws://127.0.0.1:6002",
            ],
            &["herald-bench", "churn"],
        ] {
            let budget = budget(args).unwrap();
            assert!(
                budget > Duration::from_secs(60) && budget < Duration::from_secs(24 * 3600),
                "{args:?}"
            );
        }
    }

    #[test]
    fn oversized_runs_are_refused() {
        assert!(budget(&["herald-bench", "idle", "--connections", "50000"]).is_err());
        assert!(
            budget(&[
                "herald-bench",
                "--shard",
                "0/3",
                "idle",
                "--connections",
                "50000"
            ])
            .is_ok()
        );
        assert!(budget(&["herald-bench", "maxfanout", "--max-steps", "1000"]).is_err());
        assert!(budget(&["herald-bench", "idle", "--hold", "2h"]).is_err());
        assert!(budget(&["herald-bench", "fanout", "--rate", "0"]).is_err());
    }
}
