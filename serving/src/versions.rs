//! The last K models of each data type, with the one serving, for rollback and promotion.
//!
//! A [`History`] lists its data type's models oldest first with a cursor on the one serving.
//! Installing a model appends it and serves it; a rollback marks the serving one rolled back
//! and serves the newest older one not rolled back; a promotion appends the challenger and
//! serves it (so a rollback after a promotion brings the old champion back). Beyond K entries
//! the oldest rolled-back one is dropped, else the oldest, with its model. Every instance applies the same model-topic messages
//! in the same order, so every instance's history is the same, also after a restart that
//! re-reads the topic.
//!
//! ```
//! use ks_serving::versions::History;
//! use ks_serving::{descriptor, Origin};
//! use ks_proto::{Message, ModelDescriptor, ModelType};
//! use std::sync::Arc;
//!
//! let pmml = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/winequalityLinearRegression.pmml"))?;
//! let md = ModelDescriptor::with_data("lr", "", "wine", ModelType::Pmml, pmml);
//! let mut h = History::default();
//! for offset in [1, 2] {
//!     let origin = Origin::new("models", 0, offset);
//!     let model = descriptor::decode(&md.encode_to_vec(), &origin)?.update.build(0)?;
//!     h.install(Arc::new(model), origin, 3);
//! }
//! assert_eq!(h.rollback("wine")?.version, "0:1");
//! assert!(h.rollback("wine").is_err()); // nothing older: 0:1 keeps serving
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::{Error, Origin, Result, ServedModel};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// It serves.
    Serving,
    /// Kept, older than the serving one: a rollback target.
    Previous,
    /// Rolled back from (or newer than the serving one after a rollback): not a target.
    RolledBack,
    /// Scored in shadow beside the serving one.
    Challenger,
}

/// One kept version, as `GET /models/{dataType}/versions` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// `<partition>:<offset>` of its model message.
    pub version: String,
    /// The model's name.
    pub name: String,
    /// `PMML`, `TENSORFLOW`, `ONNX`.
    pub model_type: String,
    /// The model topic.
    pub topic: String,
    /// The model message's partition.
    pub partition: i32,
    /// The model message's offset.
    pub offset: i64,
    /// When this instance finished building it (ms since the epoch).
    pub loaded: i64,
    /// Where it stands.
    pub status: VersionStatus,
}

/// A data type's kept versions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionsReport {
    /// The data type.
    pub data_type: String,
    /// How many versions are kept (`--keep-versions`).
    pub keep: usize,
    /// The serving version.
    pub serving: Option<String>,
    /// The challenger scored in shadow, if any.
    pub challenger: Option<VersionInfo>,
    /// The kept versions, newest first.
    pub versions: Vec<VersionInfo>,
}

#[derive(Clone)]
struct Entry {
    model: Arc<ServedModel>,
    origin: Origin,
    rolled_back: bool,
}

impl Entry {
    fn info(&self, status: VersionStatus) -> VersionInfo {
        VersionInfo {
            version: self.model.version.clone(),
            name: self.model.name.clone(),
            model_type: self.model.model_type.as_str_name().to_string(),
            topic: self.origin.topic.clone(),
            partition: self.origin.partition,
            offset: self.origin.offset,
            loaded: self.model.loaded_ms,
            status,
        }
    }
}

/// One data type's kept models (see the module docs).
#[derive(Default, Clone)]
pub struct History {
    entries: Vec<Entry>,
    current: usize,
    challenger: Option<Entry>,
}

impl History {
    /// The serving model.
    pub fn serving(&self) -> Option<Arc<ServedModel>> {
        self.entries.get(self.current).map(|e| Arc::clone(&e.model))
    }

    /// The challenger.
    pub fn challenger(&self) -> Option<Arc<ServedModel>> {
        self.challenger.as_ref().map(|e| Arc::clone(&e.model))
    }

    fn push(&mut self, entry: Entry, keep: usize) {
        self.entries.push(entry);
        let keep = keep.max(1);
        // Rolled-back versions go first (they were turned down), then the oldest.
        while self.entries.len() > keep {
            let last = self.entries.len() - 1;
            let drop = self.entries[..last]
                .iter()
                .position(|e| e.rolled_back)
                .unwrap_or(0);
            self.entries.remove(drop);
        }
        self.current = self.entries.len() - 1;
    }

    /// Serves `model` (from the message at `origin`), keeping at most `keep` versions.
    pub fn install(&mut self, model: Arc<ServedModel>, origin: Origin, keep: usize) {
        self.push(
            Entry {
                model,
                origin,
                rolled_back: false,
            },
            keep,
        );
    }

    /// Scores `model` in shadow, replacing any earlier challenger.
    pub fn set_challenger(&mut self, model: Arc<ServedModel>, origin: Origin) {
        self.challenger = Some(Entry {
            model,
            origin,
            rolled_back: false,
        });
    }

    /// Serves the newest older version not rolled back and returns it; with none, an error
    /// and the serving version stays.
    pub fn rollback(&mut self, data_type: &str) -> Result<Arc<ServedModel>> {
        let Some(current) = self.entries.get(self.current) else {
            return Err(Error::UnknownDataType {
                data_type: data_type.to_string(),
            });
        };
        let Some(target) = (0..self.current)
            .rev()
            .find(|i| !self.entries[*i].rolled_back)
        else {
            return Err(Error::NoPreviousVersion {
                data_type: data_type.to_string(),
                current: current.model.version.clone(),
            });
        };
        self.entries[self.current].rolled_back = true;
        self.current = target;
        Ok(Arc::clone(&self.entries[target].model))
    }

