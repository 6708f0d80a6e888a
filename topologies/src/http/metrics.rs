//! `/metrics`: a [`MetricsSnapshot`] in the Prometheus text exposition format 0.0.4.

use crate::queries::MetricsSnapshot;
use std::fmt::Write as _;

/// Renders a snapshot in the Prometheus text exposition format 0.0.4.
pub fn render_metrics(m: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let counters = [
        (
            "ks_records_total",
            "Data records processed by this instance.",
            m.records,
        ),
        ("ks_scores_total", "Records scored by a model.", m.scores),
        (
            "ks_no_model_total",
            "Records that found no model for their data type.",
            m.no_model,
        ),
        (
            "ks_errors_total",
            "Bad records and bad models sent to the errors topic.",
            m.errors,
        ),
        (
            "ks_models_loaded_total",
            "Models built and swapped in.",
            m.models_loaded,
        ),
    ];
    for (name, help, value) in counters {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }

    let name = "ks_score_latency_seconds";
    let _ = write!(
        out,
        "# HELP {name} Time to score one record.\n# TYPE {name} histogram\n"
    );
    // Prometheus needs buckets in increasing `le` order ending in +Inf; the snapshot promises
    // that, but sorting and completing it here keeps a sloppy snapshot from breaking scrapes.
    let mut buckets: Vec<(f64, u64)> = m
        .latency_buckets
        .iter()
        .copied()
        .filter(|(le, _)| !le.is_nan())
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        let last = buckets.last().map_or(0, |b| b.1);
        buckets.push((f64::INFINITY, m.latency_count.max(last)));
    }
    for (le, count) in buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {count}", prom_float(le));
    }
    let _ = writeln!(out, "{name}_sum {}", prom_float(m.latency_sum_seconds));
    let _ = writeln!(out, "{name}_count {}", m.latency_count);

    if let Some(lag) = m.lag {
        let name = "ks_consumer_lag";
        let _ = write!(
            out,
            "# HELP {name} Records waiting in assigned partitions.\n\
             # TYPE {name} gauge\n{name} {lag}\n"
        );
    }
    let gauges: [PerTaskGauge<'_>; 3] = [
        (
            "ks_standby_lag_records",
            "Changelog records a standby copy of a task is behind.",
            m.tasks
                .iter()
                .filter_map(|t| t.standby_lag.map(|l| (t.task.as_str(), l as f64)))
                .collect(),
        ),
        (
            "ks_task_restore_records_per_second",
            "Changelog records per second of a task's last restore here.",
            m.tasks
                .iter()
                .filter_map(|t| t.restore_records_per_second.map(|r| (t.task.as_str(), r)))
                .collect(),
        ),
        (
            "ks_task_time_to_ready_seconds",
            "From a task's assignment here to it processing (open, restore, init).",
            m.tasks
                .iter()
                .filter_map(|t| t.time_to_ready_seconds.map(|r| (t.task.as_str(), r)))
                .collect(),
        ),
    ];
    for (name, help, samples) in gauges {
        if samples.is_empty() {
            continue;
        }
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
        for (task, v) in samples {
            let _ = writeln!(out, "{name}{{task=\"{task}\"}} {}", prom_float(v));
        }
    }
    out
}

/// A gauge family with one sample per task: name, help, (task, value) samples.
type PerTaskGauge<'a> = (&'static str, &'static str, Vec<(&'a str, f64)>);

/// Prometheus spells the infinities and NaN its own way; finite values print as Rust does,
/// which Prometheus' parser accepts.
fn prom_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}
