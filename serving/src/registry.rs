//! Built models per data type. A model is built on the builder thread (building a large model
//! takes seconds and must not stall a poll loop) and installed whole: a scoring thread sees the
//! previous model or the new one, never a half-built one. A model that fails to build is
//! reported (to the errors topic) and the previous one keeps serving.
//!
//! Beside the serving model the registry keeps each data type's last K versions
//! ([`crate::versions`]) for rollback, the challenger scored in shadow, its agreement figures
//! ([`crate::challenger`]) and the input drift ([`crate::drift`]). Control messages go through
//! the builder's queue like models, so a rollback right after a model applies after that model
//! is built, in topic order.
//!
//! The maps are [`DashMap`]s: readers on the stream threads and HTTP handlers never wait on the
//! builder for long, and a panicking thread cannot poison them.

use crate::challenger::{ChallengerReport, PromotePolicy, ShadowBoard};
use crate::control::{Action, Control, Role};
use crate::descriptor::{ModelUpdate, Origin};
use crate::drift::{DriftBoard, DriftOptions, DriftReport};
use crate::versions::{History, VersionsReport};
use crate::{Error, FailureKind, FailureReport, Result, ServedModel};
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// Default of [`LifecycleOptions::keep_versions`].
pub const DEFAULT_KEEP_VERSIONS: usize = 3;

/// How much of each data type's model lifecycle the registry keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifecycleOptions {
    /// Versions kept per data type (the serving one included; at least 1).
    pub keep_versions: usize,
    /// Promote a challenger without an operator when it passes this policy.
    pub promote_policy: Option<PromotePolicy>,
    /// Sizes of the drift baseline and window.
    pub drift: DriftOptions,
}

impl Default for LifecycleOptions {
    fn default() -> LifecycleOptions {
        LifecycleOptions {
            keep_versions: DEFAULT_KEEP_VERSIONS,
            promote_policy: None,
            drift: DriftOptions::default(),
        }
    }
}

/// The serving model of every data type and its lifecycle, shared by every task of the process.
pub struct ModelRegistry {
    models: DashMap<String, Arc<ServedModel>>,
    challengers: DashMap<String, Arc<ServedModel>>,
    /// How many entries `challengers` has: the per-record path skips its lookup at 0.
    challenger_count: AtomicUsize,
    histories: DashMap<String, History>,
    keep: usize,
    shadow: ShadowBoard,
    drift: DriftBoard,
    loaded: AtomicU64,
}

impl Default for ModelRegistry {
    fn default() -> ModelRegistry {
        ModelRegistry::new(LifecycleOptions::default())
    }
}

impl ModelRegistry {
    /// An empty registry keeping what `options` say.
    pub fn new(options: LifecycleOptions) -> ModelRegistry {
        ModelRegistry {
            models: DashMap::new(),
            challengers: DashMap::new(),
            challenger_count: AtomicUsize::new(0),
            histories: DashMap::new(),
            keep: options.keep_versions.max(1),
            shadow: ShadowBoard::new(options.promote_policy),
            drift: DriftBoard::new(options.drift),
            loaded: AtomicU64::new(0),
        }
    }

    /// The current model of `data_type`.
    pub fn get(&self, data_type: &str) -> Option<Arc<ServedModel>> {
        self.models.get(data_type).map(|m| Arc::clone(&m))
    }

    /// The challenger of `data_type`, scored in shadow.
    pub fn challenger(&self, data_type: &str) -> Option<Arc<ServedModel>> {
        if self.challenger_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.challengers.get(data_type).map(|m| Arc::clone(&m))
    }

