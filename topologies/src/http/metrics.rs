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
            "ks_batched_scores_total",
            "Records scored together with the rest of their poll batch (models that batch).",
            m.batched_scores,
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

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The model lifecycle's gauges: champion/challenger agreement and input drift per data type
/// (and field), from this instance's records.
pub fn render_lifecycle(
    challengers: &[crate::queries::ChallengerReport],
    drifts: &[crate::queries::DriftReport],
) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        if samples.is_empty() {
            return;
        }
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {}", prom_float(v));
        }
    };
    let by_type = |f: &dyn Fn(&crate::queries::ChallengerReport) -> Option<f64>| {
        challengers
            .iter()
            .filter_map(|c| f(c).map(|v| (format!("data_type=\"{}\"", label(&c.data_type)), v)))
            .collect::<Vec<_>>()
    };
    family(
        "ks_challenger_records_compared",
        "Records scored by both the serving model and its challenger.",
        by_type(&|c| Some(c.records_compared as f64)),
    );
    family(
        "ks_challenger_agreement",
        "Share of equal labels of the serving model and its challenger (classification).",
        by_type(&|c| c.agreement),
    );
    family(
        "ks_challenger_mean_abs_diff",
        "Mean absolute difference of the two predictions (regression).",
        by_type(&|c| c.mean_abs_diff),
    );
    family(
        "ks_challenger_max_abs_diff",
        "Largest absolute difference of the two predictions (regression).",
        by_type(&|c| c.max_abs_diff),
    );
    family(
        "ks_challenger_errors",
        "Records the challenger could not score.",
        by_type(&|c| Some(c.figures.challenger_errors as f64)),
    );
    family(
        "ks_challenger_latency_mean_seconds",
        "Mean scoring time of the serving model and of its challenger.",
        challengers
            .iter()
            .flat_map(|c| {
                let dt = label(&c.data_type);
                [
                    (
                        format!("data_type=\"{dt}\",role=\"champion\""),
                        c.champion_latency.mean_us / 1e6,
                    ),
                    (
                        format!("data_type=\"{dt}\",role=\"challenger\""),
                        c.challenger_latency.mean_us / 1e6,
                    ),
                ]
            })
            .collect(),
    );
    type FieldValue = fn(&ks_serving::drift::FieldDrift) -> Option<f64>;
    let per_field: [(&str, &str, FieldValue); 5] = [
        (
            "ks_drift_psi",
            "Population stability index of an input field's current window against its baseline.",
            |f| f.psi,
        ),
        (
            "ks_drift_window_mean",
            "Mean of an input field over the current window.",
            |f| (f.window.count > 0).then_some(f.window.mean),
        ),
        (
            "ks_drift_window_std",
            "Standard deviation of an input field over the current window.",
            |f| (f.window.count > 0).then_some(f.window.std),
        ),
        (
            "ks_drift_baseline_mean",
            "Mean of an input field over the baseline.",
            |f| (f.baseline.count > 0).then_some(f.baseline.mean),
        ),
        (
            "ks_drift_baseline_std",
            "Standard deviation of an input field over the baseline.",
            |f| (f.baseline.count > 0).then_some(f.baseline.std),
        ),
    ];
    for (name, help, value) in per_field {
        family(
            name,
            help,
            drifts
                .iter()
                .flat_map(|d| {
                    d.fields.iter().filter_map(move |f| {
                        value(f).map(|v| {
                            (
                                format!(
                                    "data_type=\"{}\",field=\"{}\"",
                                    label(&d.data_type),
                                    label(&f.field)
                                ),
                                v,
                            )
                        })
                    })
                })
                .collect(),
        );
    }
    out
}
