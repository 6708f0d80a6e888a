//! Built models per data type. A model is built on the builder thread (building a large model
//! takes seconds and must not stall a poll loop) and installed whole: a scoring thread sees the
//! previous model or the new one, never a half-built one. A model that fails to build is
//! reported (to the errors topic) and the previous one keeps serving.
//!
//! The map is a [`DashMap`]: readers on the stream threads and HTTP handlers never wait on the
//! builder for long, and a panicking thread cannot poison it.

use crate::descriptor::{ModelUpdate, Origin};
use crate::{FailureKind, FailureReport, ServedModel};
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// The newest built model of every data type, shared by every task of the process.
#[derive(Default)]
pub struct ModelRegistry {
    models: DashMap<String, Arc<ServedModel>>,
    loaded: AtomicU64,
}

impl ModelRegistry {
    /// The current model of `data_type`.
    pub fn get(&self, data_type: &str) -> Option<Arc<ServedModel>> {
        self.models.get(data_type).map(|m| Arc::clone(&m))
    }

    /// Makes `model` its data type's current model.
    pub fn install(&self, model: ServedModel) {
        self.models.insert(model.data_type.clone(), Arc::new(model));
        self.loaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Every current model, by data type.
    pub fn all(&self) -> Vec<Arc<ServedModel>> {
        let mut v: Vec<Arc<ServedModel>> = self.models.iter().map(|m| Arc::clone(&m)).collect();
        v.sort_by(|a, b| a.data_type.cmp(&b.data_type));
        v
    }

    /// Models installed since start.
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
) -> std::io::Result<(SyncSender<BuildJob>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    let handle = std::thread::Builder::new()
        .name("ks-model-builder".into())
        .spawn(move || build_loop(rx, registry, failures))?;
    Ok((tx, handle))
}

fn build_loop(
    rx: Receiver<BuildJob>,
    registry: Arc<ModelRegistry>,
    failures: Arc<dyn BuildFailures>,
) {
    while let Ok(job) = rx.recv() {
        let started = std::time::Instant::now();
        let m = &job.update.meta;
        match job.update.build(crate::now_ms()) {
            Ok(model) => {
                log::info!(
                    "model {} for {} ({}) built in {} ms",
                    m.name,
                    m.data_type,
                    m.version,
                    started.elapsed().as_millis()
                );
                registry.install(model);
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
}
