//! ks-kafka: the one Kafka plumbing layer every ks crate that talks to Kafka uses (stores,
//! engine, client, reactive, benches).
//!
//! It is a crate of its own, low in the stack (it depends on rdkafka only), rather than a module
//! of ks-stores or ks-engine: the client and the benchmark harness need the same plumbing but must
//! not link RocksDB or the engine, and the stores need it below the engine.
//!
//! Layout:
//! - [`config`]: client configuration with the shared defaults and pass-through of any
//!   librdkafka property; the partitions of a topic from metadata.
//! - [`properties`]: Kafka Streams–style properties files, split into a program's own settings
//!   and client properties passed through to librdkafka (plain, `consumer.*`, `producer.*`,
//!   `admin.*`), unknown keys refused by name.
//! - [`send`]: sending with back-off while the producer's local queue is full (blocking and
//!   async).
//! - [`delivery`]: [`DeliveryTracker`], the producer context that counts acknowledgements,
//!   keeps the highest acknowledged offset per partition and the first failure.
//! - [`Error`]: a Kafka error with what was being done when it happened.
//! - [`now_ms`]: wall-clock milliseconds, the unit of Kafka timestamps.
//!
//! ```no_run
//! use ks_kafka::{client_config, send_with_backoff, pause, DeliveryTracker, Error};
//! use rdkafka::producer::{BaseRecord, ThreadedProducer};
//!
//! let producer: ThreadedProducer<DeliveryTracker> = client_config("127.0.0.1:9092")
//!     .set("linger.ms", "5")
//!     .create_with_context(DeliveryTracker::default())
//!     .map_err(Error::context("creating the producer"))?;
//! let record = BaseRecord::<[u8], [u8]>::to("topic").payload(b"hello");
//! send_with_backoff(record, |r| producer.send(r), pause(std::time::Duration::from_millis(5)))
//!     .map_err(Error::context("sending to topic"))?;
//! # Ok::<(), ks_kafka::Error>(())
//! ```

// A new crate is held to complete docs (the workspace only warns, for the older crates).
#![deny(missing_docs)]

pub mod config;
pub mod delivery;
mod error;
pub mod properties;
pub mod send;

pub use config::{check_brokers, client_config_for, set_process_properties};
pub use config::{client_config, partition_ids, with_properties, with_stream_prefetch};
pub use delivery::{DeliveryFailure, DeliveryTracker};
pub use error::{Error, Result};
pub use properties::{ClientKind, ClientProperties, PropertiesFile, Settings};
pub use send::{pause, pause_until, send_with_backoff, send_with_backoff_async};

/// Wall-clock milliseconds since the epoch: the unit of Kafka record timestamps.
pub use ks_proto::now_ms;
