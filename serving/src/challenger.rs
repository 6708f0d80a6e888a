//! Champion/challenger (shadow scoring): agreement between the serving model and a
//! challenger scored beside it on the same records, per data type.
//!
//! The figures ([`Agreement`]) count the records both models scored since this pair began:
//! for classification the share of equal labels, for regression the mean and largest absolute
//! difference, and both models' scoring latency. A prediction is classification when either
//! model gives class probabilities or a text label, regression when both give plain numbers.
//! A new champion or challenger starts new figures. An optional [`PromotePolicy`] asks for a
//! promotion once the figures pass it; the server publishes that as a control message, so
//! every instance promotes from the model topic.
//!
//! ```
//! use ks_serving::challenger::Agreement;
//! let mut a = Agreement::default();
//! a.observe_values(&"5".into(), &"5".into(), true, 10.0, 12.0);
//! a.observe_values(&"5".into(), &"6".into(), true, 10.0, 12.0);
//! assert_eq!(a.records_compared, 2);
//! assert_eq!(a.agreement(), Some(0.5));
//! ```

use crate::control::Action;
use crate::ServedModel;
use dashmap::DashMap;
use ks_models::{Prediction, Value};
use serde::{Deserialize, Serialize};

/// Agreement figures of one champion/challenger pair. Sums, counts and maxima, so instances'
/// figures merge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Records scored by both models.
    pub records_compared: u64,
    /// Of those, compared as classification.
    pub classification_compared: u64,
    /// Of those, with equal labels.
    pub equal_labels: u64,
    /// Records compared as regression.
    pub regression_compared: u64,
    /// Sum of the absolute differences of regression predictions.
    pub abs_diff_sum: f64,
    /// Largest absolute difference of regression predictions.
    pub abs_diff_max: f64,
    /// Records where either prediction was missing (counted, not compared).
    pub incomparable: u64,
    /// Records the challenger could not score (the champion's result was served regardless).
    pub challenger_errors: u64,
    /// Sum of the champion's scoring times, µs.
    pub champion_us_sum: f64,
    /// The champion's slowest scoring, µs.
    pub champion_us_max: f64,
    /// Sum of the challenger's scoring times, µs.
    pub challenger_us_sum: f64,
    /// The challenger's slowest scoring, µs.
    pub challenger_us_max: f64,
}

fn label(v: &Value) -> Option<String> {
    match v {
        Value::Missing => None,
        Value::Number(f) => Some(f.to_string()),
        Value::Text(s) => Some(s.to_string()),
    }
}

impl Agreement {
    /// Counts one record both models scored.
    pub fn observe(
        &mut self,
        champion: &Prediction,
        challenger: &Prediction,
        champion_us: f64,
        challenger_us: f64,
    ) {
        let classification = champion.probabilities().next().is_some()
            || challenger.probabilities().next().is_some();
        self.observe_values(
            champion.value(),
            challenger.value(),
            classification,
            champion_us,
            challenger_us,
        );
    }

    /// Counts one record from the two predicted values; `classification` when either model
    /// gave class probabilities (a text label is classification regardless).
    pub fn observe_values(
        &mut self,
        champion: &Value,
        challenger: &Value,
        classification: bool,
        champion_us: f64,
        challenger_us: f64,
    ) {
        self.records_compared += 1;
        self.champion_us_sum += champion_us;
        self.champion_us_max = self.champion_us_max.max(champion_us);
        self.challenger_us_sum += challenger_us;
        self.challenger_us_max = self.challenger_us_max.max(challenger_us);
        let text = matches!(champion, Value::Text(_)) || matches!(challenger, Value::Text(_));
        match (champion, challenger) {
            (Value::Missing, _) | (_, Value::Missing) => self.incomparable += 1,
            (Value::Number(a), Value::Number(b)) if !classification && !text => {
                let d = (a - b).abs();
                if d.is_finite() {
                    self.regression_compared += 1;
                    self.abs_diff_sum += d;
                    self.abs_diff_max = self.abs_diff_max.max(d);
                } else {
                    self.incomparable += 1;
                }
            }
            (a, b) => {
                self.classification_compared += 1;
                if label(a) == label(b) {
                    self.equal_labels += 1;
                }
            }
        }
    }

