//! [`ServedModel`]: a built model ready to score, and [`ModelInfo`], what `/models` says of it.

use crate::ServingStats;
use ks_models::{Model, ModelType};
use ks_proto::{WineRecord, WINE_FEATURES};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A model ready to score.
pub struct ServedModel {
    /// The data type it serves.
    pub data_type: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// PMML or TensorFlow.
    pub model_type: ModelType,
    /// `<partition>:<offset>` of the model message: stable across restarts.
    pub version: String,
    /// When this process finished building it (ms since the epoch).
    pub loaded_ms: i64,
    /// The model.
    pub model: Model,
    /// For each of the model's inputs, its position among the 11 wine features, when every
    /// input is one of them: a record is then scored by position ([`Model::score_row`]), bound
    /// once here instead of a map of named fields built per record. `None`: scored by name.
    pub wine_columns: Option<Vec<usize>>,
}

/// Where each of the model's inputs is among the wine features, if all are (and there are not
/// more of them than features): the model bound to the wine schema with no input missing.
fn wine_columns(model: &Model) -> Option<Vec<usize>> {
    let bound = model.bind(&WINE_FEATURES);
    if bound.columns().len() > WINE_FEATURES.len() {
        return None;
    }
    bound.columns().iter().copied().collect()
}

/// A data type's current model, as `/models` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The data type it serves.
    pub data_type: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// `PMML` or `TENSORFLOW`.
    pub model_type: String,
    /// `<partition>:<offset>` of the model message.
    pub version: String,
    /// When this instance finished building it (ms since the epoch).
    pub loaded: i64,
    /// The model's input fields.
    pub inputs: Vec<String>,
    /// The model's output fields.
    pub outputs: Vec<String>,
}

impl ServedModel {
    /// A model for `data_type` built from the model message `version`, at `loaded_ms`.
    pub fn new(
        data_type: &str,
        name: &str,
        description: &str,
        version: &str,
        loaded_ms: i64,
        model: Model,
    ) -> ServedModel {
        let wine_columns = wine_columns(&model);
        ServedModel {
            data_type: data_type.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            model_type: model.model_type(),
            version: version.to_string(),
            loaded_ms,
            model,
            wine_columns,
        }
    }

    /// Scores one wine record (by position when the model's inputs are wine features, see
    /// [`ServedModel::wine_columns`]) and says how long it took.
    pub fn score_wine(
        &self,
        wine: &WineRecord,
    ) -> (ks_models::Result<ks_models::Prediction>, Duration) {
        let started = Instant::now();
        let scored = match &self.wine_columns {
            Some(columns) => {
                let features = wine.features();
                let mut row = [0.0; WINE_FEATURES.len()];
                for (slot, &c) in row.iter_mut().zip(columns) {
                    *slot = features[c];
                }
                self.model.score_row(&row[..columns.len()])
            }
            None => self.model.score(&ks_models::Record::from_wine(wine)),
        };
        (scored, started.elapsed())
    }

    /// Scores wine records together, when the model is faster that way
    /// ([`Model::prefers_batches`]) and reads wine features only: the predictions in order and
    /// the time the batch took. `None` when the model does not batch, for fewer than two
    /// records, or when the batch failed (scored one by one, each record's error is its own).
    pub fn score_wines(
        &self,
        wines: &[&WineRecord],
    ) -> Option<(Vec<ks_models::Prediction>, Duration)> {
        let columns = self.wine_columns.as_ref()?;
        if wines.len() < 2 || !self.model.prefers_batches() {
            return None;
        }
        let started = Instant::now();
        let mut rows = Vec::with_capacity(wines.len() * columns.len());
        for wine in wines {
            let features = wine.features();
            rows.extend(columns.iter().map(|&c| features[c]));
        }
        let predictions = self.model.score_rows(&rows).ok()?;
        (predictions.len() == wines.len()).then(|| (predictions, started.elapsed()))
    }

    /// Statistics for this model starting to serve at `since` (ms).
    pub fn fresh_stats(&self, since: i64) -> ServingStats {
        ServingStats::new(
            &self.name,
            &self.description,
            self.model_type.as_str_name(),
            &self.version,
            since,
        )
    }

    /// What `/models` says of this model.
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
