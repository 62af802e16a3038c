//! Command-line options, and their check into `Settings` in one step: targets must be loopback,
//! sizes and durations within bounds, and this process's share of a sharded run worked out.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::sign::Credentials;
use crate::target::{self, Endpoint};
use crate::wire;

/// Longest any one phase (duration, warm-up, hold) may be.
const MAX_PHASE: Duration = Duration::from_secs(3600);
/// Most connections one process may ask for; the open-file limit usually binds first.
const MAX_CONNECTIONS: u64 = 1_000_000;
/// Most concurrent REST connections one process may open.
const MAX_PUBLISHERS: usize = 1024;

/// A load generator for Pusher-protocol servers (Herald, or any compatible server).
///
/// Every scenario prints one JSON summary on stdout and progress on stderr, and stops by itself.
#[derive(Parser, Debug)]
#[command(name = "herald-bench", version)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// WebSocket base URL of the server (subscribers connect here).
    #[arg(long, global = true, default_value = "ws://127.0.0.1:6001")]
    pub ws_url: String,
    /// HTTP base URL of the server (the publisher posts here).
    #[arg(long, global = true, default_value = "http://127.0.0.1:6001")]
    pub http_url: String,
    #[arg(long, global = true, default_value = "1")]
    pub app_id: String,
    #[arg(long, global = true, default_value = "app-key")]
    pub key: String,
    #[arg(long, global = true, default_value = "app-secret")]
    pub secret: String,
    /// Pid of the server, to report its RSS and CPU from /proc.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Loopback addresses client sockets bind to, round robin, so one address does not run out of ports.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1"
    )]
    pub source_ips: Vec<IpAddr>,
    /// Measured time, after the warm-up.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Publishing before measurement starts.
    #[arg(long, global = true, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Bytes of each event's data string.
    #[arg(long, global = true, default_value_t = 200)]
    pub payload_bytes: usize,
    /// Runtime threads: 1 runs tokio's current-thread runtime, more a multi-thread one.
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// This process's part of a sharded run, `i/n`: connections, channels and rates are divided by n.
    #[arg(long, global = true, default_value = "0/1", value_parser = parse_shard)]
    pub shard: (u32, u32),
    /// Channel names are `<prefix>-<n>`; defaults to `bench<pid>` so runs never share channels.
    #[arg(long, global = true)]
    pub channel_prefix: Option<String>,
    #[arg(long, global = true, default_value = "bench-event")]
    pub event_name: String,
    /// Connections between connect and subscription_succeeded at once.
    #[arg(long, global = true, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Longest a connection may take to connect and subscribe before it counts as failed.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// After publishing stops, longest wait for the last deliveries.
    #[arg(long, global = true, default_value = "3s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Keep histogram buckets in the JSON, so `merge` can combine shards' latencies exactly.
    #[arg(long, global = true)]
    pub histograms: bool,
    /// Allow targets and source addresses outside 127.0.0.0/8 and [::1].
    #[arg(long, global = true)]
    pub allow_remote: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// N idle subscribers: connect+subscribe rate and server RSS per connection.
    Idle(IdleArgs),
    /// N subscribers, events published at a fixed rate: deliveries/s, loss, latency.
    Fanout(FanoutArgs),
    /// Fanout with the rate stepped up until loss or p99 exceeds its bound.
    Maxfanout(MaxfanoutArgs),
    /// REST publish throughput and latency with no subscribers.
    Publish(PublishArgs),
    /// Fanout with subscribers on node B (--ws-url-b) and the publisher on node A (--http-url).
    Cluster(ClusterArgs),
    /// Fanout while other connections open and close at a set rate.
    Churn(ChurnArgs),
    /// Merge the JSON summaries of shards run side by side into one.
    Merge(MergeArgs),
    /// Median, min and max of the headline figures over repeated runs of one scenario.
    Summary(MergeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    #[arg(long, default_value_t = 100)]
    pub channels: u64,
    /// How long the connections stay open before RSS is read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub hold: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    #[arg(long, default_value_t = 10)]
    pub channels: u64,
    /// Events published per second (over all channels, round robin).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Concurrent keep-alive REST connections.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
}

