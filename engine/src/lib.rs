//! ks-engine: a Kafka Streams-style topology engine over Kafka partitions.
//!
//! Layout:
//! - [`record`]: records as they flow (bytes, timestamp, headers) and their source metadata.
//! - [`processor`]: the Processor API — [`Processor`] (only `process` required),
//!   [`ProcessorContext`] (forward, record metadata, stores, punctuation); `prepare` tells a
//!   processor below a source which records of a poll batch come (batch scoring).
//! - [`topology`]: [`Topology`], sources/processors/sinks/stores/global stores, sub-topologies,
//!   and `describe()` in Kafka Streams' format.
//! - [`cache`]: the record cache (`cache.max.bytes.buffering`) aggregate nodes keep their
//!   dirty entries in until a commit.
//! - [`task`]: one sub-topology for one partition, shared by the runtime and the test driver.
//! - [`runtime`]: [`KafkaStreams`] — stream threads, tasks per partition, restore, commit
//!   (at-least-once and exactly-once), global stores, error handling, instance metadata.
//! - [`timestamp`]: event time — [`timestamp::TimestampExtractor`] and partition time kept
//!   across restarts.
//! - [`test_driver`]: [`TopologyTestDriver`], topology tests without a broker.
//!
//! ```
//! use ks_engine::{processor, Processor, ProcessorContext, Record, Result, Topology, TopologyTestDriver};
//!
//! struct Upper;
//! impl Processor for Upper {
//!     fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
//!         let v = r.value.as_ref().map(|v| v.to_ascii_uppercase());
//!         ctx.forward(r.with_value(v));
//!         Ok(())
//!     }
//! }
//!
//! let mut t = Topology::new();
//! t.add_source("in", &["words"])?
//!     .add_processor("upper", processor::supplier(|| Upper), &["in"])?
//!     .add_sink("out", "shouted", &["upper"])?;
//! let mut driver = TopologyTestDriver::new(&t, 0)?;
//! driver.pipe_input("words", None, Some(b"hi"), 1)?;
//! assert_eq!(driver.read_output("shouted").unwrap().value.as_deref(), Some(&b"HI"[..]));
//! # Ok::<(), ks_engine::Error>(())
//! ```

pub mod cache;
pub mod dsl;
mod error;
pub mod processor;
pub mod record;
pub mod runtime;
pub mod task;
pub mod test_driver;
pub mod timestamp;
pub mod topology;

pub use error::{Error, Result};
pub use processor::{
    Processor, ProcessorContext, ProcessorSupplier, PunctuationType, StreamPartitioner, Upcoming,
};
pub use record::{OutputRecord, Record, RecordMetadata};
pub use runtime::{
    ErrorHandling, KafkaStreams, ProcessingGuarantee, ProductionErrorHandling, StandbyPartition,
    StreamsConfig, StreamsMetadata, StreamsState, TaskRestore, UncaughtExceptionHandling,
};
pub use test_driver::TopologyTestDriver;
pub use topology::{GlobalReset, Subtopology, Topology, TopologyDescription};

/// The store crate, re-exported so topologies need one dependency.
pub use ks_stores as stores;
