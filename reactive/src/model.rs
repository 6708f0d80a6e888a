//! Model messages for as-server: decoded by ks-serving's one decoder and built into its
//! [`ServedModel`] (off the async workers: a large model takes seconds), and the byte layout an
//! actor persists a model in.

use crate::{Error, Result};
use ks_serving::{descriptor, FailureKind, FailureReport, ServedModel};
pub use ks_serving::{ModelMeta, ModelUpdate, Origin};
use std::sync::Arc;

/// A built model plus what it was built from.
#[derive(Clone)]
pub struct Built {
    /// The model, ready to score.
    pub served: Arc<ServedModel>,
    /// The message it was built from (actors persist it).
    pub update: Arc<ModelUpdate>,
}

/// Decodes and builds one model message (blocking: a location is read from disk, a large model
/// takes seconds to build); a rejected one becomes its errors-topic report.
pub fn decode_and_build(
    payload: &[u8],
    origin: &Origin,
) -> std::result::Result<Built, FailureReport> {
    let report = |data_type: &str, name: &str, error: &ks_serving::Error| FailureReport {
        kind: FailureKind::Model,
        origin: origin.clone(),
        data_type: data_type.to_string(),
        name: name.to_string(),
        reason: error.to_string(),
    };
    let decoded =
        descriptor::decode(payload, origin).map_err(|r| report(&r.data_type, &r.name, &r.error))?;
    let served = decoded.update.build(ks_serving::now_ms()).map_err(|e| {
        report(
            &decoded.update.meta.data_type,
            &decoded.update.meta.name,
            &e,
        )
    })?;
    Ok(Built {
        served: Arc::new(served),
        update: Arc::new(decoded.update),
    })
}

/// Builds a persisted model (blocking, CPU-heavy for large models).
pub fn build(update: ModelUpdate) -> Result<Built> {
    let served = update.build(ks_serving::now_ms())?;
    Ok(Built {
        served: Arc::new(served),
        update: Arc::new(update),
    })
}

/// The persisted form: `header length (u32 LE) | header JSON | model bytes`; framed and
/// checksummed by [`crate::framed`].
pub fn to_file_bytes(update: &ModelUpdate) -> Result<Vec<u8>> {
    let header = serde_json::to_vec(&update.meta).map_err(|e| Error::PersistedModel {
        reason: format!("cannot encode the header: {e}"),
    })?;
    let len = u32::try_from(header.len()).map_err(|_| Error::PersistedModel {
        reason: "header over 4 GiB".into(),
    })?;
    let mut out = Vec::with_capacity(4 + header.len() + update.bytes.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&update.bytes);
    Ok(out)
}

/// The inverse of [`to_file_bytes`].
pub fn from_file_bytes(bytes: &[u8]) -> Result<ModelUpdate> {
    let bad = |r: String| Error::PersistedModel { reason: r };
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("no header".into()))?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad("header runs past the end".into()));
    }
    let (header, model) = rest.split_at(len);
    let meta: ModelMeta =
        serde_json::from_slice(header).map_err(|e| bad(format!("bad header: {e}")))?;
    Ok(ModelUpdate {
        meta,
        bytes: model.to_vec(),
    })
}
