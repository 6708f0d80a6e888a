//! The global processor of the model topic: every instance decodes every model message and
//! queues it for the builder. It also keeps the newest descriptor per data type in the global
//! `models` store (without the model bytes), for queries.

use crate::registry::{BuildFailures, BuildJob};
use ks_engine::{Error, Processor, ProcessorContext, Record, Result};
use ks_proto::{Message, MessageContent, ModelDescriptor};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// The largest model file a location may point to: big enough for real graphs, small enough
/// that a bad path (a device, a huge log) cannot exhaust memory.
pub const MAX_MODEL_FILE: u64 = 512 * 1024 * 1024;

pub const MODELS_STORE: &str = "models";

pub struct ModelSource {
    pub builder: SyncSender<BuildJob>,
    pub failures: Arc<dyn BuildFailures>,
}

impl ModelSource {
    fn reject(&self, origin: (String, i32, i64), data_type: &str, name: &str, reason: &str) {
        let job = BuildJob {
            data_type: data_type.to_string(),
            name: name.to_string(),
            description: String::new(),
            model_type: ks_proto::ModelType::Pmml,
            version: format!("{}:{}", origin.1, origin.2),
            bytes: Vec::new(),
            origin,
        };
        self.failures.failed(&job, reason);
    }
}

fn read_location(path: &str) -> std::result::Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read model file {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("model location {path} is not a file"));
    }
    if meta.len() > MAX_MODEL_FILE {
        return Err(format!(
            "model file {path} is {} bytes, over the {MAX_MODEL_FILE} limit",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read model file {path}: {e}"))
}

impl Processor for ModelSource {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()> {
        let origin = (
            ctx.topic().unwrap_or_default().to_string(),
            ctx.partition().unwrap_or(-1),
            ctx.offset().unwrap_or(-1),
        );
        let Some(bytes) = record.value.as_deref() else {
            return Ok(()); // a tombstone: nothing to build
        };
        let md = match ModelDescriptor::decode(bytes) {
            Ok(md) => md,
            Err(e) => {
                self.reject(origin, "", "", &format!("not a ModelDescriptor: {e}"));
                return Ok(());
            }
        };
        let model_type = match md.model_type() {
            Ok(t) => t,
            Err(e) => {
                self.reject(origin, &md.data_type, &md.name, &e.to_string());
                return Ok(());
            }
        };
        if md.data_type.is_empty() {
            self.reject(origin, "", &md.name, "the model message has no dataType");
            return Ok(());
        }
        let data = match &md.message_content {
            Some(MessageContent::Data(d)) => d.clone(),
            Some(MessageContent::Location(path)) => match read_location(path) {
                Ok(d) => d,
                Err(reason) => {
                    self.reject(origin, &md.data_type, &md.name, &reason);
                    return Ok(());
                }
            },
            None => {
                self.reject(
                    origin,
                    &md.data_type,
                    &md.name,
                    "the model message carries no model",
                );
                return Ok(());
            }
        };
        // The descriptor without its bytes, for /models and for operators reading the store.
        let mut summary = md.clone();
        if let Some(MessageContent::Data(_)) = summary.message_content {
            summary.message_content = Some(MessageContent::Data(Vec::new()));
        }
        ctx.store(MODELS_STORE)?
            .put(md.data_type.as_bytes(), &summary.encode_to_vec())
            .map_err(Error::from)?;
        let job = BuildJob {
            data_type: md.data_type.clone(),
            name: md.name.clone(),
            description: md.description.clone(),
            model_type,
            version: format!("{}:{}", origin.1, origin.2),
            bytes: data,
            origin,
        };
        self.builder
            .send(job)
            .map_err(|_| Error::processing("models", "the model builder has stopped"))
    }
}
