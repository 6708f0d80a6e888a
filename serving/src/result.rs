//! [`ScoreResult`]: one result on the results topic, the same JSON from both servers, which
//! write it per record with [`ResultJson`] (no owned strings, same bytes).

use crate::{Origin, ServedModel};
use ks_models::{Prediction, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One result on the results topic (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    /// The record's data type.
    #[serde(rename = "dataType")]
    pub data_type: String,
    /// The model's name; `None` when no model serves this data type yet.
    pub model: Option<String>,
    /// The model's version (`<partition>:<offset>` of its message).
    pub model_version: Option<String>,
    /// A number for regression, the class label for classification, `null` without a model.
    pub prediction: serde_json::Value,
    /// Class probabilities, when the model gives them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub probabilities: BTreeMap<String, f64>,
    /// Scoring time, µs.
    pub duration_us: Option<f64>,
    /// The data record's topic.
    pub topic: String,
    /// The data record's partition.
    pub partition: i32,
    /// The data record's offset.
    pub offset: i64,
    /// Why there is no prediction (`"no model"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the challenger scored in shadow predicted, when one is set (never the served
    /// prediction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenger: Option<ShadowPrediction>,
}

/// A challenger's prediction for a record, beside the served one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowPrediction {
    /// The challenger's name.
    pub model: String,
    /// Its version (`<partition>:<offset>` of its message).
    pub model_version: String,
    /// Its prediction (`null` when it failed).
    pub prediction: serde_json::Value,
    /// Its class probabilities, when it gives them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub probabilities: BTreeMap<String, f64>,
    /// Its scoring time, µs.
    pub duration_us: f64,
    /// Why it could not score the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ShadowPrediction {
    /// What `model` predicted (or why it could not) in `micros` µs.
    pub fn of(
        model: &ServedModel,
        scored: &ks_models::Result<ks_models::Prediction>,
        micros: f64,
    ) -> ShadowPrediction {
        let (prediction, probabilities, error) = match scored {
            Ok(p) => (
                value_json(p.value()),
                p.probabilities().map(|(l, p)| (l.to_string(), p)).collect(),
                None,
            ),
            Err(e) => (
                serde_json::Value::Null,
                BTreeMap::new(),
                Some(e.to_string()),
            ),
        };
        ShadowPrediction {
            model: model.name.clone(),
            model_version: model.version.clone(),
            prediction,
            probabilities,
            duration_us: micros,
            error,
        }
    }
}

impl ScoreResult {
    /// A result for a record of `data_type` from `origin`, with nothing scored yet.
    pub fn unscored(data_type: &str, origin: &Origin) -> ScoreResult {
        ScoreResult {
            data_type: data_type.to_string(),
            model: None,
            model_version: None,
            prediction: serde_json::Value::Null,
            probabilities: BTreeMap::new(),
            duration_us: None,
            topic: origin.topic.clone(),
            partition: origin.partition,
            offset: origin.offset,
            error: None,
            challenger: None,
        }
    }

    /// Fills in what `model` predicted and how long it took (µs).
    pub fn scored_by(
        &mut self,
        model: &ServedModel,
        prediction: &ks_models::Prediction,
        micros: f64,
    ) {
        self.model = Some(model.name.clone());
        self.model_version = Some(model.version.clone());
        self.prediction = value_json(prediction.value());
        self.probabilities = prediction
            .probabilities()
            .map(|(l, p)| (l.to_string(), p))
            .collect();
        self.duration_us = Some(micros);
    }
}

/// A result described by borrowed parts and written straight to JSON: the bytes
/// `serde_json::to_vec` gives for the [`ScoreResult`] of the same fields (tests hold them
/// equal), without building that struct's owned strings and with the field names written as
/// constants. Both servers write one per record, so this is on the hot path.
#[derive(Clone, Copy)]
pub struct ResultJson<'a> {
    /// The record's data type.
    pub data_type: &'a str,
    /// The data record's topic, partition and offset.
    pub origin: (&'a str, i32, i64),
    /// The model that scored the record, its prediction and the scoring time (µs); `None`
    /// when no model serves the data type.
    pub scored: Option<(&'a ServedModel, &'a ks_models::Prediction, f64)>,
    /// Why there is no prediction (`"no model"`).
    pub error: Option<&'a str>,
    /// What a challenger predicted in shadow.
    pub challenger: Option<&'a ShadowPrediction>,
}

