//! The crate's one error type: a Kafka client error and what was being done.

use rdkafka::error::KafkaError;

/// A Kafka client error, with the operation that failed (`"creating the producer"`,
/// `"cannot send to topic x"`, …).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// librdkafka reported `source` while doing `context`.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// What librdkafka said.
        source: KafkaError,
    },
    /// The brokers refused this client's credentials.
    #[error("authentication with {brokers} failed: {reason}")]
    Authentication {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// No broker answered a metadata request in time.
    #[error("no broker of {brokers} answered within {timeout:?}: {reason}")]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long the check waited.
        timeout: std::time::Duration,
        /// The last error seen.
        reason: String,
    },
    /// A properties file could not be read.
    #[error("cannot read the properties file {path}: {source}")]
    ReadProperties {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of a properties file is not `key=value`, `key: value` or `key value`.
    #[error("{origin}:{line}: {reason}")]
    PropertiesSyntax {
        /// The file (or `<text>`).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A key is neither one of the program's own settings, nor prefixed `consumer.`,
    /// `producer.` or `admin.`, nor a property librdkafka accepts with its value.
    #[error("{origin}:{line}: unknown or invalid property `{key}`: {reason}")]
    UnknownProperty {
        /// The file (or `<text>`).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// The key as written.
        key: String,
        /// librdkafka's reason, or why the key is not one of ours.
        reason: String,
    },
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// For `map_err`: wraps a [`KafkaError`] with what was being done.
    pub fn context(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Error {
        let context = context.into();
        move |source| Error::Kafka { context, source }
    }

    /// The librdkafka error.
    pub fn kafka_error(&self) -> Option<&KafkaError> {
        match self {
            Error::Kafka { source, .. } => Some(source),
            _ => None,
        }
    }
}
