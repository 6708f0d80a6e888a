//! The one error type of ks-reactive.

use std::path::PathBuf;

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What failed in as-server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kafka client failed.
    #[error(transparent)]
    Kafka(#[from] ks_kafka::Error),
    /// A result could not be written; its record's offset is not stored, so it is read again
    /// after a restart (at-least-once).
    #[error("cannot write to {topic}: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// What the producer said.
        reason: String,
    },
    /// An I/O error on a state file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A state file that is not what we wrote: truncated, bit-flipped or foreign.
    /// A state file that does not read back.
    #[error("corrupt state file {path}: {reason}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A model message that was rejected, or a model that does not build.
    #[error("bad model message: {0}")]
    Model(#[from] ks_serving::Error),
    /// A persisted model that does not read back.
    #[error("persisted model: {reason}")]
    PersistedModel {
        /// What is wrong with it.
        reason: String,
    },
    /// An actor did not answer in time.
    #[error("the actor of {data_type} did not answer within {millis} ms")]
    AskTimeout {
        /// The actor's data type.
        data_type: String,
        /// The timeout, ms.
        millis: u64,
    },
    /// No actor serves the data type (or it has stopped).
    #[error("no actor serves {0}")]
    NoActor(String),
    /// The pipeline or one of its tasks has stopped.
    #[error("the pipeline has stopped: {0}")]
    Stopped(String),
    /// The HTTP listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The HTTP API's TLS files are unusable, or the address cannot be bound.
    #[error(transparent)]
    HttpServer(#[from] ks_http::Error),
    /// `--host`/`--port` do not make an address.
    #[error("bad --host/--port {value:?}: {reason}")]
    BadAddress {
        /// `host:port` as given.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl Error {
    pub(crate) fn kafka(
        what: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        let context = ks_kafka::Error::context(what);
        move |source| Error::Kafka(context(source))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
