//! The Processor API: a [`Processor`] handles one record at a time and emits through its
//! [`ProcessorContext`].

mod context;

pub use context::ProcessorContext;

use crate::record::{Record, RecordMetadata};
use crate::Result;
use std::sync::Arc;
use std::time::Duration;

/// A node of user logic. Only `process` is required.
pub trait Processor: Send {
    /// Called once per task before the first record: look up stores, schedule punctuations.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_>) -> Result<()> {
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()>;

    /// A hint before the stream thread runs a poll batch: `upcoming` are the records this
    /// processor's source is about to hand it, in order, one `process` call each. A processor
    /// that works faster over many records at once (a model scoring a batch of rows as one
    /// tensor) does that work here and keeps the results for `process` to pick up by the
    /// record's partition and offset ([`ProcessorContext::record_metadata`]).
    ///
    /// Only a hint: `process` must still handle any record by itself. A record may never
    /// arrive (its partition revoked, an earlier record failing the thread), and records
    /// arrive with nothing prepared where no hint is given: below another processor (only
    /// the direct children of a source node are told), in tasks reading several partitions
    /// (they take records in timestamp order across polls), and for a poll that fetched one
    /// record. Records are as fetched, before the timestamp extractor ran. Nothing may be
    /// forwarded here, and a data error belongs in `process` (where the error handler sees
    /// the record): an error returned here fails the thread. The stream thread's batch is at
    /// most [`StreamsConfig::max_poll_records`](crate::StreamsConfig) records.
    fn prepare(
        &mut self,
        _ctx: &mut ProcessorContext<'_>,
        _upcoming: &[Upcoming<'_>],
    ) -> Result<()> {
        Ok(())
    }

    /// Called for each punctuation this processor scheduled, with the stream time or wall-clock
    /// time (ms) that triggered it.
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<'_>,
        _kind: PunctuationType,
        _timestamp: i64,
    ) -> Result<()> {
        Ok(())
    }

    /// Called before every commit of the task: state a processor keeps in memory between
    /// store writes (running statistics, say) goes to its stores here, so the commit that
    /// covers the records it came from also covers the store writes (under exactly-once, the
    /// same transaction). Output forwarded here is part of that commit too.
    fn flush(&mut self, _ctx: &mut ProcessorContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Called when the task closes (revocation or shutdown).
    fn close(&mut self, _ctx: &mut ProcessorContext<'_>) -> Result<()> {
        Ok(())
    }
}

/// A record a processor will be given soon (see [`Processor::prepare`]).
#[derive(Debug, Clone, Copy)]
pub struct Upcoming<'a> {
    /// Where it comes from: the partition and offset `process` will see in its metadata.
    pub metadata: &'a RecordMetadata,
    /// The record as fetched.
    pub record: &'a Record,
}

/// Makes a fresh processor for each task: tasks never share processor state.
pub type ProcessorSupplier = Arc<dyn Fn() -> Box<dyn Processor> + Send + Sync>;

/// Wraps a closure returning a processor into a [`ProcessorSupplier`].
pub fn supplier<P, F>(make: F) -> ProcessorSupplier
where
    P: Processor + 'static,
    F: Fn() -> P + Send + Sync + 'static,
{
    Arc::new(move || Box::new(make()) as Box<dyn Processor>)
}

/// What drives a punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Advances with the timestamps of the records the task processes.
    StreamTime,
    /// Advances with the clock (checked between poll batches).
    WallClockTime,
}

/// A scheduled punctuation, as registered by `ProcessorContext::schedule`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Schedule {
    pub node: usize,
    pub interval: Duration,
    pub kind: PunctuationType,
    /// When it fires next (ms); `None` until the first stream time is known.
    pub next: Option<i64>,
}

/// Chooses the partition of a record written by a sink; `None` leaves it to the producer
/// (hash of the key, or sticky for keyless records).
pub trait StreamPartitioner: Send + Sync {
    fn partition(&self, topic: &str, record: &Record, num_partitions: i32) -> Option<i32>;

    /// As [`StreamPartitioner::partition`], also told where the input record being processed
    /// came from (`None` for output of a punctuation), e.g. to keep each result in its input's
    /// partition. Defaults to `partition`.
    fn partition_from(
        &self,
        topic: &str,
        record: &Record,
        num_partitions: i32,
        source: Option<&crate::record::RecordMetadata>,
    ) -> Option<i32> {
        let _ = source;
        self.partition(topic, record, num_partitions)
    }
}

impl<F> StreamPartitioner for F
where
    F: Fn(&str, &Record, i32) -> Option<i32> + Send + Sync,
{
    fn partition(&self, topic: &str, record: &Record, num_partitions: i32) -> Option<i32> {
        self(topic, record, num_partitions)
    }
}
