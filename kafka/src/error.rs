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
    pub fn kafka_error(&self) -> &KafkaError {
        match self {
            Error::Kafka { source, .. } => source,
        }
    }
}
