//! What one mode measured, and the JSON line it prints.

use serde::Serialize;
use serde_json::{Map, Value};

/// The `q`-quantile (0..=1) of `sorted` by nearest rank: the smallest sample with at least
/// `q * n` samples at or below it. Nearest rank (not interpolation) so a p99 is always a latency
/// that really happened.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

/// p50 and p99 of unsorted samples (NaNs dropped: they cannot be ranked).
pub fn p50_p99(samples: &[f64]) -> (Option<f64>, Option<f64>) {
    let mut s: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    s.sort_by(f64::total_cmp);
    (percentile(&s, 0.50), percentile(&s, 0.99))
}

/// The share of results left out at each end by [`sustained_rate`]: the first 10 % (start-up,
/// group join, a prefetched burst) and the last 10 % (the tail of partitions that finish late).
pub const TRIM: f64 = 0.10;

/// The sustained rate, results per second, over the middle of the results by arrival:
/// `arrivals_s` are arrival times in seconds (non-decreasing, as the reader records them); the
/// first and last `trim` of them are left out and the rate is the results between the two cut
/// points over the time between them. Every mode is measured this way by the same reader, so
/// a server that reads the copy's input cannot show a higher rate than the copy through a late
/// first result (the old first-to-last window opened late when the first results were batched).
/// `None` with fewer than 10 results or when the middle arrived within one clock instant.
pub fn sustained_rate(arrivals_s: &[f64], trim: f64) -> Option<f64> {
    let n = arrivals_s.len();
    if n < 10 || !(0.0..0.5).contains(&trim) {
        return None;
    }
    let lo = (trim * n as f64).floor() as usize;
    let hi = (n - 1 - lo).max(lo + 1);
    let span = arrivals_s[hi] - arrivals_s[lo];
    (span > 0.0).then(|| (hi - lo) as f64 / span)
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The summary of one mode over `--repeat` runs: for every numeric key of its JSON lines, the
/// median, the smallest and the largest value, as `{"median":..,"min":..,"max":..}`; text keys
/// (the model, the store) as they were in the first run.
pub fn summarize(mode: &str, runs: &[Value]) -> Value {
    let mut out = Map::new();
    out.insert("summary".into(), Value::from(mode));
    out.insert("runs".into(), Value::from(runs.len()));
    let Some(Value::Object(first)) = runs.first() else {
        return Value::Object(out);
    };
    for (key, v) in first {
        if matches!(key.as_str(), "mode" | "run") {
            continue;
        }
        if v.is_number() || v.is_null() {
            let xs: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
            let (Some(med), Some(lo), Some(hi)) = (
                median(&xs),
                xs.iter().copied().reduce(f64::min),
                xs.iter().copied().reduce(f64::max),
            ) else {
                out.insert(key.clone(), Value::Null);
                continue;
            };
            let mut stat = Map::new();
            stat.insert("median".into(), Value::from(round3(med)));
            stat.insert("min".into(), Value::from(round3(lo)));
            stat.insert("max".into(), Value::from(round3(hi)));
            out.insert(key.clone(), Value::Object(stat));
        } else {
            out.insert(key.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// A summary of [`summarize`] as one JSON line: `summary` and `runs` first, then the keys of a
/// mode's line in that line's order (records, seconds, records_per_s, ratio, latency, memory),
/// the rest after them.
pub fn summary_line(summary: &Value) -> String {
    const ORDER: [&str; 9] = [
        "summary",
        "runs",
        "records",
        "seconds",
        "records_per_s",
        "ratio",
        "p50_ms",
        "p99_ms",
        "rss_mb",
    ];
    let Value::Object(map) = summary else {
        return summary.to_string();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let fields: Vec<String> = keys
        .iter()
        .map(|k| format!("{}:{}", Value::from(k.as_str()), map[k.as_str()]))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Rounds to 3 decimals: µs resolution on ms values is all the measurement carries.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One mode's measurements. `ratio` is filled in once the passthrough is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModeResult {
    pub mode: String,
    pub records: u64,
    pub seconds: f64,
    /// The measured rate, when it is not `records / seconds`: the sustained rate of
    /// [`sustained_rate`] for the modes that read a backlog.
    pub rate: Option<f64>,
    pub ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub rss_mb: Option<f64>,
    /// Mode-specific keys appended after the fixed ones (store, unscored, requests, ...).
    pub extra: Map<String, Value>,
}

#[derive(Serialize)]
struct Line<'a> {
    mode: &'a str,
    records: u64,
    seconds: f64,
    records_per_s: f64,
    ratio: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    rss_mb: Option<f64>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

impl ModeResult {
    pub fn records_per_s(&self) -> f64 {
        if let Some(r) = self.rate {
            return r;
        }
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Sets `ratio` against the passthrough's rate (left empty without one).
    pub fn relative_to(&mut self, passthrough_per_s: Option<f64>) {
        self.ratio = passthrough_per_s
            .filter(|p| *p > 0.0)
            .map(|p| round3(self.records_per_s() / p));
    }

    /// The result as one JSON object on one line, fixed keys first.
    pub fn json_line(&self) -> String {
        let line = Line {
            mode: &self.mode,
            records: self.records,
            seconds: round3(self.seconds),
            records_per_s: self.records_per_s().round(),
            ratio: self.ratio,
            p50_ms: self.p50_ms.map(round3),
            p99_ms: self.p99_ms.map(round3),
            rss_mb: self.rss_mb.map(|m| (m * 10.0).round() / 10.0),
            extra: &self.extra,
        };
        // Serializing plain numbers, strings and maps cannot fail; fall back to a visible error.
        serde_json::to_string(&line).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.50), Some(50.0));
        assert_eq!(percentile(&s, 0.99), Some(99.0));
        assert_eq!(percentile(&s, 1.0), Some(100.0));
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&s, 1.5), None);
    }

    #[test]
    fn p50_p99_sorts_and_drops_nan() {
        let (p50, p99) = p50_p99(&[3.0, f64::NAN, 1.0, 2.0]);
        assert_eq!(p50, Some(2.0));
        assert_eq!(p99, Some(3.0));
        assert_eq!(p50_p99(&[]), (None, None));
    }

    #[test]
    fn json_line_has_the_fixed_keys_in_order() {
        let mut r = ModeResult {
            mode: "standard".into(),
            records: 1000,
            seconds: 0.5,
            p50_ms: Some(1.23456),
            p99_ms: Some(9.0),
            rss_mb: Some(31.26),
            ..ModeResult::default()
        };
        r.extra.insert("unscored".into(), Value::from(0));
        r.relative_to(Some(4000.0));
        assert_eq!(
            r.json_line(),
            r#"{"mode":"standard","records":1000,"seconds":0.5,"records_per_s":2000.0,"ratio":0.5,"p50_ms":1.235,"p99_ms":9.0,"rss_mb":31.3,"unscored":0}"#
        );
        let v: Value = serde_json::from_str(&r.json_line()).unwrap();
        assert_eq!(v["records_per_s"], 2000.0);
    }

    /// `n` arrivals, one every `gap` seconds from `start`.
    fn steady(n: usize, start: f64, gap: f64) -> Vec<f64> {
        (0..n).map(|i| start + i as f64 * gap).collect()
    }

    #[test]
    fn sustained_rate_of_an_even_stream_is_its_rate() {
        let r = sustained_rate(&steady(10_000, 5.0, 0.001), TRIM).unwrap();
        assert!((r - 1000.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn a_late_batched_start_and_a_slow_tail_do_not_count() {
        // The first 5 % arrive in one burst (held back by batching), the last 5 % trickle in
        // from a partition that finished late: the middle's 1000/s is what is reported.
        let mut a = vec![10.0; 500];
        a.extend(steady(9_000, 10.001, 0.001));
        a.extend(steady(500, 30.0, 0.1));
        let r = sustained_rate(&a, TRIM).unwrap();
        assert!((r - 1000.0).abs() < 1.0, "{r}");
        // The old first-to-last window would have said about 10 000 / 80 s.
        assert!(a.len() as f64 / (a[a.len() - 1] - a[0]) < 200.0);
    }

    #[test]
    fn a_mode_that_falls_behind_its_input_is_slower_than_it() {
        // The copy keeps 2000/s; a server reading the same input at 1000/s starts later, yet
        // its sustained rate cannot beat the copy's.
        let copy = sustained_rate(&steady(20_000, 0.0, 0.0005), TRIM).unwrap();
        let server = sustained_rate(&steady(20_000, 7.0, 0.001), TRIM).unwrap();
        assert!(server < copy);
        assert!((copy / server - 2.0).abs() < 1e-6);
    }

    #[test]
    fn too_few_or_simultaneous_arrivals_have_no_rate() {
        assert_eq!(sustained_rate(&[1.0; 9], TRIM), None);
        assert_eq!(sustained_rate(&[1.0; 100], TRIM), None);
        assert_eq!(sustained_rate(&steady(100, 0.0, 0.01), 0.5), None);
        // No trim: first to last.
        let r = sustained_rate(&steady(11, 0.0, 0.1), 0.0).unwrap();
        assert!((r - 10.0).abs() < 1e-9);
    }

    #[test]
    fn medians_and_summaries() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let runs: Vec<Value> = [100.0, 300.0, 200.0]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({"mode":"standard","run":i+1,"records_per_s":r,
                    "rss_mb":null,"model":"tree"})
            })
            .collect();
        let s = summarize("standard", &runs);
        assert_eq!(s["summary"], "standard");
        assert_eq!(s["runs"], 3);
        assert_eq!(s["records_per_s"]["median"], 200.0);
        assert_eq!(s["records_per_s"]["min"], 100.0);
        assert_eq!(s["records_per_s"]["max"], 300.0);
        assert_eq!(s["rss_mb"], Value::Null);
        assert_eq!(s["model"], "tree");
        assert!(s.get("run").is_none());
        let line = summary_line(&s);
        assert!(line.starts_with(r#"{"summary":"standard","runs":3,"records_per_s":{"#));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_measured_rate_wins_over_records_by_seconds() {
        let r = ModeResult {
            records: 1000,
            seconds: 1.0,
            rate: Some(1500.0),
            ..ModeResult::default()
        };
        assert_eq!(r.records_per_s(), 1500.0);
    }

    #[test]
    fn no_passthrough_no_ratio() {
        let mut r = ModeResult {
            seconds: 0.0,
            ..ModeResult::default()
        };
        r.relative_to(Some(10.0));
        assert_eq!(r.records_per_s(), 0.0);
        assert_eq!(r.ratio, Some(0.0));
        r.relative_to(None);
        assert_eq!(r.ratio, None);
        assert!(r.json_line().contains("\"rss_mb\":null"));
    }
}
