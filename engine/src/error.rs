use rdkafka::error::KafkaError;

/// What failed in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid topology: {0}")]
    InvalidTopology(String),
    #[error("joined topics must have the same number of partitions (co-partitioning): {}", topics.iter().map(|(t, n)| format!("{t} has {n}")).collect::<Vec<_>>().join(", "))]
    NotCopartitioned { topics: Vec<(String, i32)> },
    #[error("the state directory {path} is locked by another instance (one process per state.dir and application.id)")]
    StateDirLocked { path: std::path::PathBuf },
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("processor {processor} is not connected to store {store}")]
    StoreNotConnected { processor: String, store: String },
    #[error("no store named {0}")]
    UnknownStore(String),
    #[error("no child named {child} under {processor}")]
    UnknownChild { processor: String, child: String },
    #[error("cannot deserialize the record at {topic}[{partition}]@{offset}: {reason}")]
    Deserialization {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("invalid timestamp {timestamp} of the record at {topic}[{partition}]@{offset} (a timestamp extractor returned a negative time)")]
    InvalidTimestamp {
        topic: String,
        partition: i32,
        offset: i64,
        timestamp: i64,
    },
    #[error("processing failed in {processor}: {reason}")]
    Processing { processor: String, reason: String },
    #[error("state store: {0}")]
    Store(#[from] ks_stores::Error),
    #[error(transparent)]
    Kafka(#[from] ks_kafka::Error),
    #[error("this instance was fenced by a newer one: {0}")]
    Fenced(String),
    /// The thread's tasks moved on without it (a stale group generation, or a transaction the
    /// coordinator aborted): they close dirty and the thread rejoins the group.
    #[error("the tasks of this thread migrated to another member: {0}")]
    TaskMigrated(String),
    #[error("the streams instance is {0}")]
    NotRunning(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Whether this is an error of the data (a record that cannot be deserialized, user logic
    /// rejecting a record): the configured handler decides what happens. Anything else (store
    /// I/O, a send or changelog failure, a misconfigured topology) fails the task, so a store
    /// never runs ahead of its changelog silently.
    pub fn is_data_error(&self) -> bool {
        matches!(
            self,
            Error::Deserialization { .. }
                | Error::Processing { .. }
                | Error::InvalidTimestamp { .. }
        )
    }

    /// A processing failure raised by user code.
    pub fn processing(processor: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Processing {
            processor: processor.into(),
            reason: reason.to_string(),
        }
    }

    /// For `map_err`: an I/O error on `path`.
    pub(crate) fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> Error {
        let context = ks_kafka::Error::context(what);
        move |source| Error::Kafka(context(source))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
