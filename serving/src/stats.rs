//! Serving statistics per data type: the tutorial's ModelToServeStats, with microsecond
//! resolution, a min that starts empty (the tutorial's started at 0 and stuck there), and
//! name and description kept in their own fields (the tutorial swapped them on restore).

use serde::{Deserialize, Serialize};

/// The statistics of one data type's current model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingStats {
    /// The model's name.
    pub name: String,
    /// The model's description.
    pub description: String,
    /// `PMML` or `TENSORFLOW`.
    pub model_type: String,
    /// Which model message this is (`<partition>:<offset>` of the model topic), so a restarted
    /// task knows whether the model it finds is the one its statistics belong to.
    pub version: String,
    /// When the model started serving (ms since the epoch).
    pub since: i64,
    /// Records scored.
    pub usage: u64,
    /// Total scoring time, µs.
    pub duration: f64,
    /// Fastest and slowest scoring, µs (`None` until the first record).
    pub min: Option<f64>,
    /// Slowest scoring, µs.
    pub max: Option<f64>,
}

impl ServingStats {
    /// Statistics of a model that starts serving at `since` (ms): nothing counted yet.
    pub fn new(
        name: &str,
        description: &str,
        model_type: &str,
        version: &str,
        since: i64,
    ) -> ServingStats {
        ServingStats {
            name: name.to_string(),
            description: description.to_string(),
            model_type: model_type.to_string(),
            version: version.to_string(),
            since,
            usage: 0,
            duration: 0.0,
            min: None,
            max: None,
        }
    }

    /// Counts one scoring that took `micros`.
    pub fn record(&mut self, micros: f64) {
        self.usage += 1;
        self.duration += micros;
        self.min = Some(self.min.map_or(micros, |m| m.min(micros)));
        self.max = Some(self.max.map_or(micros, |m| m.max(micros)));
    }

    /// Mean scoring time, µs.
    pub fn mean(&self) -> Option<f64> {
        (self.usage > 0).then(|| self.duration / self.usage as f64)
    }

    /// Combines the statistics of two tasks (partitions) serving the same data type: the newer
    /// model wins; for the same model, counts add up.
    pub fn merge(&self, other: &ServingStats) -> ServingStats {
        if self.version != other.version {
            return if other.since > self.since {
                other.clone()
            } else {
                self.clone()
            };
        }
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        ServingStats {
            since: self.since.min(other.since),
            usage: self.usage + other.usage,
            duration: self.duration + other.duration,
            min: pick(self.min, other.min, f64::min),
            max: pick(self.max, other.max, f64::max),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_is_the_smallest_scoring_not_zero() {
        let mut s = ServingStats::new("m", "d", "PMML", "0:1", 5);
        s.record(12.5);
        s.record(3.25);
        s.record(40.0);
        assert_eq!((s.usage, s.min, s.max), (3, Some(3.25), Some(40.0)));
        assert_eq!(s.duration, 55.75);
    }

    #[test]
    fn name_and_description_survive_a_round_trip() {
        let mut s = ServingStats::new("tree", "a decision tree", "PMML", "0:7", 1);
        s.record(1.0);
        let back: ServingStats = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            (back.name.as_str(), back.description.as_str()),
            ("tree", "a decision tree")
        );
    }

    #[test]
    fn merging_sums_the_same_model_and_prefers_the_newer_one() {
        let mut a = ServingStats::new("m", "", "PMML", "0:1", 10);
        a.record(2.0);
        let mut b = ServingStats::new("m", "", "PMML", "0:1", 20);
        b.record(1.0);
        b.record(5.0);
        let m = a.merge(&b);
        assert_eq!(
            (m.usage, m.min, m.max, m.since),
            (3, Some(1.0), Some(5.0), 10)
        );
        let newer = ServingStats::new("n", "", "PMML", "0:2", 30);
        assert_eq!(a.merge(&newer).name, "n");
        assert_eq!(newer.merge(&a).name, "n");
    }
}
