//! Median and spread of the headline figures over repeated runs of one scenario, so a result is
//! quoted as "median of n, min–max" rather than as one lucky run.

use serde_json::{Map, Value, json};

/// The figures worth comparing between runs, as JSON pointers into a report.
const HEADLINES: &[&str] = &[
    "/connections/subscriptions_per_s",
    "/connections/setup_latency/p99_ms",
    "/idle/rss_per_connection_bytes",
    "/delivery/deliveries_per_s",
    "/delivery/loss_ratio",
    "/delivery/latency/p50_ms",
    "/delivery/latency/p90_ms",
    "/delivery/latency/p99_ms",
    "/delivery/latency/p999_ms",
    "/delivery/latency/max_ms",
    "/publish/rate_per_s",
    "/publish/latency/p50_ms",
    "/publish/latency/p99_ms",
    "/churn/achieved_rate",
    "/churn/connections/setup_latency/p99_ms",
    "/best/deliveries_per_s",
    "/best/target_rate",
    "/best/p99_ms",
    "/generator/cpu_percent",
    "/server/cpu_percent",
    "/server_b/cpu_percent",
];

/// Summarizes reports of one scenario: for each headline present in every run, its median,
/// minimum, maximum and the spread `(max − min) ÷ median`.
pub fn summarize_runs(reports: &[Value]) -> Result<Value, String> {
    let first = reports.first().ok_or("no reports given")?;
    let scenario = first["scenario"].clone();
    if reports.iter().any(|report| report["scenario"] != scenario) {
        return Err("every report must be of the same scenario".to_owned());
    }
    let mut figures = Map::new();
    for pointer in HEADLINES {
        let values: Option<Vec<f64>> = reports
            .iter()
            .map(|report| report.pointer(pointer).and_then(Value::as_f64))
            .collect();
        let Some(mut values) = values else { continue };
        values.sort_by(f64::total_cmp);
        let median = median(&values);
        let (min, max) = (values[0], values[values.len() - 1]);
        let spread = if median != 0.0 {
            (max - min) / median
        } else {
            0.0
        };
        figures.insert(
            pointer.trim_start_matches('/').replace('/', "."),
            json!({
                "median": median,
                "min": min,
                "max": max,
                "spread": (spread * 1000.0).round() / 1000.0,
            }),
        );
    }
    Ok(json!({ "scenario": scenario, "runs": reports.len(), "figures": figures }))
}

/// Median of sorted, non-empty values.
fn median(sorted: &[f64]) -> f64 {
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(deliveries_per_s: f64, p99_ms: f64) -> Value {
        json!({
            "scenario": "fanout",
            "delivery": {"deliveries_per_s": deliveries_per_s, "latency": {"p99_ms": p99_ms}},
        })
    }

    #[test]
    fn median_and_spread_of_three_runs() {
        let summary = summarize_runs(&[run(100.0, 3.0), run(90.0, 5.0), run(110.0, 4.0)]).unwrap();
        assert_eq!(summary["runs"], 3);
        let deliveries = &summary["figures"]["delivery.deliveries_per_s"];
        assert_eq!(deliveries["median"], 100.0);
        assert_eq!(deliveries["min"], 90.0);
        assert_eq!(deliveries["max"], 110.0);
        assert_eq!(deliveries["spread"], 0.2);
        assert_eq!(summary["figures"]["delivery.latency.p99_ms"]["median"], 4.0);
        assert!(summary["figures"].get("publish.rate_per_s").is_none());
    }

    #[test]
    fn even_count_takes_the_middle_pair() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
        assert_eq!(median(&[5.0]), 5.0);
    }

    #[test]
    fn mixed_scenarios_are_refused() {
        let mut other = run(1.0, 1.0);
        other["scenario"] = json!("idle");
        assert!(summarize_runs(&[run(1.0, 1.0), other]).is_err());
        assert!(summarize_runs(&[]).is_err());
    }
}