    /// Serves the challenger (kept as the newest version) and returns it. With `version`, only
    /// if the challenger is that version; `Ok(None)` when that version already serves (a
    /// repeated promote is a no-op).
    pub fn promote(
        &mut self,
        data_type: &str,
        version: Option<&str>,
        keep: usize,
    ) -> Result<Option<Arc<ServedModel>>> {
        let serving = self
            .entries
            .get(self.current)
            .map(|e| e.model.version.as_str());
        if version.is_some() && version == serving && self.challenger.is_none() {
            return Ok(None);
        }
        let Some(challenger) = self.challenger.as_ref() else {
            return Err(Error::NoChallenger {
                data_type: data_type.to_string(),
            });
        };
        if let Some(asked) = version {
            if asked != challenger.model.version {
                if Some(asked) == serving {
                    return Ok(None);
                }
                return Err(Error::NotTheChallenger {
                    data_type: data_type.to_string(),
                    asked: asked.to_string(),
                    challenger: challenger.model.version.clone(),
                });
            }
        }
        let entry = self.challenger.take().ok_or_else(|| Error::NoChallenger {
            data_type: data_type.to_string(),
        })?;
        let model = Arc::clone(&entry.model);
        self.push(entry, keep);
        Ok(Some(model))
    }

    /// What `GET /models/{dataType}/versions` answers.
    pub fn report(&self, data_type: &str, keep: usize) -> VersionsReport {
        let versions = self
            .entries
            .iter()
            .enumerate()
            .rev()
            .map(|(i, e)| {
                let status = if i == self.current {
                    VersionStatus::Serving
                } else if i > self.current || e.rolled_back {
                    VersionStatus::RolledBack
                } else {
                    VersionStatus::Previous
                };
                e.info(status)
            })
            .collect();
        VersionsReport {
            data_type: data_type.to_string(),
            keep,
            serving: self.serving().map(|m| m.version.clone()),
            challenger: self
                .challenger
                .as_ref()
                .map(|e| e.info(VersionStatus::Challenger)),
            versions,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A served model of `data_type` with version `0:<offset>` (the linear regression PMML).
    pub(crate) fn served(data_type: &str, offset: i64) -> Arc<ServedModel> {
        let pmml = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/winequalityLinearRegression.pmml"
        ))
        .expect("model file");
        let model =
            ks_models::Model::from_bytes(ks_models::ModelType::Pmml, &pmml).expect("builds");
        Arc::new(ServedModel::new(
            data_type,
            &format!("m{offset}"),
            "",
            &format!("0:{offset}"),
            offset,
            model,
        ))
    }

    fn install(h: &mut History, offset: i64, keep: usize) {
        h.install(served("wine", offset), Origin::new("t", 0, offset), keep);
    }

    fn statuses(h: &History) -> Vec<(String, VersionStatus)> {
        h.report("wine", 3)
            .versions
            .into_iter()
            .map(|v| (v.version, v.status))
            .collect()
    }

    #[test]
    fn only_the_last_k_are_kept_and_rollback_walks_back_through_them() {
        let mut h = History::default();
        for o in 1..=4 {
            install(&mut h, o, 3);
        }
        assert_eq!(h.report("wine", 3).versions.len(), 3);
        assert_eq!(
            h.rollback("wine").map(|m| m.version.clone()).ok(),
            Some("0:3".into())
        );
        assert_eq!(
            h.rollback("wine").map(|m| m.version.clone()).ok(),
            Some("0:2".into())
        );
        // 0:1 was dropped (K = 3): nothing older, 0:2 keeps serving.
        assert!(matches!(
            h.rollback("wine"),
            Err(Error::NoPreviousVersion { current, .. }) if current == "0:2"
        ));
        assert_eq!(h.serving().map(|m| m.version.clone()), Some("0:2".into()));
        use VersionStatus::*;
        assert_eq!(
            statuses(&h),
            vec![
                ("0:4".into(), RolledBack),
                ("0:3".into(), RolledBack),
                ("0:2".into(), Serving)
            ]
        );
        // A new model serves and the rolled-back ones are not rollback targets.
        install(&mut h, 5, 3);
        assert_eq!(
            h.rollback("wine").map(|m| m.version.clone()).ok(),
            Some("0:2".into())
        );
    }

    #[test]
    fn promote_serves_the_challenger_and_rollback_brings_the_champion_back() {
        let mut h = History::default();
        install(&mut h, 1, 3);
        assert!(matches!(
            h.promote("wine", None, 3),
            Err(Error::NoChallenger { .. })
        ));
        h.set_challenger(served("wine", 2), Origin::new("t", 0, 2));
        assert!(matches!(
            h.promote("wine", Some("0:7"), 3),
            Err(Error::NotTheChallenger { .. })
        ));
        let promoted = h.promote("wine", Some("0:2"), 3).ok().flatten();
        assert_eq!(promoted.map(|m| m.version.clone()), Some("0:2".into()));
        assert!(h.challenger().is_none());
        // The same promote again (another instance's) is a no-op.
        assert!(matches!(h.promote("wine", Some("0:2"), 3), Ok(None)));
        assert_eq!(
            h.rollback("wine").map(|m| m.version.clone()).ok(),
            Some("0:1".into())
        );
    }

    #[test]
    fn an_empty_history_has_nothing_to_roll_back() {
        assert!(matches!(
            History::default().rollback("beer"),
            Err(Error::UnknownDataType { .. })
        ));
    }
}
