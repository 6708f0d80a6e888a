//! Input drift per data type and input field: a baseline (the first N records scored after a
//! model is installed) against the current window (the last W records after the baseline),
//! each field's mean and spread and the population stability index (PSI) between the two.
//!
//! PSI bins are the baseline's deciles (fewer when values repeat); each bin's share is floored
//! at [`PSI_FLOOR`] so an empty bin gives a large finite term rather than infinity:
//! `PSI = Σ (window share − baseline share) · ln(window share / baseline share)`. By the usual
//! reading, under 0.1 is stable, 0.1–0.25 a moderate shift, over 0.25 a large one.
//!
//! ```
//! use ks_serving::drift::{DriftBoard, DriftOptions};
//! let board = DriftBoard::new(DriftOptions { baseline: 100, window: 100 });
//! for i in 0..200 {
//!     board.observe("wine", "0:1", &["x"], &[f64::from(i % 100)]);
//! }
//! let r = board.report("wine").unwrap();
//! assert!(r.fields[0].psi.unwrap() < 0.01); // the window repeats the baseline
//! ```

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Smallest share a PSI bin counts with.
pub const PSI_FLOOR: f64 = 1e-4;
/// PSI bins (deciles of the baseline).
pub const PSI_BINS: usize = 10;

/// How much is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftOptions {
    /// Records in the baseline.
    pub baseline: usize,
    /// Records in the current window.
    pub window: usize,
}

impl Default for DriftOptions {
    fn default() -> DriftOptions {
        DriftOptions {
            baseline: 1000,
            window: 1000,
        }
    }
}

/// Count, mean and (population) standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Values counted.
    pub count: usize,
    /// Their mean (0 with none).
    pub mean: f64,
    /// Their standard deviation (0 with fewer than two).
    pub std: f64,
}

impl Moments {
    fn of<'a>(values: impl Iterator<Item = &'a f64> + Clone) -> Moments {
        let (count, sum) = values
            .clone()
            .fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
        if count == 0 {
            return Moments {
                count,
                mean: 0.0,
                std: 0.0,
            };
        }
        let mean = sum / count as f64;
        let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / count as f64;
        Moments {
            count,
            mean,
            std: var.sqrt(),
        }
    }
}

/// One field's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDrift {
    /// The input field.
    pub field: String,
    /// The baseline's figures.
    pub baseline: Moments,
    /// The current window's figures.
    pub window: Moments,
    /// PSI of the window against the baseline (`None` until both have records).
    pub psi: Option<f64>,
}

/// What `GET /models/{dataType}/drift` answers (this instance's records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The data type.
    pub data_type: String,
    /// The model version the baseline was taken under.
    pub model_version: String,
    /// Records in a full baseline.
    pub baseline_size: usize,
    /// Whether the baseline is complete (the window fills only after).
    pub baseline_complete: bool,
    /// Records in a full window.
    pub window_size: usize,
    /// Records seen since the model was installed.
    pub records: u64,
    /// The largest PSI over the fields.
    pub max_psi: Option<f64>,
    /// Per input field.
    pub fields: Vec<FieldDrift>,
}

struct Field {
    name: String,
    baseline: Vec<f64>,
    /// Interior bin edges, set when the baseline completes.
    edges: Vec<f64>,
    shares: Vec<f64>,
    moments: Option<Moments>,
    window: VecDeque<f64>,
}

fn bin(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e <= x)
}

fn shares<'a>(edges: &[f64], values: impl Iterator<Item = &'a f64>) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    let mut n = 0usize;
    for v in values {
        counts[bin(edges, *v)] += 1;
        n += 1;
    }
    counts
        .into_iter()
        .map(|c| (c as f64 / n.max(1) as f64).max(PSI_FLOOR))
        .collect()
}

impl Field {
    fn complete_baseline(&mut self) {
        let mut sorted = self.baseline.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mut edges: Vec<f64> = (1..PSI_BINS)
            .filter_map(|i| sorted.get(i * n / PSI_BINS).copied())
            .collect();
        edges.dedup();
        // An edge at the minimum would leave its lower bin empty forever.
        if let Some(min) = sorted.first() {
            edges.retain(|e| e > min);
        }
        self.shares = shares(&edges, self.baseline.iter());
        self.edges = edges;
        self.moments = Some(Moments::of(self.baseline.iter()));
        self.baseline = Vec::new();
    }

    fn report(&self, baseline_target: usize) -> FieldDrift {
        let baseline = self.moments.unwrap_or_else(|| {
            let mut m = Moments::of(self.baseline.iter());
            m.count = self.baseline.len().min(baseline_target);
            m
        });
        let psi = (self.moments.is_some() && !self.window.is_empty()).then(|| {
            shares(&self.edges, self.window.iter())
                .iter()
                .zip(&self.shares)
                .map(|(w, b)| (w - b) * (w / b).ln())
                .sum()
        });
        FieldDrift {
            field: self.name.clone(),
            baseline,
            window: Moments::of(self.window.iter()),
            psi,
        }
    }
}