#[derive(Args, Debug, Clone)]
pub struct MaxfanoutArgs {
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    #[arg(long, default_value_t = 10)]
    pub channels: u64,
    #[arg(long, default_value_t = 8)]
    pub publishers: usize,
    /// Events per second of the first step.
    #[arg(long, default_value_t = 50.0)]
    pub start_rate: f64,
    #[arg(long, default_value_t = 1.5)]
    pub step_factor: f64,
    /// Measured time of each step.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub step_duration: Duration,
    /// Publishing at a step's rate before its measurement starts.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub step_warmup: Duration,
    /// A step with more loss than this (a ratio) is not sustained.
    #[arg(long, default_value_t = 0.001)]
    pub max_loss: f64,
    /// A step whose p99 latency exceeds this is not sustained.
    #[arg(long, default_value_t = 100.0)]
    pub max_p99_ms: f64,
    #[arg(long, default_value_t = 20)]
    pub max_steps: u32,
    /// Stop stepping past this many events per second.
    #[arg(long, default_value_t = 1_000_000.0)]
    pub max_rate: f64,
}

#[derive(Args, Debug, Clone)]
pub struct PublishArgs {
    /// Concurrent keep-alive requests.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Channels published to, round robin (nobody subscribes).
    #[arg(long, default_value_t = 10)]
    pub channels: u64,
    /// Events per second; 0 sends each request as soon as the previous one on its connection returns.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// WebSocket base URL of node B, where subscribers connect.
    #[arg(long)]
    pub ws_url_b: String,
    /// Pid of node B, to report its RSS and CPU.
    #[arg(long)]
    pub server_pid_b: Option<u32>,
    #[command(flatten)]
    pub fanout: FanoutArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// New short-lived connections per second (each subscribes, stays, then closes).
    #[arg(long, default_value_t = 50.0)]
    pub churn_rate: f64,
    /// How long each churning connection stays subscribed.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub churn_hold: Duration,
    /// Most churning connections open at once; starts beyond it are skipped and counted.
    #[arg(long, default_value_t = 2000)]
    pub churn_max_open: u64,
}

#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// JSON summaries, one per file (each file holds the stdout of one run or shard).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Parses `250ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration like 500ms, 10s, 2m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("{text:?}: {error}"))
}

/// Parses `i/n` with `i < n`.
pub fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected i/n, like 0/2"))?;
    let index: u32 = index
        .parse()
        .map_err(|_| format!("{text:?}: bad shard index"))?;
    let count: u32 = count
        .parse()
        .map_err(|_| format!("{text:?}: bad shard count"))?;
    if count == 0 || index >= count {
        return Err(format!("{text:?}: need 0 <= i < n"));
    }
    Ok((index, count))
}

/// The common options, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ws: Endpoint,
    pub http: Endpoint,
    pub credentials: Credentials,
    pub server_pid: Option<u32>,
    pub source_ips: Vec<IpAddr>,
    pub duration: Duration,
    pub warmup: Duration,
    pub payload_bytes: usize,
    pub threads: usize,
    pub shard: (u32, u32),
    pub channel_prefix: String,
    pub event_name: String,
    pub connect_concurrency: usize,
    pub connect_timeout: Duration,
    pub drain: Duration,
    pub histograms: bool,
    pub allow_remote: bool,
}

impl Settings {
    pub fn from_common(common: &Common) -> Result<Self, String> {
        let ws = target::parse_endpoint(&common.ws_url, "ws", common.allow_remote)?;
        let http = target::parse_endpoint(&common.http_url, "http", common.allow_remote)?;
        for ip in &common.source_ips {
            target::check_loopback(*ip, common.allow_remote)
                .map_err(|reason| format!("--source-ips: {reason}"))?;
        }
        for (name, value) in [
            ("--duration", common.duration),
            ("--warmup", common.warmup),
            ("--drain", common.drain),
            ("--connect-timeout", common.connect_timeout),
        ] {
            check_phase(name, value)?;
        }
        if common.duration.is_zero() {
            return Err("--duration must be more than zero".to_owned());
        }
        if common.threads == 0 || common.threads > 64 {
            return Err("--threads must be between 1 and 64".to_owned());
        }
        if common.payload_bytes > 1024 * 1024 {
            return Err("--payload-bytes must be at most 1 MiB".to_owned());
        }
        let channel_prefix = common
            .channel_prefix
            .clone()
            .unwrap_or_else(|| format!("bench{}", std::process::id()));
        for (name, value) in [
            ("--channel-prefix", &channel_prefix),
            ("--event-name", &common.event_name),
        ] {
            if !wire::is_plain_name(value) {
                return Err(format!(
                    "{name} {value:?}: use only A-Z a-z 0-9 _ - = @ , . ;"
                ));
            }
        }
        Ok(Self {
            ws,
            http,
            credentials: Credentials {
                app_id: common.app_id.clone(),
                key: common.key.clone(),
                secret: common.secret.clone(),
            },
            server_pid: common.server_pid,
            source_ips: common.source_ips.clone(),
            duration: common.duration,
            warmup: common.warmup,
            payload_bytes: common.payload_bytes,
            threads: common.threads,
            shard: common.shard,
            channel_prefix,
            event_name: common.event_name.clone(),
            connect_concurrency: common.connect_concurrency.max(1),
            connect_timeout: common.connect_timeout,
            drain: common.drain,
            histograms: common.histograms,
            allow_remote: common.allow_remote,
        })
    }

