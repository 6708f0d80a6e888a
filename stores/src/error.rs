//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can fail in a state store, named after what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("RocksDB store {store}: {source}")]
    RocksDb {
        store: String,
        source: rocksdb::Error,
    },
    #[error("store file {path} is corrupt at byte {offset}: {reason}")]
    CorruptStoreFile {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("checkpoint file {path} is malformed at line {line}: {reason}")]
    MalformedCheckpoint {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("store {0} is closed")]
    StoreClosed(String),
    #[error("a lock of store {0} was poisoned by a panicking thread")]
    LockPoisoned(String),
    #[error("invalid store configuration: {0}")]
    InvalidConfig(String),
    #[error("changelog write to {topic}[{partition}] failed: {reason}")]
    ChangelogSend {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error("changelog flush failed: {0}")]
    ChangelogFlush(String),
    #[error(transparent)]
    Kafka(#[from] ks_kafka::Error),
    #[error(
        "restore of {topic}[{partition}] made no progress for {seconds} s (at offset {offset})"
    )]
    RestoreStalled {
        topic: String,
        partition: i32,
        offset: i64,
        seconds: u64,
    },
    #[error("could not encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("could not decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    /// For user-defined stores (see [`crate::StoreFactory`]) whose failures fit no other variant.
    #[error("store {store}: {source}")]
    Custom {
        store: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka(ks_kafka::Error::context(context)(source))
    }
}
