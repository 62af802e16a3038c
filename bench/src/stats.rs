//! The generator's clock, the measurement window, and latency histograms with their summaries.
//! Deliveries are recorded into one shard per thread, so the hot path takes no contended lock.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The instant all stamps count from; every stamp is read in this process, so a monotonic clock works.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since the generator's epoch.
pub fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The `Instant` of a stamp, for sleeping until a scheduled send time.
pub fn instant_of(ns: u64) -> Instant {
    *EPOCH + Duration::from_nanos(ns)
}

/// Largest latency a histogram tracks: two minutes in nanoseconds; larger values saturate.
const HIGHEST_TRACKABLE_NS: u64 = 120_000_000_000;

/// A latency histogram in nanoseconds with three significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_NS, 3).expect("bounds are valid constants")
}

/// Events whose stamp is at or after this count as measured; `u64::MAX` means the window is shut.
static WINDOW_START_NS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Opens the measurement window at `start_ns`, which callers set in the future (or before any
/// event is sent), so that the publisher and the receivers always agree which events count.
pub fn open_window(start_ns: u64) {
    WINDOW_START_NS.store(start_ns, Ordering::SeqCst);
}

/// Shuts the window: nothing counts until the next `open_window`.
pub fn close_window() {
    WINDOW_START_NS.store(u64::MAX, Ordering::SeqCst);
}

/// Whether an event stamped `sent_at` is measured.
pub fn in_window(sent_at: u64) -> bool {
    sent_at >= WINDOW_START_NS.load(Ordering::Relaxed)
}

/// One thread's deliveries since the last `take_deliveries`.
struct Shard {
    latency: Histogram<u64>,
    delivered: u64,
    outside_window: u64,
}

static SHARDS: Mutex<Vec<Arc<Mutex<Shard>>>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL_SHARD: OnceCell<Arc<Mutex<Shard>>> = const { OnceCell::new() };
}

/// Records one received benchmark event.
#[cfg(test)]
pub fn record_delivery(sent_at: u64, received_at: u64) {
    with_delivery_sink(|sink| sink.record(sent_at, received_at));
}

/// This thread's shard, locked for one batch of received frames, so that recording a delivery
/// takes no lock of its own.
pub struct DeliverySink<'a> {
    shard: MutexGuard<'a, Shard>,
    window_start_ns: u64,
}

impl DeliverySink<'_> {
    /// Records one received benchmark event.
    pub fn record(&mut self, sent_at: u64, received_at: u64) {
        if sent_at >= self.window_start_ns {
            self.shard.delivered += 1;
            self.shard
                .latency
                .saturating_record(received_at.saturating_sub(sent_at).max(1));
        } else {
            self.shard.outside_window += 1;
        }
    }
}

