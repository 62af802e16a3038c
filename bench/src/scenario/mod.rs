//! The scenarios, one per file, and what they share: starting fleets, waiting for the ramp,
//! sampling CPU and memory, the progress line, and the skeleton of a report.

pub mod fanout;
pub mod idle;
pub mod maxfanout;
pub mod publish;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinSet};

use crate::cli::Settings;
use crate::fleet::{self, Fleet, FleetConfig};
use crate::process::{self, Sample};
use crate::report::{GeneratorStats, Report, ServerStats, ShardInfo};
use crate::rest::{self, PublishTarget};
use crate::stats;
use crate::target::Endpoint;

/// What every scenario runs with: the checked settings and the connection tasks it started.
pub struct Harness {
    pub settings: Settings,
    /// Every connection task; aborting them closes their sockets.
    pub connections: JoinSet<()>,
    pub server_b_pid: Option<u32>,
}

impl Harness {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            connections: JoinSet::new(),
            server_b_pid: None,
        }
    }

    pub fn fleet(
        &self,
        endpoint: &Endpoint,
        channels: &Arc<Vec<String>>,
        measured: bool,
    ) -> Arc<Fleet> {
        Fleet::new(FleetConfig {
            endpoint: endpoint.clone(),
            app_key: self.settings.credentials.key.clone(),
            source_ips: self.settings.source_ips.clone(),
            channels: Arc::clone(channels),
            measured,
            connect_concurrency: self.settings.connect_concurrency,
            setup_timeout: self.settings.connect_timeout,
        })
    }

    /// Starts `count` connections that stay subscribed until the run ends.
    pub fn spawn_connections(&mut self, fleet: &Arc<Fleet>, count: u64) {
        for index in 0..count {
            let fleet = Arc::clone(fleet);
            self.connections
                .spawn(fleet::run_connection(fleet, index as usize, None));
        }
    }

    /// Waits until every one of `count` connections has subscribed or failed, printing progress.
    pub async fn wait_for_ramp(&self, label: &str, fleet: &Fleet, count: u64) {
        let mut ticks = 0u64;
        while fleet.counters.settled() < count {
            tokio::time::sleep(Duration::from_millis(50)).await;
            ticks += 1;
            if ticks.is_multiple_of(20) {
                eprintln!(
                    "[{label}] connecting: {} subscribed, {} failed of {count}",
                    fleet.counters.subscribed.load(Ordering::Relaxed),
                    fleet.counters.failed.load(Ordering::Relaxed),
                );
            }
        }
        let (seconds, rate) = fleet.ramp();
        eprintln!(
            "[{label}] {} subscribed, {} failed in {seconds:.2}s ({rate:.0}/s)",
            fleet.counters.subscribed.load(Ordering::Relaxed),
            fleet.counters.failed.load(Ordering::Relaxed),
        );
        if let Some(failure) = fleet.first_failure.lock().expect("failure lock").as_ref() {
            eprintln!("[{label}] first failure: {failure}");
        }
    }

    pub fn publish_target(&self) -> Arc<PublishTarget> {
        Arc::new(PublishTarget::new(
            self.settings.http.clone(),
            self.settings.source_ips.first().copied(),
            &self.settings.credentials,
            self.settings.event_name.clone(),
            self.settings.payload_bytes,
        ))
    }

    /// Pids of the servers under test, for the progress line.
    pub fn server_pids(&self) -> Vec<u32> {
        self.settings
            .server_pid
            .into_iter()
            .chain(self.server_b_pid)
            .collect()
    }

    /// CPU and memory of the generator and the servers, now.
    pub fn samples(&self) -> Samples {
        Samples {
            own: process::own_sample(),
            server: self.settings.server_pid.and_then(server_sample),
            server_b: self.server_b_pid.and_then(server_sample),
        }
    }

    /// A report with the generator and server figures between two samples; scenarios fill the rest.
    pub fn report(
        &self,
        scenario: &str,
        params: serde_json::Value,
        before: &Samples,
        after: &Samples,
    ) -> Report {
        let server_stats = |pid: Option<u32>, before: Option<Sample>, after: Option<Sample>| {
            Some(ServerStats::between(pid?, &before?, &after?))
        };
        let generator = GeneratorStats::between(self.settings.threads, &before.own, &after.own);
        let mut warnings = Vec::new();
        if generator.saturated {
            warnings.push(format!(
                "the generator used {:.0} % CPU with {} thread(s): it may be the bottleneck; add --threads or shards",
                generator.cpu_percent, generator.threads
            ));
        }
        Report {
            scenario: scenario.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            shard: ShardInfo {
                index: self.settings.shard.0,
                count: self.settings.shard.1,
            },
            params,
            generator,
            server: server_stats(self.settings.server_pid, before.server, after.server),
            server_b: server_stats(self.server_b_pid, before.server_b, after.server_b),
            connections: None,
            idle: None,
            publish: None,
            delivery: None,
            churn: None,
            steps: None,
            best: None,
            warnings,
        }
    }
}

fn server_sample(pid: u32) -> Option<Sample> {
    match process::pid_sample(pid) {
        Ok(sample) => Some(sample),
        Err(error) => {
            eprintln!("cannot read server pid {pid}: {error}");
            None
        }
    }
}

/// CPU and memory of the generator and the servers at one instant.
#[derive(Clone, Copy)]
pub struct Samples {
    pub own: Sample,
    pub server: Option<Sample>,
    pub server_b: Option<Sample>,
}

/// Prints one progress line a second: publishes, deliveries, and CPU of the generator and servers.
pub fn spawn_progress(
    label: &'static str,
    publish_progress: Arc<rest::Progress>,
    with_deliveries: bool,
    server_pids: Vec<u32>,
) -> AbortHandle {
    tokio::spawn(async move {
        let mut own_before = process::own_sample();
        let mut servers_before: Vec<_> = server_pids
            .iter()
            .map(|pid| process::pid_sample(*pid).ok())
            .collect();
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.tick().await;
        loop {
            interval.tick().await;
            let own_now = process::own_sample();
            let servers_now: Vec<_> = server_pids
                .iter()
                .map(|pid| process::pid_sample(*pid).ok())
                .collect();
            let mut line = format!(
                "[{label}] published {} (failed {})",
                publish_progress.ok.load(Ordering::Relaxed),
                publish_progress.failed.load(Ordering::Relaxed),
            );
            if with_deliveries {
                line.push_str(&format!(
                    ", delivered {} in window",
                    stats::delivered_so_far()
                ));
            }
            line.push_str(&format!(
                "; generator cpu {:.0}%",
                process::cpu_percent(&own_before, &own_now)
            ));
            for (pid, (before, now)) in server_pids
                .iter()
                .zip(servers_before.iter().zip(&servers_now))
            {
                if let (Some(before), Some(now)) = (before, now) {
                    line.push_str(&format!(
                        "; server {pid} cpu {:.0}% rss {} MiB",
                        process::cpu_percent(before, now),
                        now.rss_bytes >> 20
                    ));
                }
            }
            eprintln!("{line}");
            own_before = own_now;
            servers_before = servers_now;
        }
    })
    .abort_handle()
}
