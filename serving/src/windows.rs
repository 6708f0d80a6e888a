//! Scores per tumbling one-minute window: for each data type and window, per model, how many
//! records it scored, the mean of its numeric predictions and the mean scoring time.
//!
//! A window is kept per task (partition) in a window store keyed by data type and window
//! start; [`ScoreWindow::merge`] adds up the tasks' (and the instances') parts, which is why the
//! sums are stored rather than the means.
//!
//! ```
//! use ks_serving::windows::{window_start, ScoreWindow, WINDOW_MS};
//!
//! let mut a = ScoreWindow::default();
//! a.record("tree", Some(5.0), 2.0);
//! let mut b = ScoreWindow::default();
//! b.record("tree", Some(7.0), 4.0);
//! a.merge(&b);
//! let tree = &a.models["tree"];
//! assert_eq!((tree.count, tree.mean_prediction(), tree.mean_duration_us()), (2, Some(6.0), Some(3.0)));
//! assert_eq!(window_start(125_000), 120_000);
//! assert_eq!(WINDOW_MS, 60_000);
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The windows' size: one minute, tumbling.
pub const WINDOW_MS: i64 = 60_000;

/// The start of the window holding event time `ts` (also for times before the epoch).
pub fn window_start(ts: i64) -> i64 {
    ts - ts.rem_euclid(WINDOW_MS)
}

/// One model's scores in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelWindow {
    /// Records scored.
    pub count: u64,
    /// Of those, the ones with a numeric prediction (a class label that is not a number is
    /// counted in `count` only).
    pub predicted: u64,
    /// Sum of the numeric predictions.
    pub sum_prediction: f64,
    /// Sum of the scoring times, µs.
    pub sum_duration_us: f64,
}

impl ModelWindow {
    /// Mean numeric prediction, if any.
    pub fn mean_prediction(&self) -> Option<f64> {
        (self.predicted > 0).then(|| self.sum_prediction / self.predicted as f64)
    }

    /// Mean scoring time, µs, if any record was scored.
    pub fn mean_duration_us(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_duration_us / self.count as f64)
    }

    fn merge(&mut self, other: &ModelWindow) {
        self.count += other.count;
        self.predicted += other.predicted;
        self.sum_prediction += other.sum_prediction;
        self.sum_duration_us += other.sum_duration_us;
    }
}

/// One data type's scores in one window, per model name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreWindow {
    /// By model name.
    pub models: BTreeMap<String, ModelWindow>,
}

impl ScoreWindow {
    /// Counts one record scored by `model` (its numeric prediction, if it has one) in
    /// `duration_us`.
    pub fn record(&mut self, model: &str, prediction: Option<f64>, duration_us: f64) {
        let m = match self.models.get_mut(model) {
            Some(m) => m,
            None => self.models.entry(model.to_string()).or_default(),
        };
        m.count += 1;
        if let Some(p) = prediction.filter(|p| p.is_finite()) {
            m.predicted += 1;
            m.sum_prediction += p;
        }
        if duration_us.is_finite() {
            m.sum_duration_us += duration_us;
        }
    }

    /// Adds `other`'s counts (another task's or instance's part of the same window).
    pub fn merge(&mut self, other: &ScoreWindow) {
        for (name, m) in &other.models {
            self.models.entry(name.clone()).or_default().merge(m);
        }
    }
}

/// Adds `part` (windows by start) into `into`.
pub fn merge_windows(into: &mut BTreeMap<i64, ScoreWindow>, part: &BTreeMap<i64, ScoreWindow>) {
    for (start, w) in part {
        into.entry(*start).or_default().merge(w);
    }
}

/// One window as `/state/windows/{dataType}` answers it: the sums (so peers' answers merge)
/// and the means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// Window start, ms since the epoch (inclusive).
    pub start: i64,
    /// Window end, ms since the epoch (exclusive).
    pub end: i64,
    /// By model name.
    pub models: BTreeMap<String, ModelWindowReport>,
}

/// One model's part of a [`WindowReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelWindowReport {
    /// The sums.
    #[serde(flatten)]
    pub sums: ModelWindow,
    /// `sum_prediction / predicted`.
    pub mean_prediction: Option<f64>,
    /// `sum_duration_us / count`.
    pub mean_duration_us: Option<f64>,
}

/// Windows by start as reports, oldest first.
pub fn reports(windows: &BTreeMap<i64, ScoreWindow>) -> Vec<WindowReport> {
    windows
        .iter()
        .map(|(start, w)| WindowReport {
            start: *start,
            end: start.saturating_add(WINDOW_MS),
            models: w
                .models
                .iter()
                .map(|(name, m)| {
                    (
                        name.clone(),
                        ModelWindowReport {
                            sums: m.clone(),
                            mean_prediction: m.mean_prediction(),
                            mean_duration_us: m.mean_duration_us(),
                        },
                    )
                })
                .collect(),
        })
        .collect()
}

/// Reports back into windows by start (a peer's answer, to merge).
pub fn from_reports(reports: &[WindowReport]) -> BTreeMap<i64, ScoreWindow> {
    reports
        .iter()
        .map(|r| {
            (
                r.start,
                ScoreWindow {
                    models: r
                        .models
                        .iter()
                        .map(|(n, m)| (n.clone(), m.sums.clone()))
                        .collect(),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn windows_start_on_the_minute_also_before_the_epoch() {
        assert_eq!(window_start(0), 0);
        assert_eq!(window_start(59_999), 0);
        assert_eq!(window_start(60_000), 60_000);
        assert_eq!(window_start(-1), -60_000);
    }

    #[test]
    fn text_predictions_count_but_do_not_enter_the_mean() {
        let mut w = ScoreWindow::default();
        w.record("m", Some(4.0), 1.0);
        w.record("m", None, 3.0);
        w.record("m", Some(f64::NAN), 2.0);
        let m = &w.models["m"];
        assert_eq!((m.count, m.predicted), (3, 1));
        assert_eq!(m.mean_prediction(), Some(4.0));
        assert_eq!(m.mean_duration_us(), Some(2.0));
    }

    #[test]
    fn reports_round_trip_and_merge_by_start() {
        let mut a = BTreeMap::new();
        a.entry(0)
            .or_insert_with(ScoreWindow::default)
            .record("x", Some(1.0), 1.0);
        let mut b = BTreeMap::new();
        b.entry(0)
            .or_insert_with(ScoreWindow::default)
            .record("x", Some(3.0), 3.0);
        b.entry(60_000)
            .or_insert_with(ScoreWindow::default)
            .record("y", Some(2.0), 1.0);
        let json = serde_json::to_string(&reports(&b)).unwrap();
        let back: Vec<WindowReport> = serde_json::from_str(&json).unwrap();
        merge_windows(&mut a, &from_reports(&back));
        assert_eq!(a[&0].models["x"].count, 2);
        assert_eq!(a[&0].models["x"].mean_prediction(), Some(2.0));
        assert_eq!(a[&60_000].models["y"].count, 1);
        let r = reports(&a);
        assert_eq!((r[1].start, r[1].end), (60_000, 120_000));
        assert_eq!(r[0].models["x"].mean_duration_us, Some(2.0));
    }
}
