use super::{PunctuationType, Schedule};
use crate::cache::{CacheBudget, RecordCache};
use crate::record::{Header, Record, RecordMetadata};
use crate::{Error, Result};
use ks_stores::{KeyValueStore, ReadOnlyKeyValueStore, Serde, TypedStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A processor's window on its task: where it forwards records, which record it is handling,
/// the stores it is connected to, and its punctuation schedule.
///
/// Forwarded records are handed to the children after `process` returns, in the order they
/// were forwarded (depth-first from there). A processor therefore never re-enters itself
/// and holds `&mut self` for the whole call.
pub struct ProcessorContext<'a> {
    pub(crate) node: usize,
    pub(crate) name: &'a str,
    pub(crate) children: &'a [(String, usize)],
    pub(crate) connected: &'a [String],
    pub(crate) stores: &'a HashMap<String, Arc<dyn KeyValueStore>>,
    pub(crate) global_stores: &'a HashMap<String, Arc<dyn ReadOnlyKeyValueStore>>,
    pub(crate) metadata: Option<&'a RecordMetadata>,
    pub(crate) current: Option<(i64, &'a [Header])>,
    pub(crate) task_id: &'a str,
    pub(crate) application_id: &'a str,
    pub(crate) stream_time: i64,
    pub(crate) wall_clock: i64,
    pub(crate) forwarded: Vec<(Option<usize>, Record)>,
    pub(crate) schedules: &'a mut Vec<Schedule>,
    pub(crate) cache: &'a Arc<CacheBudget>,
}

impl<'a> ProcessorContext<'a> {
    /// Sends `record` to every child.
    pub fn forward(&mut self, record: Record) {
        self.forwarded.push((None, record));
    }

    /// Sends `record` to the child named `child` only.
    pub fn forward_to(&mut self, child: &str, record: Record) -> Result<()> {
        let idx = self
            .children
            .iter()
            .find(|(n, _)| n == child)
            .map(|(_, i)| *i)
            .ok_or_else(|| Error::UnknownChild {
                processor: self.name.to_string(),
                child: child.to_string(),
            })?;
        self.forwarded.push((Some(idx), record));
        Ok(())
    }

    /// The names of this processor's children, in the order they were added.
    pub fn child_names(&self) -> impl Iterator<Item = &str> {
        self.children.iter().map(|(n, _)| n.as_str())
    }

    /// This processor's name in the topology.
    pub fn processor_name(&self) -> &str {
        self.name
    }

    /// The topic, partition and offset of the source record being processed (none during
    /// punctuation).
    pub fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.metadata
    }

    pub fn topic(&self) -> Option<&str> {
        self.metadata.map(|m| m.topic.as_str())
    }

    pub fn partition(&self) -> Option<i32> {
        self.metadata.map(|m| m.partition)
    }

    pub fn offset(&self) -> Option<i64> {
        self.metadata.map(|m| m.offset)
    }

    /// The timestamp of the record being processed (stream time during punctuation).
    pub fn timestamp(&self) -> i64 {
        self.current.map(|(t, _)| t).unwrap_or(self.stream_time)
    }

    /// The headers of the record being processed.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        self.current.map(|(_, h)| h).unwrap_or(&[])
    }

    /// `<subtopology>_<partition>`.
    pub fn task_id(&self) -> &str {
        self.task_id
    }

    pub fn application_id(&self) -> &str {
        self.application_id
    }

    /// The largest record timestamp the task has seen.
    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// Wall-clock time in ms (the test driver's mock clock under test).
    pub fn wall_clock_time(&self) -> i64 {
        self.wall_clock
    }

    /// A store this processor is connected to (writable; writes are changelogged if the store
    /// logs).
    pub fn store(&self, name: &str) -> Result<Arc<dyn KeyValueStore>> {
        if !self.connected.iter().any(|s| s == name) {
            return Err(Error::StoreNotConnected {
                processor: self.name.to_string(),
                store: name.to_string(),
            });
        }
        self.stores
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStore(name.to_string()))
    }

    /// A connected store with typed keys and values.
    pub fn typed_store<K, V, KS, VS>(
        &self,
        name: &str,
        keys: KS,
        values: VS,
    ) -> Result<TypedStore<KS, VS>>
    where
        KS: Serde<Item = K>,
        VS: Serde<Item = V>,
    {
        Ok(TypedStore::new(self.store(name)?, keys, values))
    }

    /// A global store (read-only; every task of every instance sees all of it).
    pub fn global_store(&self, name: &str) -> Result<Arc<dyn ReadOnlyKeyValueStore>> {
        self.global_stores
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStore(name.to_string()))
    }

    /// A new record cache for this processor, sharing the task's `cache.max.bytes.buffering`
    /// budget with the task's other caches (disabled when the budget is 0).
    pub fn record_cache(&self) -> RecordCache {
        RecordCache::new(self.cache.clone())
    }

    /// Asks for `Processor::punctuate` every `interval` of stream time or wall-clock time.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> Result<()> {
        if interval.is_zero() {
            return Err(Error::InvalidConfig(format!(
                "{}: a punctuation interval must be positive",
                self.name
            )));
        }
        let next = match kind {
            PunctuationType::WallClockTime => Some(self.wall_clock + interval.as_millis() as i64),
            PunctuationType::StreamTime => None,
        };
        self.schedules.push(Schedule {
            node: self.node,
            interval,
            kind,
            next,
        });
        Ok(())
    }
}
