//! The crate's one error type: why a model message was rejected or a model could not be built.

use std::path::PathBuf;

/// What failed in serving: decoding a model message, reading its location, building the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message is not a protobuf `ModelDescriptor`.
    #[error("not a ModelDescriptor: {0}")]
    NotADescriptor(#[source] prost::DecodeError),
    /// The descriptor's `modelType` is not one ks serves.
    #[error("{0}")]
    ModelType(#[source] ks_proto::Error),
    /// The descriptor names no data type.
    #[error("the model message has no dataType")]
    NoDataType,
    /// The descriptor carries neither model bytes nor a location.
    #[error("the model message carries no model")]
    NoModel,
    /// The location could not be read.
    #[error("cannot read model file {}: {source}", path.display())]
    Io {
        /// The location.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The location is a directory, a device, …
    #[error("model location {} is not a file", path.display())]
    NotAFile {
        /// The location.
        path: PathBuf,
    },
    /// The location is a file over [`crate::descriptor::MAX_MODEL_FILE`].
    #[error("model file {} is {size} bytes, over the {limit} limit", path.display())]
    TooLarge {
        /// The location.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A persisted model type name is not `PMML` or `TENSORFLOW`.
    #[error("unknown model type {0}")]
    UnknownModelType(String),
    /// A model-topic header is not UTF-8.
    #[error("header {name} is not UTF-8")]
    BadHeader {
        /// The header.
        name: &'static str,
    },
    /// `ks.action` names no action ks knows.
    #[error("unknown ks.action {0:?}: expected rollback or promote")]
    UnknownAction(String),
    /// `ks.role` names no role ks knows.
    #[error("unknown ks.role {0:?}: expected champion or challenger")]
    UnknownRole(String),
    /// A control message carries a model (ambiguous: publish the model without `ks.action`).
    #[error("a {action} control message must carry no model")]
    ControlWithModel {
        /// `rollback` or `promote`.
        action: &'static str,
    },
    /// No model serves the data type.
    #[error("no model serves data type {data_type:?}")]
    UnknownDataType {
        /// The data type.
        data_type: String,
    },
    /// A rollback found no older version kept (see `--keep-versions`).
    #[error("no previous version of {data_type:?} to roll back to (serving {current})")]
    NoPreviousVersion {
        /// The data type.
        data_type: String,
        /// The version that keeps serving.
        current: String,
    },
    /// A promote found no challenger.
    #[error("no challenger for data type {data_type:?} to promote")]
    NoChallenger {
        /// The data type.
        data_type: String,
    },
    /// A promote named a version that is not the current challenger's.
    #[error("promote of {data_type:?} names version {asked}, but the challenger is {challenger}")]
    NotTheChallenger {
        /// The data type.
        data_type: String,
        /// The version the message named.
        asked: String,
        /// The current challenger's version.
        challenger: String,
    },
    /// The model bytes do not build into a model.
    #[error("model {name} rejected: {source}")]
    Build {
        /// The model's name.
        name: String,
        /// Why ks-models rejected it.
        source: ks_models::Error,
    },
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