struct Tracker {
    version: String,
    records: u64,
    fields: Vec<Field>,
}

/// The drift of every data type, shared by the tasks of a process.
#[derive(Default)]
pub struct DriftBoard {
    trackers: DashMap<String, Tracker>,
    options: DriftOptions,
}

impl DriftBoard {
    /// A board with these sizes (each at least 1).
    pub fn new(options: DriftOptions) -> DriftBoard {
        DriftBoard {
            trackers: DashMap::new(),
            options: DriftOptions {
                baseline: options.baseline.max(1),
                window: options.window.max(1),
            },
        }
    }

    /// Counts one record of `data_type` scored by model `version`, its input `values` named
    /// by `names`. A new version starts a new baseline.
    pub fn observe(&self, data_type: &str, version: &str, names: &[&str], values: &[f64]) {
        let fresh = || Tracker {
            version: version.to_string(),
            records: 0,
            fields: names
                .iter()
                .map(|n| Field {
                    name: n.to_string(),
                    baseline: Vec::new(),
                    edges: Vec::new(),
                    shares: Vec::new(),
                    moments: None,
                    window: VecDeque::new(),
                })
                .collect(),
        };
        // The data type's tracker exists after its first record: look it up without the
        // String an entry would allocate on every record.
        let mut t = match self.trackers.get_mut(data_type) {
            Some(t) => t,
            None => self
                .trackers
                .entry(data_type.to_string())
                .or_insert_with(fresh),
        };
        if t.version != version || t.fields.len() != names.len() {
            *t = fresh();
        }
        t.records += 1;
        let (baseline, window) = (self.options.baseline, self.options.window);
        for (f, v) in t.fields.iter_mut().zip(values) {
            // A missing or infinite value says nothing about the distribution.
            if !v.is_finite() {
                continue;
            }
            if f.moments.is_none() {
                f.baseline.push(*v);
                if f.baseline.len() >= baseline {
                    f.complete_baseline();
                }
            } else {
                if f.window.len() >= window {
                    f.window.pop_front();
                }
                f.window.push_back(*v);
            }
        }
    }

    /// `data_type`'s drift, when any record of it was seen.
    pub fn report(&self, data_type: &str) -> Option<DriftReport> {
        let t = self.trackers.get(data_type)?;
        let fields: Vec<FieldDrift> = t
            .fields
            .iter()
            .map(|f| f.report(self.options.baseline))
            .collect();
        let max_psi = fields.iter().filter_map(|f| f.psi).max_by(f64::total_cmp);
        Some(DriftReport {
            data_type: data_type.to_string(),
            model_version: t.version.clone(),
            baseline_size: self.options.baseline,
            baseline_complete: t.fields.iter().all(|f| f.moments.is_some()),
            window_size: self.options.window,
            records: t.records,
            max_psi,
            fields,
        })
    }

    /// The data types with figures.
    pub fn data_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trackers.iter().map(|t| t.key().clone()).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(board: &DriftBoard, version: &str, values: impl Iterator<Item = f64>) {
        for v in values {
            board.observe("wine", version, &["a", "b"], &[v, 1.0]);
        }
    }

    #[test]
    fn a_shifted_window_has_a_large_psi_and_a_constant_field_none() {
        let board = DriftBoard::new(DriftOptions {
            baseline: 500,
            window: 500,
        });
        feed(&board, "0:1", (0..500).map(|i| f64::from(i % 50)));
        let r = board.report("wine").expect("report");
        assert!(r.baseline_complete);
        assert_eq!(r.fields[0].psi, None, "no window yet");
        assert!((r.fields[0].baseline.mean - 24.5).abs() < 1e-9);
        feed(&board, "0:1", (0..500).map(|i| f64::from(i % 50)));
        let same = board.report("wine").and_then(|r| r.max_psi).expect("psi");
        assert!(same < 1e-9, "{same}");
        feed(&board, "0:1", (0..500).map(|i| f64::from(i % 50) + 20.0));
        let r = board.report("wine").expect("report");
        let shifted = r.fields[0].psi.expect("psi");
        assert!(shifted > 1.0, "{shifted}");
        assert!((r.fields[0].window.mean - 44.5).abs() < 1e-9);
        assert_eq!(
            r.fields[1].psi,
            Some(0.0),
            "the constant field did not move"
        );
        assert_eq!(r.max_psi, Some(shifted));
    }

    #[test]
    fn a_new_model_starts_a_new_baseline_and_bad_values_are_skipped() {
        let board = DriftBoard::new(DriftOptions {
            baseline: 10,
            window: 10,
        });
        feed(&board, "0:1", (0..30).map(f64::from));
        feed(&board, "0:2", [f64::NAN, 1.0].into_iter());
        let r = board.report("wine").expect("report");
        assert_eq!((r.model_version.as_str(), r.records), ("0:2", 2));
        assert_eq!(r.fields[0].baseline.count, 1);
        assert!(!r.baseline_complete);
        assert!(board.report("beer").is_none());
    }
}
