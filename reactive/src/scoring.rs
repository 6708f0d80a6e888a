//! Scoring one record with the current model of its data type: shared by both modes, so the
//! stage and the actors produce the same results as ks-server (ks-topologies' `ScoreResult`).

use crate::model::Origin;
use ks_proto::{Message, WineRecord};
use ks_topologies::registry::ServedModel;
use ks_topologies::serving::ScoreResult;
use ks_topologies::stats::ServingStats;
use std::collections::BTreeMap;

/// Which topic an [`Output`] goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Results,
    Errors,
}

/// One message to write, and the data record it answers (whose offset is stored once written).
#[derive(Debug, Clone)]
pub struct Output {
    pub sink: Sink,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub origin: Origin,
}

impl Output {
    /// A bad input record, for the errors topic (same JSON shape as ks-server's).
    pub fn error(kind: &str, data_type: &str, reason: &str, origin: Origin) -> Output {
        let payload = serde_json::json!({
            "kind": kind,
            "dataType": data_type,
            "error": reason,
            "topic": origin.topic,
            "partition": origin.partition,
            "offset": origin.offset,
        })
        .to_string()
        .into_bytes();
        Output {
            sink: Sink::Errors,
            key: (!data_type.is_empty()).then(|| data_type.as_bytes().to_vec()),
            payload,
            origin,
        }
    }

    fn result(result: &ScoreResult, origin: Origin) -> Output {
        match serde_json::to_vec(result) {
            Ok(payload) => Output {
                sink: Sink::Results,
                key: Some(result.data_type.as_bytes().to_vec()),
                payload,
                origin,
            },
            Err(e) => Output::error("data", &result.data_type, &e.to_string(), origin),
        }
    }
}

/// Decodes a data record; a bad one becomes its errors-topic output.
pub fn decode(payload: Option<&[u8]>, origin: &Origin) -> Result<WineRecord, Output> {
    let reason = match payload.map(WineRecord::decode) {
        None => "an empty data record".to_string(),
        Some(Err(e)) => format!("not a WineRecord: {e}"),
        Some(Ok(w)) if w.data_type.is_empty() => "the record has no dataType".to_string(),
        Some(Ok(w)) => return Ok(w),
    };
    Err(Output::error("data", "", &reason, origin.clone()))
}

/// Scores `wine` with `model` (if any), counting into `stats`.
pub fn score(
    model: Option<&ServedModel>,
    stats: Option<&mut ServingStats>,
    wine: &WineRecord,
    origin: Origin,
) -> Output {
    let mut result = ScoreResult {
        data_type: wine.data_type.clone(),
        model: None,
        model_version: None,
        prediction: serde_json::Value::Null,
        probabilities: BTreeMap::new(),
        duration_us: None,
        topic: origin.topic.clone(),
        partition: origin.partition,
        offset: origin.offset,
        error: None,
    };
    let Some(m) = model else {
        result.error = Some("no model".into());
        return Output::result(&result, origin);
    };
    let (scored, elapsed) = m.score_wine(wine);
    let micros = elapsed.as_nanos() as f64 / 1000.0;
    let prediction = match scored {
        Ok(p) => p,
        Err(e) => {
            let reason = format!("model {} cannot score this record: {e}", m.name);
            return Output::error("data", &wine.data_type, &reason, origin);
        }
    };
    if let Some(s) = stats {
        s.record(micros);
    }
    result.scored_by(m, &prediction, micros);
    Output::result(&result, origin)
}

/// Fresh statistics for a model that starts serving now.
pub fn fresh_stats(m: &ServedModel) -> ServingStats {
    m.fresh_stats(crate::model::now_ms())
}
