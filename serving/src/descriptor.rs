//! The one `ModelDescriptor` decoder: a model message into a [`ModelUpdate`] (its metadata and
//! model bytes, read from the location when it carries one), and [`ModelUpdate::build`] into a
//! [`ServedModel`].

use crate::{Error, Result, ServedModel};
use ks_models::{Model, ModelType};
use ks_proto::{Message, MessageContent, ModelDescriptor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The largest model file a location may point to: big enough for real graphs, small enough
/// that a bad path (a device, a huge log) cannot exhaust memory.
pub const MAX_MODEL_FILE: u64 = 512 * 1024 * 1024;

/// Where a message came from, named in results, errors and model versions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

impl Origin {
    /// `topic[partition]@offset`.
    pub fn new(topic: &str, partition: i32, offset: i64) -> Origin {
        Origin {
            topic: topic.to_string(),
            partition,
            offset,
        }
    }

    /// `<partition>:<offset>`: a model's version, stable across restarts.
    pub fn version(&self) -> String {
        format!("{}:{}", self.partition, self.offset)
    }
}

/// What a model message says of its model (the persisted header of as-server's actors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
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
}

/// A decoded model message with its model bytes.
#[derive(Debug, Clone)]
pub struct ModelUpdate {
    /// What the message says of the model.
    pub meta: ModelMeta,
    /// The model (PMML text or a TensorFlow graph).
    pub bytes: Vec<u8>,
}

/// A decoded model message.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The model to build.
    pub update: ModelUpdate,
    /// The descriptor without inline model bytes (a location stays), for queries and stores.
    pub summary: ModelDescriptor,
}

/// A model message that was rejected, with what was known of it when it was.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    /// The data type, empty when unknown.
    pub data_type: String,
    /// The model's name, empty when unknown.
    pub name: String,
    /// Why.
    #[source]
    pub error: Error,
}

/// Reads a model file named by a location, refusing what is not a file or is over
/// [`MAX_MODEL_FILE`].
pub fn read_location(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_MODEL_FILE {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_MODEL_FILE,
        });
    }
    std::fs::read(path).map_err(io)
}

/// Decodes one model message from `origin` (blocking: a location is read from disk).
pub fn decode(payload: &[u8], origin: &Origin) -> std::result::Result<Decoded, Rejected> {
    let md = ModelDescriptor::decode(payload).map_err(|e| Rejected {
        data_type: String::new(),
        name: String::new(),
        error: Error::NotADescriptor(e),
    })?;
    let reject = |md: &ModelDescriptor, error| Rejected {
        data_type: md.data_type.clone(),
        name: md.name.clone(),
        error,
    };
    let model_type = md
        .model_type()
        .map_err(|e| reject(&md, Error::ModelType(e)))?;
    if md.data_type.is_empty() {
        return Err(reject(&md, Error::NoDataType));
    }
    let bytes = match &md.message_content {
        Some(MessageContent::Data(d)) => d.clone(),
        Some(MessageContent::Location(path)) => {
            read_location(Path::new(path)).map_err(|e| reject(&md, e))?
        }
        None => return Err(reject(&md, Error::NoModel)),
    };
    let mut summary = md;
    if let Some(MessageContent::Data(_)) = summary.message_content {
        summary.message_content = Some(MessageContent::Data(Vec::new()));
    }
    Ok(Decoded {
        update: ModelUpdate {
            meta: ModelMeta {
                data_type: summary.data_type.clone(),
                name: summary.name.clone(),
                description: summary.description.clone(),
                model_type: model_type.as_str_name().to_string(),
                version: origin.version(),
            },
            bytes,
        },
        summary,
    })
}

impl ModelUpdate {
    /// The model type named in [`ModelMeta::model_type`].
    pub fn model_type(&self) -> Result<ModelType> {
        ModelType::from_str_name(&self.meta.model_type)
            .ok_or_else(|| Error::UnknownModelType(self.meta.model_type.clone()))
    }

    /// Builds the model (blocking, CPU-heavy for large models), loaded at `loaded_ms`.
    pub fn build(&self, loaded_ms: i64) -> Result<ServedModel> {
        let model =
            Model::from_bytes(self.model_type()?, &self.bytes).map_err(|source| Error::Build {
                name: self.meta.name.clone(),
                source,
            })?;
        let m = &self.meta;
        Ok(ServedModel::new(
            &m.data_type,
            &m.name,
            &m.description,
            &m.version,
            loaded_ms,
            model,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::new("models", 0, 3)
    }

    #[test]
    fn garbage_is_not_a_descriptor() {
        let r = decode(b"\xff\xff\xff", &origin());
        assert!(matches!(
            r,
            Err(Rejected {
                error: Error::NotADescriptor(_),
                ..
            })
        ));
    }

    #[test]
    fn a_missing_location_names_its_path_and_the_model() {
        let md = ModelDescriptor::with_location(
            "m",
            "",
            "wine",
            ModelType::Pmml,
            "/nonexistent/model.pmml",
        );
        match decode(&md.encode_to_vec(), &origin()) {
            Err(Rejected {
                data_type,
                name,
                error: Error::Io { path, .. },
            }) => {
                assert_eq!((data_type.as_str(), name.as_str()), ("wine", "m"));
                assert_eq!(path, Path::new("/nonexistent/model.pmml"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// An ONNX descriptor (`ModelType::Onnx`, by value) decodes and builds a served model.
    #[test]
    fn an_onnx_descriptor_builds_a_model() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/onnx/onnx_logreg.onnx");
        let bytes = std::fs::read(path).expect("onnx model");
        let md = ModelDescriptor::with_data("lr", "", "wine", ModelType::Onnx, bytes);
        let Ok(d) = decode(&md.encode_to_vec(), &origin()) else {
            panic!("decodes")
        };
        assert_eq!(d.update.meta.model_type, "ONNX");
        assert!(matches!(d.update.model_type(), Ok(ModelType::Onnx)));
        assert!(d.update.build(0).is_ok());
    }

    #[test]
    fn a_directory_is_not_a_model_file() {
        let e = read_location(Path::new("/")).err();
        assert!(matches!(e, Some(Error::NotAFile { .. })), "{e:?}");
    }

    #[test]
    fn inline_bytes_are_left_out_of_the_summary() {
        let md = ModelDescriptor::with_data("m", "d", "wine", ModelType::Pmml, vec![1, 2, 3]);
        let Ok(d) = decode(&md.encode_to_vec(), &origin()) else {
            panic!("decodes")
        };
        assert_eq!(d.update.bytes, vec![1, 2, 3]);
        assert_eq!(d.update.meta.version, "0:3");
        assert_eq!(
            d.summary.message_content,
            Some(MessageContent::Data(Vec::new()))
        );
    }
}
