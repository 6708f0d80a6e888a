//! Scoring one record with the current model of its data type: shared by both modes, so the
//! stage and the actors produce the same results as ks-server (ks-topologies' `ScoreResult`).

use crate::model::Origin;
use ks_proto::{Message, WineRecord};
use ks_serving::{FailureKind, FailureReport, ResultJson, ServedModel, ServingStats};

/// Which topic an [`Output`] goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The results topic.
    Results,
    /// The errors topic.
    Errors,
}

/// One message to write, and the data record it answers (whose offset is stored once written).
#[derive(Debug, Clone)]
pub struct Output {
    /// Which topic.
    pub sink: Sink,
    /// The message key.
    pub key: Option<Vec<u8>>,
    /// The message value.
    pub payload: Vec<u8>,
    /// The data record this answers.
    pub origin: Origin,
    /// Why, for an errors-topic output (what the dashboard lists).
    pub reason: Option<String>,
}

impl Output {
    /// A rejected record or model, for the errors topic (ks-serving's [`FailureReport`], the
    /// same JSON as ks-server's).
    pub fn error(report: FailureReport) -> Output {
        let reason = if report.name.is_empty() {
            format!(
                "{}[{}]@{}: {}",
                report.origin.topic, report.origin.partition, report.origin.offset, report.reason
            )
        } else {
            format!(
                "model {} for {} rejected: {}",
                report.name, report.data_type, report.reason
            )
        };
        Output {
            sink: Sink::Errors,
            key: report.key().map(<[u8]>::to_vec),
            payload: report.to_json().into_bytes(),
            reason: Some(reason),
            origin: report.origin,
        }
    }

    /// A bad data record.
    fn bad_data(data_type: &str, reason: String, origin: Origin) -> Output {
        Output::error(FailureReport {
            kind: FailureKind::Data,
            origin,
            data_type: data_type.to_string(),
            name: String::new(),
            reason,
        })
    }

    /// A result, keyed as its input record was (ks-server's results keep the input's key).
    /// `json` is the result written (see [`ResultJson`]), which borrows from `origin`: written
    /// first, so the origin moves here instead of being copied per record.
    fn result(
        json: serde_json::Result<Vec<u8>>,
        data_type: &str,
        origin: Origin,
        key: Option<Vec<u8>>,
    ) -> Output {
        match json {
            Ok(payload) => Output {
                sink: Sink::Results,
                key,
                payload,
                origin,
                reason: None,
            },
            Err(e) => Output::bad_data(data_type, e.to_string(), origin),
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
    Err(Output::bad_data("", reason, origin.clone()))
}

/// Scores `wine` (read with `key`) with `model` (if any), counting into `stats`.
pub fn score(
    model: Option<&ServedModel>,
    stats: Option<&mut ServingStats>,
    wine: &WineRecord,
    origin: Origin,
    key: Option<Vec<u8>>,
) -> Output {
    let result = ResultJson::new(
        &wine.data_type,
        &origin.topic,
        origin.partition,
        origin.offset,
    );
    let Some(m) = model else {
        let json = ResultJson {
            error: Some("no model"),
            ..result
        }
        .to_vec();
        return Output::result(json, &wine.data_type, origin, key);
    };
    let (scored, elapsed) = m.score_wine(wine);
    let micros = elapsed.as_nanos() as f64 / 1000.0;
    let prediction = match scored {
        Ok(p) => p,
        Err(e) => {
            let reason = format!("model {} cannot score this record: {e}", m.name);
            return Output::bad_data(&wine.data_type, reason, origin);
        }
    };
    if let Some(s) = stats {
        s.record(micros);
    }
    let json = ResultJson {
        scored: Some((m, &prediction, micros)),
        ..result
    }
    .to_vec();
    Output::result(json, &wine.data_type, origin, key)
}

/// Fresh statistics for a model that starts serving now.
pub fn fresh_stats(m: &ServedModel) -> ServingStats {
    m.fresh_stats(ks_serving::now_ms())
}
