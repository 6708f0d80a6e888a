//! Built models per data type. A model is built on the builder thread (building a large model
//! takes seconds and must not stall a poll loop) and installed whole: a scoring thread sees the
//! previous model or the new one, never a half-built one. A model that fails to build is
//! reported to the errors topic and the previous one keeps serving.

use crate::queries::ModelInfo;
use ks_models::{Model, ModelType};
use ks_proto::WINE_FEATURES;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, RwLock};

/// A model ready to score.
pub struct ServedModel {
    pub data_type: String,
    pub name: String,
    pub description: String,
    pub model_type: ModelType,
    /// `<partition>:<offset>` of the model message: stable across restarts.
    pub version: String,
    pub loaded_ms: i64,
    pub model: Model,
    /// The model takes exactly the 11 wine features in CSV order: score rows directly.
    pub wine_row: bool,
}

impl ServedModel {
    pub fn new(
        data_type: &str,
        name: &str,
        description: &str,
        version: &str,
        loaded_ms: i64,
        model: Model,
    ) -> ServedModel {
        let wine_row = model
            .input_fields()
            .iter()
            .map(String::as_str)
            .eq(WINE_FEATURES.iter().copied());
        ServedModel {
            data_type: data_type.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            model_type: model.model_type(),
            version: version.to_string(),
            loaded_ms,
            model,
            wine_row,
        }
    }

    /// Scores one wine record (the numeric fast path when the inputs are the 11 features in
    /// order) and says how long it took.
    pub fn score_wine(
        &self,
        wine: &ks_proto::WineRecord,
    ) -> (
        ks_models::Result<ks_models::Prediction>,
        std::time::Duration,
    ) {
        let started = std::time::Instant::now();
        let scored = if self.wine_row {
            self.model.score_row(&wine.features())
        } else {
            self.model.score(&ks_models::Record::from_wine(wine))
        };
        (scored, started.elapsed())
    }

    /// Statistics for this model starting to serve at `since` (ms).
    pub fn fresh_stats(&self, since: i64) -> crate::stats::ServingStats {
        crate::stats::ServingStats::new(
            &self.name,
            &self.description,
            self.model_type.as_str_name(),
            &self.version,
            since,
        )
    }

    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            data_type: self.data_type.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            model_type: self.model_type.as_str_name().to_string(),
            version: self.version.clone(),
            loaded: self.loaded_ms,
            inputs: self.model.input_fields().to_vec(),
            outputs: self.model.output_fields().to_vec(),
        }
    }
}

/// The newest built model of every data type, shared by every task of the process.
#[derive(Default)]
pub struct ModelRegistry {
    models: RwLock<HashMap<String, Arc<ServedModel>>>,
    loaded: AtomicU64,
}

impl ModelRegistry {
    pub fn get(&self, data_type: &str) -> Option<Arc<ServedModel>> {
        self.models.read().ok()?.get(data_type).cloned()
    }

    pub fn install(&self, model: ServedModel) {
        if let Ok(mut m) = self.models.write() {
            m.insert(model.data_type.clone(), Arc::new(model));
            self.loaded.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn all(&self) -> Vec<Arc<ServedModel>> {
        let mut v: Vec<Arc<ServedModel>> = self
            .models
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
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
    pub data_type: String,
    pub name: String,
    pub description: String,
    pub model_type: ModelType,
    pub version: String,
    pub bytes: Vec<u8>,
    /// What to name when reporting a failure (topic, partition, offset).
    pub origin: (String, i32, i64),
}

/// Where a failed build is reported.
pub trait BuildFailures: Send + Sync {
    fn failed(&self, job: &BuildJob, reason: &str);
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
        match Model::from_bytes(job.model_type, &job.bytes) {
            Ok(model) => {
                log::info!(
                    "model {} for {} ({}) built in {} ms",
                    job.name,
                    job.data_type,
                    job.version,
                    started.elapsed().as_millis()
                );
                registry.install(ServedModel::new(
                    &job.data_type,
                    &job.name,
                    &job.description,
                    &job.version,
                    now_ms(),
                    model,
                ));
            }
            Err(e) => {
                log::warn!("model {} for {} rejected: {e}", job.name, job.data_type);
                failures.failed(&job, &e.to_string());
            }
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
