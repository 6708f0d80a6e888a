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