    /// Counts one record the challenger could not score.
    pub fn challenger_failed(&mut self) {
        self.challenger_errors += 1;
    }

    /// The share of equal labels, when any record was compared as classification.
    pub fn agreement(&self) -> Option<f64> {
        (self.classification_compared > 0)
            .then(|| self.equal_labels as f64 / self.classification_compared as f64)
    }

    /// The mean absolute difference, when any record was compared as regression.
    pub fn mean_abs_diff(&self) -> Option<f64> {
        (self.regression_compared > 0).then(|| self.abs_diff_sum / self.regression_compared as f64)
    }

    /// `classification`, `regression`, `mixed` or `none` (nothing compared yet).
    pub fn kind(&self) -> &'static str {
        match (
            self.classification_compared > 0,
            self.regression_compared > 0,
        ) {
            (true, false) => "classification",
            (false, true) => "regression",
            (true, true) => "mixed",
            (false, false) => "none",
        }
    }

    /// These figures and `other`'s (another instance's, for the same pair).
    pub fn merge(&self, other: &Agreement) -> Agreement {
        Agreement {
            records_compared: self.records_compared + other.records_compared,
            classification_compared: self.classification_compared + other.classification_compared,
            equal_labels: self.equal_labels + other.equal_labels,
            regression_compared: self.regression_compared + other.regression_compared,
            abs_diff_sum: self.abs_diff_sum + other.abs_diff_sum,
            abs_diff_max: self.abs_diff_max.max(other.abs_diff_max),
            incomparable: self.incomparable + other.incomparable,
            challenger_errors: self.challenger_errors + other.challenger_errors,
            champion_us_sum: self.champion_us_sum + other.champion_us_sum,
            champion_us_max: self.champion_us_max.max(other.champion_us_max),
            challenger_us_sum: self.challenger_us_sum + other.challenger_us_sum,
            challenger_us_max: self.challenger_us_max.max(other.challenger_us_max),
        }
    }
}

/// When a challenger is promoted without an operator: after `after_records` compared records,
/// if it never failed and agrees enough (classification: share of equal labels at least
/// `min_agreement`; regression: mean absolute difference at most `max_mean_abs_diff`; both
/// when the records were mixed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PromotePolicy {
    /// Records compared before deciding.
    pub after_records: u64,
    /// Least share of equal labels (classification).
    pub min_agreement: f64,
    /// Largest mean absolute difference (regression).
    pub max_mean_abs_diff: f64,
}

impl PromotePolicy {
    /// Whether `a` passes this policy.
    pub fn passes(&self, a: &Agreement) -> bool {
        if a.records_compared < self.after_records || a.challenger_errors > 0 {
            return false;
        }
        let labels_ok = a.agreement().is_none_or(|s| s >= self.min_agreement);
        let diff_ok = a
            .mean_abs_diff()
            .is_none_or(|d| d <= self.max_mean_abs_diff);
        a.kind() != "none" && labels_ok && diff_ok
    }
}

/// A model named in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Its name.
    pub name: String,
    /// `<partition>:<offset>` of its model message.
    pub version: String,
}

impl ModelRef {
    fn of(m: &ServedModel) -> ModelRef {
        ModelRef {
            name: m.name.clone(),
            version: m.version.clone(),
        }
    }
}

/// Mean and largest scoring time, µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Mean, µs (0 before any record).
    pub mean_us: f64,
    /// Largest, µs.
    pub max_us: f64,
}

