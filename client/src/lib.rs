//! ks-client: the tutorial's DataProvider and DataReader, grown up.
//!
//! - [`kafka`]: producer with delivery accounting, topic creation, a group-less reader.
//! - [`provide`]: publishes wine records and models on a schedule (`ks-client provide`).
//! - [`catalog`]: the models found in `data/` and their types.
//! - [`decode`]: turns topic payloads back into JSON for `ks-client read`.
//!
//! ```no_run
//! use ks_client::kafka::Publisher;
//! let publisher = Publisher::connect("127.0.0.1:9092").unwrap();
//! publisher.send("models_models", Some(b"wine"), b"...").unwrap();
//! publisher.flush(std::time::Duration::from_secs(10)).unwrap();
//! ```

pub mod catalog;
pub mod decode;
pub mod kafka;
pub mod provide;

use std::path::PathBuf;

/// What failed while providing or reading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot tell the model type of {0} from its extension (use --type pmml|tensorflow)")]
    UnknownModelFile(PathBuf),
    #[error("no broker answers at {0}")]
    BrokerUnreachable(String),
    #[error(transparent)]
    Kafka(#[from] ks_kafka::Error),
    #[error("{failed} of {sent} messages were not delivered; first error: {}", first.as_ref().map(ToString::to_string).unwrap_or_default())]
    Undelivered {
        failed: u64,
        sent: u64,
        /// The first message the broker did not acknowledge.
        first: Option<ks_kafka::DeliveryFailure>,
    },
    #[error("bad data line {line_no} of {path}: {source}")]
    BadData {
        path: PathBuf,
        line_no: usize,
        source: ks_proto::Error,
    },
    #[error("no records in {0}")]
    NoRecords(PathBuf),
    #[error(transparent)]
    Broker(#[from] ks_broker::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn kafka_err(
    what: impl Into<String>,
) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
    let context = ks_kafka::Error::context(what);
    move |source| Error::Kafka(context(source))
}