impl<'a> ResultJson<'a> {
    /// An unscored result of a record of `data_type` from `topic`, `partition`, `offset`.
    pub fn new(data_type: &'a str, topic: &'a str, partition: i32, offset: i64) -> ResultJson<'a> {
        ResultJson {
            data_type,
            origin: (topic, partition, offset),
            scored: None,
            error: None,
            challenger: None,
        }
    }

    /// Appends the JSON to `out` (nothing is written over: a caller may reuse a buffer).
    pub fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"dataType\":");
        serde_json::to_writer(&mut *out, self.data_type)?;
        match self.scored {
            None => out.extend_from_slice(
                b",\"model\":null,\"model_version\":null,\"prediction\":null,\"duration_us\":null",
            ),
            Some((model, prediction, micros)) => {
                out.extend_from_slice(b",\"model\":");
                serde_json::to_writer(&mut *out, &model.name)?;
                out.extend_from_slice(b",\"model_version\":");
                serde_json::to_writer(&mut *out, &model.version)?;
                out.extend_from_slice(b",\"prediction\":");
                write_value(out, prediction.value())?;
                if prediction.probabilities().next().is_some() {
                    out.extend_from_slice(b",\"probabilities\":");
                    write_probabilities(out, prediction)?;
                }
                out.extend_from_slice(b",\"duration_us\":");
                serde_json::to_writer(&mut *out, &micros)?;
            }
        }
        let (topic, partition, offset) = self.origin;
        out.extend_from_slice(b",\"topic\":");
        serde_json::to_writer(&mut *out, topic)?;
        out.extend_from_slice(b",\"partition\":");
        serde_json::to_writer(&mut *out, &partition)?;
        out.extend_from_slice(b",\"offset\":");
        serde_json::to_writer(&mut *out, &offset)?;
        if let Some(error) = self.error {
            out.extend_from_slice(b",\"error\":");
            serde_json::to_writer(&mut *out, error)?;
        }
        if let Some(challenger) = self.challenger {
            out.extend_from_slice(b",\"challenger\":");
            serde_json::to_writer(&mut *out, challenger)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// The JSON in a buffer of its own, sized for a typical result (a classifier's
    /// probabilities take some 30 bytes a class: sized for them, the buffer never grows).
    pub fn to_vec(&self) -> serde_json::Result<Vec<u8>> {
        let classes = self.scored.map_or(0, |(_, p, _)| p.probabilities().count());
        let mut out = Vec::with_capacity(256 + 32 * classes);
        self.write(&mut out)?;
        Ok(out)
    }
}

/// The class probabilities as the struct's `BTreeMap` has them: sorted by label, each label
/// once (the last of a repeated one). Labels that come sorted and unique already (a graph's
/// classes) are written as they come; others (a PMML model lists its classes in any order)
/// are sorted in a short list first. Building the map cost as much as the rest of the result.
fn write_probabilities(out: &mut Vec<u8>, prediction: &Prediction) -> serde_json::Result<()> {
    let mut labels = prediction.probabilities().map(|(label, _)| label);
    let mut sorted = true;
    if let Some(mut last) = labels.next() {
        for label in labels {
            if label <= last {
                sorted = false;
                break;
            }
            last = label;
        }
    }
    if sorted {
        return write_map(out, prediction.probabilities());
    }
    let mut by_label: Vec<(&str, f64)> = prediction.probabilities().collect();
    // Stable, so a repeated label's entries keep their order; the last one stays, as a map's
    // insert would keep it.
    by_label.sort_by(|a, b| a.0.cmp(b.0));
    by_label.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    write_map(out, by_label.into_iter())
}

/// `{"label":p,...}` in the order given, as serde_json writes a map.
fn write_map<'a>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'a str, f64)>,
) -> serde_json::Result<()> {
    out.push(b'{');
    for (i, (label, p)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, label)?;
        out.push(b':');
        serde_json::to_writer(&mut *out, &p)?;
    }
    out.push(b'}');
    Ok(())
}

/// A model output value as JSON, as [`value_json`] gives it.
fn write_value(out: &mut Vec<u8>, v: &Value) -> serde_json::Result<()> {
    match v {
        Value::Number(f) if f.is_finite() => serde_json::to_writer(out, f),
        Value::Text(s) => serde_json::to_writer(out, &**s),
        _ => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// A model output value as JSON: `null` for missing (and non-finite numbers).
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Missing => serde_json::Value::Null,
        Value::Number(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Text(s) => serde_json::Value::String(s.to_string()),
    }
}