/// What `GET /models/{dataType}/challenger` answers (this instance's records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengerReport {
    /// The data type.
    pub data_type: String,
    /// The serving model of the pair.
    pub champion: ModelRef,
    /// The challenger of the pair.
    pub challenger: ModelRef,
    /// Whether the challenger still scores in shadow (false once promoted or replaced).
    pub active: bool,
    /// Records both scored.
    pub records_compared: u64,
    /// `classification`, `regression`, `mixed` or `none`.
    pub kind: String,
    /// Share of equal labels (classification).
    pub agreement: Option<f64>,
    /// Mean absolute difference (regression).
    pub mean_abs_diff: Option<f64>,
    /// Largest absolute difference (regression).
    pub max_abs_diff: Option<f64>,
    /// The champion's scoring time.
    pub champion_latency: Latency,
    /// The challenger's scoring time.
    pub challenger_latency: Latency,
    /// The automatic promotion policy, when one is set.
    pub policy: Option<PromotePolicy>,
    /// Whether the policy has asked for this challenger's promotion.
    pub promotion_requested: bool,
    /// The raw figures.
    pub figures: Agreement,
}

struct Pair {
    champion: ModelRef,
    challenger: ModelRef,
    figures: Agreement,
    promotion_requested: bool,
}

/// The agreement figures of every data type's current pair, shared by the tasks of a process.
#[derive(Default)]
pub struct ShadowBoard {
    pairs: DashMap<String, Pair>,
    policy: Option<PromotePolicy>,
}

/// The outcome of one challenger scoring, for [`ShadowBoard::observe`].
pub enum Shadow<'a> {
    /// Both scored.
    Scored {
        /// The champion's prediction.
        champion: &'a Prediction,
        /// The challenger's prediction.
        challenger: &'a Prediction,
        /// The champion's time, µs.
        champion_us: f64,
        /// The challenger's time, µs.
        challenger_us: f64,
    },
    /// The challenger failed to score.
    Failed,
}

impl ShadowBoard {
    /// A board promoting by `policy`, if any.
    pub fn new(policy: Option<PromotePolicy>) -> ShadowBoard {
        ShadowBoard {
            pairs: DashMap::new(),
            policy,
        }
    }

    /// Counts one record of `data_type`; returns the promotion to publish when the policy
    /// passes for the first time for this pair.
    pub fn observe(
        &self,
        data_type: &str,
        champion: &ServedModel,
        challenger: &ServedModel,
        outcome: Shadow<'_>,
    ) -> Option<Action> {
        let mut pair = self
            .pairs
            .entry(data_type.to_string())
            .or_insert_with(|| Pair {
                champion: ModelRef::of(champion),
                challenger: ModelRef::of(challenger),
                figures: Agreement::default(),
                promotion_requested: false,
            });
        if pair.champion.version != champion.version
            || pair.challenger.version != challenger.version
        {
            *pair = Pair {
                champion: ModelRef::of(champion),
                challenger: ModelRef::of(challenger),
                figures: Agreement::default(),
                promotion_requested: false,
            };
        }
        match outcome {
            Shadow::Scored {
                champion,
                challenger,
                champion_us,
                challenger_us,
            } => pair
                .figures
                .observe(champion, challenger, champion_us, challenger_us),
            Shadow::Failed => pair.figures.challenger_failed(),
        }
        let policy = self.policy?;
        if pair.promotion_requested || !policy.passes(&pair.figures) {
            return None;
        }
        pair.promotion_requested = true;
        Some(Action::Promote {
            version: Some(pair.challenger.version.clone()),
        })
    }