    /// This shard's part of `total`, and where that part starts: the first `total % n` shards take one more.
    pub fn share(&self, total: u64) -> (u64, u64) {
        let (index, count) = (u64::from(self.shard.0), u64::from(self.shard.1));
        let base = total / count;
        let extra = total % count;
        let size = base + u64::from(index < extra);
        let offset = index * base + index.min(extra);
        (offset, size)
    }

    /// This shard's part of a rate.
    pub fn share_rate(&self, rate: f64) -> f64 {
        rate / f64::from(self.shard.1)
    }

    /// Names of this shard's channels.
    pub fn channel_names(&self, total_channels: u64) -> Vec<String> {
        let (offset, size) = self.share(total_channels);
        (offset..offset + size)
            .map(|n| format!("{}-{n}", self.channel_prefix))
            .collect()
    }
}

pub fn check_phase(name: &str, value: Duration) -> Result<(), String> {
    if value > MAX_PHASE {
        return Err(format!("{name} must be at most {} s", MAX_PHASE.as_secs()));
    }
    Ok(())
}

/// Checks a connection count against the hard cap and the open-file limit.
pub fn check_connections(
    name: &str,
    connections: u64,
    open_file_limit: u64,
    other_files: u64,
) -> Result<(), String> {
    if connections == 0 {
        return Err(format!("{name} must be at least 1 for each shard"));
    }
    if connections > MAX_CONNECTIONS {
        return Err(format!("{name} must be at most {MAX_CONNECTIONS}"));
    }
    let needed = connections + other_files + 64;
    if needed > open_file_limit {
        return Err(format!(
            "{name} {connections} needs about {needed} open files, over this process's limit of {open_file_limit}; \
             run several processes with --shard i/n and merge their JSON"
        ));
    }
    Ok(())
}

pub fn check_publishers(name: &str, publishers: usize) -> Result<(), String> {
    if publishers == 0 || publishers > MAX_PUBLISHERS {
        return Err(format!("{name} must be between 1 and {MAX_PUBLISHERS}"));
    }
    Ok(())
}

pub fn check_rate(name: &str, rate: f64, allow_zero: bool) -> Result<(), String> {
    let ok =
        rate.is_finite() && (rate > 0.0 || (allow_zero && rate == 0.0)) && rate <= 10_000_000.0;
    if ok {
        Ok(())
    } else {
        Err(format!("{name} {rate}: out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn shards() {
        assert_eq!(parse_shard("0/1"), Ok((0, 1)));
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("1").is_err());
    }

    fn settings(shard: (u32, u32)) -> Settings {
        let common = Cli::parse_from(["herald-bench", "idle"]).common;
        let mut settings = Settings::from_common(&common).unwrap();
        settings.shard = shard;
        settings.channel_prefix = "b".to_owned();
        settings
    }

    #[test]
    fn shares_cover_the_total_without_overlap() {
        let shares: Vec<_> = (0..3).map(|i| settings((i, 3)).share(10)).collect();
        assert_eq!(shares, [(0, 4), (4, 3), (7, 3)]);
        assert_eq!(settings((1, 3)).channel_names(10), ["b-4", "b-5", "b-6"]);
        assert_eq!(settings((0, 1)).share(5), (0, 5));
    }

    #[test]
    fn remote_targets_are_refused_by_default() {
        let common =
            Cli::parse_from(["herald-bench", "--ws-url", "ws://10.0.0.1:6001", "idle"]).common;
        assert!(Settings::from_common(&common).is_err());
        let common =
            Cli::parse_from(["herald-bench", "--source-ips", "127.0.0.1,10.0.0.2", "idle"]).common;
        assert!(Settings::from_common(&common).is_err());
        let common = Cli::parse_from([
            "herald-bench",
            "--source-ips",
            "127.0.0.1,127.0.0.2",
            "idle",
        ])
        .common;
        assert_eq!(Settings::from_common(&common).unwrap().source_ips.len(), 2);
    }

    #[test]
    fn connection_counts_respect_the_open_file_limit() {
        assert!(check_connections("--connections", 19_000, 20_000, 10).is_ok());
        assert!(check_connections("--connections", 19_990, 20_000, 10).is_err());
        assert!(check_connections("--connections", 2_000_000, u64::MAX, 0).is_err());
    }
}
