//! The one error type of ks-reactive.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Kafka {
        what: String,
        source: rdkafka::error::KafkaError,
    },
    /// A result could not be written; its record's offset is not stored, so it is read again
    /// after a restart (at-least-once).
    #[error("cannot write to {topic}: {reason}")]
    Delivery { topic: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A state file that is not what we wrote: truncated, bit-flipped or foreign.
    #[error("corrupt state file {path}: {reason}")]
    CorruptState { path: PathBuf, reason: String },
    #[error("bad model message: {0}")]
    BadModel(String),
    #[error("the actor of {data_type} did not answer within {millis} ms")]
    AskTimeout { data_type: String, millis: u64 },
    #[error("no actor serves {0}")]
    NoActor(String),
    #[error("the pipeline has stopped: {0}")]
    Stopped(String),
    #[error("http: {0}")]
    Http(String),
}

impl Error {
    pub(crate) fn kafka(
        what: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        let what = what.into();
        move |source| Error::Kafka { what, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