    /// The report of `data_type`'s latest pair; `active_challenger` is the version scoring in
    /// shadow now, if any.
    pub fn report(
        &self,
        data_type: &str,
        active_challenger: Option<&str>,
    ) -> Option<ChallengerReport> {
        let pair = self.pairs.get(data_type)?;
        let f = &pair.figures;
        let mean = |sum: f64| {
            if f.records_compared == 0 {
                0.0
            } else {
                sum / f.records_compared as f64
            }
        };
        Some(ChallengerReport {
            data_type: data_type.to_string(),
            champion: pair.champion.clone(),
            challenger: pair.challenger.clone(),
            active: active_challenger == Some(pair.challenger.version.as_str()),
            records_compared: f.records_compared,
            kind: f.kind().to_string(),
            agreement: f.agreement(),
            mean_abs_diff: f.mean_abs_diff(),
            max_abs_diff: (f.regression_compared > 0).then_some(f.abs_diff_max),
            champion_latency: Latency {
                mean_us: mean(f.champion_us_sum),
                max_us: f.champion_us_max,
            },
            challenger_latency: Latency {
                mean_us: mean(f.challenger_us_sum),
                max_us: f.challenger_us_max,
            },
            policy: self.policy,
            promotion_requested: pair.promotion_requested,
            figures: f.clone(),
        })
    }

    /// The data types with figures.
    pub fn data_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self.pairs.iter().map(|p| p.key().clone()).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::tests::served;

    #[test]
    fn regression_figures_are_mean_and_max_of_the_differences() {
        let mut a = Agreement::default();
        for (x, y) in [(1.0, 1.5), (2.0, 1.0), (3.0, 3.0)] {
            a.observe_values(&Value::Number(x), &Value::Number(y), false, 2.0, 4.0);
        }
        assert_eq!(a.kind(), "regression");
        assert_eq!(a.mean_abs_diff(), Some(0.5));
        assert_eq!(a.abs_diff_max, 1.0);
        assert_eq!(a.agreement(), None);
        a.observe_values(&Value::Missing, &Value::Number(1.0), false, 2.0, 4.0);
        assert_eq!((a.records_compared, a.incomparable), (4, 1));
        let m = a.merge(&a);
        assert_eq!(m.records_compared, 8);
        assert_eq!(m.mean_abs_diff(), Some(0.5));
    }

    #[test]
    fn numeric_labels_with_probabilities_compare_as_labels() {
        let mut a = Agreement::default();
        a.observe_values(
            &Value::Number(5.0),
            &Value::Text("5".into()),
            true,
            1.0,
            1.0,
        );
        a.observe_values(&Value::Number(5.0), &Value::Number(6.0), true, 1.0, 1.0);
        assert_eq!(a.kind(), "classification");
        assert_eq!(a.agreement(), Some(0.5));
    }

    #[test]
    fn the_policy_asks_once_after_n_agreeing_records_and_a_new_pair_starts_afresh() {
        let board = ShadowBoard::new(Some(PromotePolicy {
            after_records: 3,
            min_agreement: 0.9,
            max_mean_abs_diff: 0.1,
        }));
        let (a, b, c) = (served("wine", 1), served("wine", 2), served("wine", 3));
        let wine = ks_proto::WineRecord::from_features(
            [
                7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4,
            ],
            "wine",
        );
        // The same model twice: the differences are 0, well within the policy.
        let p = a.score_wine(&wine).0.expect("scores");
        let q = b.score_wine(&wine).0.expect("scores");
        let scored = || Shadow::Scored {
            champion: &p,
            challenger: &q,
            champion_us: 1.0,
            challenger_us: 2.0,
        };
        assert!(board.observe("wine", &a, &b, scored()).is_none());
        assert!(board.observe("wine", &a, &b, scored()).is_none());
        assert_eq!(
            board.observe("wine", &a, &b, scored()),
            Some(Action::Promote {
                version: Some("0:2".into())
            })
        );
        assert!(
            board.observe("wine", &a, &b, scored()).is_none(),
            "asked once"
        );
        let r = board.report("wine", Some("0:2")).expect("a report");
        assert!(r.active && r.promotion_requested);
        assert_eq!(r.records_compared, 4);
        // A new challenger: new figures; one that fails is never promoted.
        board.observe("wine", &a, &c, Shadow::Failed);
        for _ in 0..5 {
            assert!(board.observe("wine", &a, &c, scored()).is_none());
        }
        let r = board.report("wine", None).expect("a report");
        assert_eq!((r.records_compared, r.figures.challenger_errors), (5, 1));
        assert!(!r.active);
    }
}