    /// Makes `model` (from the message at `origin`) its data type's current model.
    pub fn install(&self, model: ServedModel, origin: Origin) {
        let model = Arc::new(model);
        let data_type = model.data_type.clone();
        let mut h = self.histories.entry(data_type.clone()).or_default();
        h.install(Arc::clone(&model), origin, self.keep);
        self.models.insert(data_type, model);
        self.loaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes `model` its data type's challenger (replacing any earlier one).
    pub fn install_challenger(&self, model: ServedModel, origin: Origin) {
        let model = Arc::new(model);
        let data_type = model.data_type.clone();
        let mut h = self.histories.entry(data_type.clone()).or_default();
        h.set_challenger(Arc::clone(&model), origin);
        self.challengers.insert(data_type, model);
        self.challenger_count
            .store(self.challengers.len(), Ordering::Relaxed);
        self.loaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies a control message; on an error nothing changes. Returns the model now serving,
    /// `None` for a promote that was already applied.
    pub fn apply(&self, control: &Control) -> Result<Option<Arc<ServedModel>>> {
        let data_type = control.data_type.as_str();
        let Some(mut h) = self.histories.get_mut(data_type) else {
            return Err(Error::UnknownDataType {
                data_type: data_type.to_string(),
            });
        };
        let serving = match &control.action {
            Action::Rollback => Some(h.rollback(data_type)?),
            Action::Promote { version } => {
                let promoted = h.promote(data_type, version.as_deref(), self.keep)?;
                if promoted.is_some() {
                    self.challengers.remove(data_type);
                    self.challenger_count
                        .store(self.challengers.len(), Ordering::Relaxed);
                }
                promoted
            }
        };
        if let Some(m) = &serving {
            self.models.insert(data_type.to_string(), Arc::clone(m));
        }
        Ok(serving)
    }

    /// Whether a serving model scores batches faster than rows one by one
    /// ([`ks_models::Model::prefers_batches`]): when none does, there is nothing to prepare.
    pub fn any_batches(&self) -> bool {
        self.models.iter().any(|m| m.model.prefers_batches())
    }

    /// Every current model, by data type.
    pub fn all(&self) -> Vec<Arc<ServedModel>> {
        let mut v: Vec<Arc<ServedModel>> = self.models.iter().map(|m| Arc::clone(&m)).collect();
        v.sort_by(|a, b| a.data_type.cmp(&b.data_type));
        v
    }

    /// `data_type`'s kept versions, when any model of it was installed.
    pub fn versions(&self, data_type: &str) -> Option<VersionsReport> {
        self.histories
            .get(data_type)
            .map(|h| h.report(data_type, self.keep))
    }

    /// The agreement figures of every data type's challenger.
    pub fn shadow(&self) -> &ShadowBoard {
        &self.shadow
    }

    /// `data_type`'s latest champion/challenger figures.
    pub fn challenger_report(&self, data_type: &str) -> Option<ChallengerReport> {
        let active = self.challenger(data_type);
        self.shadow
            .report(data_type, active.as_ref().map(|m| m.version.as_str()))
    }

    /// Every data type's champion/challenger figures.
    pub fn challenger_reports(&self) -> Vec<ChallengerReport> {
        self.shadow
            .data_types()
            .iter()
            .filter_map(|d| self.challenger_report(d))
            .collect()
    }

    /// The input drift of every data type.
    pub fn drift(&self) -> &DriftBoard {
        &self.drift
    }

    /// Every data type's drift.
    pub fn drift_reports(&self) -> Vec<DriftReport> {
        self.drift
            .data_types()
            .iter()
            .filter_map(|d| self.drift.report(d))
            .collect()
    }

    /// Models installed since start (challengers included).
    pub fn loaded(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed)
    }
}

/// A model to build.
pub struct BuildJob {
    /// The decoded model message.
    pub update: ModelUpdate,
    /// Where the message came from, named when reporting a failure.
    pub origin: Origin,
    /// Serve it or score it in shadow.
    pub role: Role,
}

/// What the builder thread is given, in model-topic order.
pub enum Job {
    /// Build a model and install it.
    Build(BuildJob),
    /// Apply a control message.
    Control(Control),
}

/// Where a failed model (or record) is reported.
pub trait BuildFailures: Send + Sync {
    /// Reports one failure.
    fn failed(&self, report: &FailureReport);
}

/// Starts the builder thread; jobs queue up to `capacity` (senders wait when full, which slows
/// the model topic's reader, not the data).
pub fn start_builder(
    registry: Arc<ModelRegistry>,
    failures: Arc<dyn BuildFailures>,
    capacity: usize,
) -> std::io::Result<(SyncSender<Job>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    let handle = std::thread::Builder::new()
        .name("ks-model-builder".into())
        .spawn(move || build_loop(rx, registry, failures))?;
    Ok((tx, handle))
}

fn build_loop(rx: Receiver<Job>, registry: Arc<ModelRegistry>, failures: Arc<dyn BuildFailures>) {
    while let Ok(job) = rx.recv() {
        match job {
            Job::Build(job) => build(job, &registry, &*failures),
            Job::Control(control) => match registry.apply(&control) {
                Ok(Some(m)) => log::info!(
                    "{} of {}: serving {} ({})",
                    control.action.as_str(),
                    control.data_type,
                    m.name,
                    m.version
                ),
                Ok(None) => log::info!(
                    "{} of {} from {}: already applied",
                    control.action.as_str(),
                    control.data_type,
                    control.origin.version()
                ),
                Err(e) => {
                    log::warn!(
                        "{} of {} rejected: {e}",
                        control.action.as_str(),
                        control.data_type
                    );
                    failures.failed(&FailureReport {
                        kind: FailureKind::Control,
                        origin: control.origin.clone(),
                        data_type: control.data_type.clone(),
                        name: String::new(),
                        reason: e.to_string(),
                    });
                }
            },
        }
    }
}

fn build(job: BuildJob, registry: &ModelRegistry, failures: &dyn BuildFailures) {
    let started = std::time::Instant::now();
    let m = &job.update.meta;
    match job.update.build(crate::now_ms()) {
        Ok(model) => {
            log::info!(
                "model {} for {} ({}, {:?}) built in {} ms",
                m.name,
                m.data_type,
                m.version,
                job.role,
                started.elapsed().as_millis()
            );
            match job.role {
                Role::Champion => registry.install(model, job.origin),
                Role::Challenger => registry.install_challenger(model, job.origin),
            }
        }
        Err(e) => {
            log::warn!("model {} for {} rejected: {e}", m.name, m.data_type);
            failures.failed(&FailureReport {
                kind: FailureKind::Model,
                origin: job.origin.clone(),
                data_type: m.data_type.clone(),
                name: m.name.clone(),
                // The model library's own words, as before the decoder was shared.
                reason: match &e {
                    crate::Error::Build { source, .. } => source.to_string(),
                    other => other.to_string(),
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::tests::served;

    fn own(m: Arc<ServedModel>) -> ServedModel {
        let pmml = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/winequalityLinearRegression.pmml"
        ))
        .expect("model file");
        let model =
            ks_models::Model::from_bytes(ks_models::ModelType::Pmml, &pmml).expect("builds");
        ServedModel::new(&m.data_type, &m.name, "", &m.version, m.loaded_ms, model)
    }

    fn control(action: Action) -> Control {
        Control {
            data_type: "wine".into(),
            action,
            origin: Origin::new("t", 0, 99),
        }
    }

    #[test]
    fn rollback_and_promote_change_what_serves_and_errors_change_nothing() {
        let r = ModelRegistry::default();
        assert!(matches!(
            r.apply(&control(Action::Rollback)),
            Err(Error::UnknownDataType { .. })
        ));
        r.install(own(served("wine", 1)), Origin::new("t", 0, 1));
        assert!(matches!(
            r.apply(&control(Action::Rollback)),
            Err(Error::NoPreviousVersion { .. })
        ));
        r.install(own(served("wine", 2)), Origin::new("t", 0, 2));
        assert!(r.apply(&control(Action::Rollback)).is_ok());
        assert_eq!(r.get("wine").map(|m| m.version.clone()), Some("0:1".into()));
        assert!(r.challenger("wine").is_none());
        r.install_challenger(own(served("wine", 3)), Origin::new("t", 0, 3));
        assert_eq!(r.get("wine").map(|m| m.version.clone()), Some("0:1".into()));
        assert_eq!(
            r.challenger("wine").map(|m| m.version.clone()),
            Some("0:3".into())
        );
        assert!(r.apply(&control(Action::Promote { version: None })).is_ok());
        assert_eq!(r.get("wine").map(|m| m.version.clone()), Some("0:3".into()));
        assert!(r.challenger("wine").is_none());
        let v = r.versions("wine").expect("versions");
        assert_eq!(v.serving.as_deref(), Some("0:3"));
        assert_eq!(v.versions.len(), 3);
        assert_eq!(r.loaded(), 3);
    }
}
