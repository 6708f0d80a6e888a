//! Model messages: decoding a `ModelDescriptor` into a [`ModelUpdate`], building it into
//! ks-topologies' [`ServedModel`] (off the async workers: a large model takes seconds), and the
//! byte layout an actor persists a model in.

use crate::{Error, Result};
use ks_models::{Model, ModelType};
use ks_proto::{Message, MessageContent, ModelDescriptor};
use ks_topologies::registry::ServedModel;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The largest model file a location may point to (as ks-server).
pub const MAX_MODEL_FILE: u64 = ks_topologies::model_source::MAX_MODEL_FILE;

/// Where a message came from, named in results and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A decoded model message, with its bytes (actors persist them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub data_type: String,
    pub name: String,
    pub description: String,
    /// `PMML` or `TENSORFLOW`.
    pub model_type: String,
    /// `<partition>:<offset>` of the model message, as in ks-server.
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct ModelUpdate {
    pub meta: ModelMeta,
    pub bytes: Vec<u8>,
}

/// A built model plus what it was built from.
#[derive(Clone)]
pub struct Built {
    pub served: Arc<ServedModel>,
    pub update: Arc<ModelUpdate>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn read_location(path: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::BadModel(format!("cannot read model file {path}: {e}")))?;
    if !meta.is_file() || meta.len() > MAX_MODEL_FILE {
        return Err(Error::BadModel(format!(
            "model location {path} is not a file of at most {MAX_MODEL_FILE} bytes"
        )));
    }
    std::fs::read(path).map_err(|e| Error::BadModel(format!("cannot read model file {path}: {e}")))
}

/// Decodes one model message (blocking: a location is read from disk).
pub fn decode(payload: &[u8], origin: &Origin) -> Result<ModelUpdate> {
    let md = ModelDescriptor::decode(payload)
        .map_err(|e| Error::BadModel(format!("not a ModelDescriptor: {e}")))?;
    let model_type = md
        .model_type()
        .map_err(|e| Error::BadModel(e.to_string()))?;
    if md.data_type.is_empty() {
        return Err(Error::BadModel("the model message has no dataType".into()));
    }
    let bytes = match &md.message_content {
        Some(MessageContent::Data(d)) => d.clone(),
        Some(MessageContent::Location(path)) => read_location(path)?,
        None => return Err(Error::BadModel("the model message carries no model".into())),
    };
    Ok(ModelUpdate {
        meta: ModelMeta {
            data_type: md.data_type.clone(),
            name: md.name.clone(),
            description: md.description.clone(),
            model_type: model_type.as_str_name().to_string(),
            version: format!("{}:{}", origin.partition, origin.offset),
        },
        bytes,
    })
}

/// Builds a model (blocking, CPU-heavy for large models).
pub fn build(update: ModelUpdate) -> Result<Built> {
    let model_type = ModelType::from_str_name(&update.meta.model_type)
        .ok_or_else(|| Error::BadModel(format!("unknown model type {}", update.meta.model_type)))?;
    let model = Model::from_bytes(model_type, &update.bytes)
        .map_err(|e| Error::BadModel(format!("model {} rejected: {e}", update.meta.name)))?;
    let m = &update.meta;
    let served = ServedModel::new(
        &m.data_type,
        &m.name,
        &m.description,
        &m.version,
        now_ms(),
        model,
    );
    Ok(Built {
        served: Arc::new(served),
        update: Arc::new(update),
    })
}

/// The persisted form: `header length (u32 LE) | header JSON | model bytes`; framed and
/// checksummed by [`crate::framed`].
pub fn to_file_bytes(update: &ModelUpdate) -> Result<Vec<u8>> {
    let header = serde_json::to_vec(&update.meta)
        .map_err(|e| Error::BadModel(format!("cannot encode model header: {e}")))?;
    let len = u32::try_from(header.len())
        .map_err(|_| Error::BadModel("model header over 4 GiB".into()))?;
    let mut out = Vec::with_capacity(4 + header.len() + update.bytes.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&update.bytes);
    Ok(out)
}

pub fn from_file_bytes(bytes: &[u8]) -> Result<ModelUpdate> {
    let bad = |r: &str| Error::BadModel(format!("persisted model: {r}"));
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("no header"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad("header runs past the end"));
    }
    let (header, model) = rest.split_at(len);
    let meta: ModelMeta =
        serde_json::from_slice(header).map_err(|e| bad(&format!("bad header: {e}")))?;
    Ok(ModelUpdate {
        meta,
        bytes: model.to_vec(),
    })
}
