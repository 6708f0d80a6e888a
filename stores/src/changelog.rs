//! Changelogging: every write to a store also goes to its compacted changelog topic
//! `<application.id>-<store>-changelog`, partition = the task's partition, deletes as tombstones.
//!
//! The engine owns the Kafka producer (it may be transactional), so writes go through the small
//! [`ChangelogSink`] trait. [`KafkaChangelogSink`] is a ready implementation for standalone use
//! and tests: its [`KafkaChangelogSink::flush`] waits for the acks and reports the highest acked
//! offset per partition, which is what a checkpoint may then record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::store::{
    ChangelogRecord, KeyValue, KeyValueStore, ReadOnlyKeyValueStore, StateStore, Visitor,
};
use crate::{Error, Result};

/// The changelog topic of a store: `<application.id>-<store>-changelog`.
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// Where changelog records go. `value` `None` is a tombstone.
pub trait ChangelogSink: Send + Sync {
    fn send(&self, topic: &str, partition: i32, key: &[u8], value: Option<&[u8]>) -> Result<()>;
}

/// A store whose every write is also sent to its changelog. Reads, flush, close and restore go
/// straight to the inner store (restored records came from the changelog).
pub struct ChangeLoggingStore {
    inner: Arc<dyn KeyValueStore>,
    sink: Arc<dyn ChangelogSink>,
    topic: String,
    partition: i32,
}

impl ChangeLoggingStore {
    pub fn new(
        inner: Arc<dyn KeyValueStore>,
        sink: Arc<dyn ChangelogSink>,
        topic: impl Into<String>,
        partition: i32,
    ) -> Self {
        ChangeLoggingStore {
            inner,
            sink,
            topic: topic.into(),
            partition,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn inner(&self) -> &Arc<dyn KeyValueStore> {
        &self.inner
    }

    fn log(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.sink.send(&self.topic, self.partition, key, value)
    }
}

impl StateStore for ChangeLoggingStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn close(&self) -> Result<()> {
        self.inner.close()
    }

    fn restore_batch(&self, records: &[ChangelogRecord]) -> Result<()> {
        self.inner.restore_batch(records)
    }
}

impl ReadOnlyKeyValueStore for ChangeLoggingStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn scan(&self, from: Option<&[u8]>, to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        self.inner.scan(from, to, visit)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.inner.range(from, to)
    }
}

// Kafka Streams' order: the store first, then the log. A failed send fails the call, and the
// engine treats that as fatal for the task (the store is then rebuilt from the changelog).
impl KeyValueStore for ChangeLoggingStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.inner.put(key, value)?;
        self.log(key, Some(value))
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let existing = self.inner.put_if_absent(key, value)?;
        if existing.is_none() {
            self.log(key, Some(value))?;
        }
        Ok(existing)
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let old = self.inner.delete(key)?;
        // Always a tombstone, even for an absent key: the changelog may still hold it.
        self.log(key, None)?;
        Ok(old)
    }

    fn put_all(&self, entries: &[KeyValue]) -> Result<()> {
        self.inner.put_all(entries)?;
        for (k, v) in entries {
            self.log(k, Some(v))?;
        }
        Ok(())
    }
}

/// Highest acked offset per (topic, partition).
pub type AckedOffsets = BTreeMap<(String, i32), i64>;

/// Records what the broker acked, from librdkafka's delivery reports (ks-kafka's tracker).
pub use ks_kafka::DeliveryTracker as AckTracker;

/// A [`ChangelogSink`] over an rdkafka producer (acks=all, idempotent).
pub struct KafkaChangelogSink {
    producer: ThreadedProducer<AckTracker>,
    flush_timeout: Duration,
}

impl KafkaChangelogSink {
    pub fn new(bootstrap_servers: &str) -> Result<Self> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap_servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5");
        Self::from_config(&config)
    }

    /// For producer settings of one's own; delivery reports are always tracked.
    pub fn from_config(config: &ClientConfig) -> Result<Self> {
        let producer = config
            .create_with_context(AckTracker::default())
            .map_err(|e| Error::kafka("creating the changelog producer", e))?;
        Ok(KafkaChangelogSink {
            producer,
            flush_timeout: Duration::from_secs(30),
        })
    }

    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Waits until every record sent so far is acked (or failed), and returns the highest acked
    /// offset per partition since this sink was created. Any failed delivery fails the flush:
    /// a checkpoint must not be written past a record the changelog does not hold.
    pub fn flush(&self) -> Result<AckedOffsets> {
        self.producer
            .flush(self.flush_timeout)
            .map_err(|e| Error::ChangelogFlush(format!("waiting for acks: {e}")))?;
        let (failed, first) = self.producer.context().take_failures();
        if failed > 0 {
            return Err(Error::ChangelogFlush(format!(
                "{failed} records not delivered, first: {}",
                first.map(|f| f.to_string()).unwrap_or_default()
            )));
        }
        self.acked_offsets()
    }

    /// The highest acked offset per partition so far, without waiting.
    pub fn acked_offsets(&self) -> Result<AckedOffsets> {
        Ok(self.producer.context().acked_offsets())
    }
}

impl ChangelogSink for KafkaChangelogSink {
    fn send(&self, topic: &str, partition: i32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let mut record = BaseRecord::<[u8], [u8], ()>::to(topic)
            .partition(partition)
            .key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        let deadline = std::time::Instant::now() + self.flush_timeout;
        // The local queue is full: the producer's thread is draining it; wait a little.
        ks_kafka::send_with_backoff(
            record,
            |r| self.producer.send(r),
            ks_kafka::pause_until(Duration::from_millis(1), deadline),
        )
        .map_err(|e| Error::ChangelogSend {
            topic: topic.to_string(),
            partition,
            reason: e.to_string(),
        })
    }
}

/// A sink that keeps what it is sent, in order: for tests and for stores whose changelog is
/// inspected in-process.
#[derive(Default)]
pub struct MemoryChangelogSink {
    records: Mutex<Vec<(String, i32, ChangelogRecord)>>,
}

impl MemoryChangelogSink {
    pub fn records(&self) -> Vec<(String, i32, ChangelogRecord)> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl ChangelogSink for MemoryChangelogSink {
    fn send(&self, topic: &str, partition: i32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.records
            .lock()
            .map_err(|_| Error::LockPoisoned("memory changelog sink".into()))?
            .push((
                topic.to_string(),
                partition,
                (key.to_vec(), value.map(<[u8]>::to_vec)),
            ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryKeyValueStore;

    #[test]
    fn every_write_is_logged_and_deletes_are_tombstones() {
        let sink = Arc::new(MemoryChangelogSink::default());
        let store = ChangeLoggingStore::new(
            Arc::new(InMemoryKeyValueStore::new("s")),
            sink.clone(),
            changelog_topic("app", "s"),
            3,
        );
        store.put(b"a", b"1").unwrap();
        assert_eq!(
            store.put_if_absent(b"a", b"2").unwrap(),
            Some(b"1".to_vec())
        );
        store.delete(b"a").unwrap();
        store
            .restore_batch(&[(b"r".to_vec(), Some(b"x".to_vec()))])
            .unwrap();
        let logged = sink.records();
        assert_eq!(
            logged,
            vec![
                (
                    "app-s-changelog".to_string(),
                    3,
                    (b"a".to_vec(), Some(b"1".to_vec()))
                ),
                ("app-s-changelog".to_string(), 3, (b"a".to_vec(), None)),
            ]
        );
        assert_eq!(store.get(b"r").unwrap(), Some(b"x".to_vec()));
    }
}