/// Runs `f` with this thread's delivery shard locked. `f` must not wait: it runs inside one poll.
pub fn with_delivery_sink<R>(f: impl FnOnce(&mut DeliverySink<'_>) -> R) -> R {
    LOCAL_SHARD.with(|cell| {
        let shard = cell.get_or_init(|| {
            let shard = Arc::new(Mutex::new(Shard {
                latency: new_histogram(),
                delivered: 0,
                outside_window: 0,
            }));
            SHARDS
                .lock()
                .expect("shard list lock")
                .push(Arc::clone(&shard));
            shard
        });
        f(&mut DeliverySink {
            shard: shard.lock().expect("shard lock"),
            window_start_ns: WINDOW_START_NS.load(Ordering::Relaxed),
        })
    })
}

/// Deliveries gathered from every thread.
pub struct Deliveries {
    pub latency: Histogram<u64>,
    pub delivered: u64,
    pub outside_window: u64,
}

/// Measured deliveries so far, without resetting.
pub fn delivered_so_far() -> u64 {
    let shards = SHARDS.lock().expect("shard list lock");
    shards
        .iter()
        .map(|shard| shard.lock().expect("shard lock").delivered)
        .sum()
}

/// Gathers every thread's deliveries and resets them, for the next step.
pub fn take_deliveries() -> Deliveries {
    let mut total = Deliveries {
        latency: new_histogram(),
        delivered: 0,
        outside_window: 0,
    };
    let shards = SHARDS.lock().expect("shard list lock");
    for shard in shards.iter() {
        let mut shard = shard.lock().expect("shard lock");
        total
            .latency
            .add(&shard.latency)
            .expect("histograms share bounds");
        total.delivered += shard.delivered;
        total.outside_window += shard.outside_window;
        shard.latency.reset();
        shard.delivered = 0;
        shard.outside_window = 0;
    }
    total
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Recorded buckets as `[value_ns, count]`, present with `--histograms` so shards can be merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histogram: Vec<[u64; 2]>,
}

fn ns_to_ms(ns: f64) -> f64 {
    (ns / 1_000.0).round() / 1_000.0
}

/// Summarizes a histogram of nanoseconds; `keep_buckets` adds the raw buckets for merging.
pub fn summarize(histogram: &Histogram<u64>, keep_buckets: bool) -> LatencySummary {
    if histogram.is_empty() {
        return LatencySummary::default();
    }
    let at = |quantile: f64| ns_to_ms(histogram.value_at_quantile(quantile) as f64);
    let buckets = if keep_buckets {
        histogram
            .iter_recorded()
            .map(|bucket| [bucket.value_iterated_to(), bucket.count_at_value()])
            .collect()
    } else {
        Vec::new()
    };
    LatencySummary {
        count: histogram.len(),
        min_ms: ns_to_ms(histogram.min() as f64),
        mean_ms: ns_to_ms(histogram.mean()),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: ns_to_ms(histogram.max() as f64),
        histogram: buckets,
    }
}

/// Rebuilds a histogram from the buckets a summary kept.
pub fn histogram_from_buckets(buckets: &[[u64; 2]]) -> Histogram<u64> {
    let mut histogram = new_histogram();
    for [value, count] in buckets {
        histogram.saturating_record_n(*value, *count);
    }
    histogram
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(n: u64) -> u64 {
        n * 1_000_000
    }

    /// Three significant figures: a value is off by less than 0.1 %.
    fn check_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= expected * 0.001 + 0.001,
            "{actual} is not within 0.1 % of {expected}"
        );
    }

    #[test]
    fn summary_of_one_to_a_thousand_milliseconds() {
        let mut histogram = new_histogram();
        for n in 1..=1000 {
            histogram.record(millis(n)).unwrap();
        }
        let summary = summarize(&histogram, false);
        assert_eq!(summary.count, 1000);
        check_close(summary.min_ms, 1.0);
        check_close(summary.mean_ms, 500.5);
        check_close(summary.p50_ms, 500.0);
        check_close(summary.p90_ms, 900.0);
        check_close(summary.p99_ms, 990.0);
        check_close(summary.p999_ms, 999.0);
        check_close(summary.max_ms, 1000.0);
        assert!(summary.histogram.is_empty());
    }

    #[test]
    fn summary_of_nothing_is_zero() {
        assert_eq!(summarize(&new_histogram(), true), LatencySummary::default());
    }

    #[test]
    fn one_slow_delivery_shows_in_the_tail_only() {
        let mut histogram = new_histogram();
        histogram.record_n(millis(2), 9_999).unwrap();
        histogram.record(millis(250)).unwrap();
        let summary = summarize(&histogram, false);
        check_close(summary.p50_ms, 2.0);
        check_close(summary.p99_ms, 2.0);
        check_close(summary.p999_ms, 2.0);
        check_close(summary.max_ms, 250.0);
    }

    #[test]
    fn buckets_round_trip_through_a_summary() {
        let mut histogram = new_histogram();
        for n in [1, 5, 5, 80, 3000] {
            histogram.record(millis(n)).unwrap();
        }
        let summary = summarize(&histogram, true);
        let rebuilt = histogram_from_buckets(&summary.histogram);
        assert_eq!(summarize(&rebuilt, false), summarize(&histogram, false));
    }

    #[test]
    fn merged_shards_summarize_like_one_histogram() {
        let mut left = new_histogram();
        let mut right = new_histogram();
        let mut both = new_histogram();
        for n in 1..=500 {
            left.record(millis(n)).unwrap();
            both.record(millis(n)).unwrap();
        }
        for n in 501..=1000 {
            right.record(millis(n)).unwrap();
            both.record(millis(n)).unwrap();
        }
        let mut merged = histogram_from_buckets(&summarize(&left, true).histogram);
        merged
            .add(histogram_from_buckets(&summarize(&right, true).histogram))
            .unwrap();
        assert_eq!(summarize(&merged, false), summarize(&both, false));
    }

    #[test]
    fn deliveries_outside_the_window_are_counted_apart() {
        // The window is process-wide, so this is the only test that touches it.
        close_window();
        record_delivery(10, 20);
        open_window(100);
        record_delivery(50, 60);
        record_delivery(100, 1_100);
        record_delivery(200, 2_200);
        let deliveries = take_deliveries();
        assert_eq!(deliveries.delivered, 2);
        assert_eq!(deliveries.outside_window, 2);
        assert_eq!(deliveries.latency.len(), 2);
        assert_eq!(take_deliveries().delivered, 0);
        close_window();
    }
}
