//! The stream thread's producer, shared by the sinks (as a [`RecordCollector`]) and the
//! changelogging stores (as a [`ChangelogSink`]): one producer, so one transaction covers both
//! under exactly-once, and one flush acknowledges both under at-least-once.

use crate::record::OutputRecord;
use crate::runtime::config::StreamsConfig;
use crate::task::RecordCollector;
use crate::{Error, Result};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Delivery accounting (ks-kafka's tracker): the highest acknowledged offset per partition (for
/// checkpoints) and the first failure (which fails the next commit).
pub use ks_kafka::DeliveryTracker as Deliveries;

/// The producer handle of one stream thread.
pub struct StreamProducer {
    producer: ThreadedProducer<Deliveries>,
    partitions: Mutex<HashMap<String, i32>>,
    transactional: bool,
}

impl StreamProducer {
    pub fn new(
        config: &StreamsConfig,
        transactional_id: Option<&str>,
    ) -> Result<Arc<StreamProducer>> {
        let mut c = config.base_client();
        // Kafka Streams' delivery.timeout.ms (120 s): a broker that is away for a while (a
        // restart, a leader election) delays delivery instead of failing the thread.
        c.set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            // Bounded: a full queue makes `send_raw` wait (back-pressure) instead of buffering
            // up to librdkafka's default 1 GiB.
            .set("queue.buffering.max.kbytes", "16384");
        if let Some(id) = transactional_id {
            // Kafka Streams' exactly-once default: an instance that dies with a transaction
            // open blocks its partitions' readers (and its successor's offset fetch) until the
            // coordinator aborts it after this timeout. librdkafka requires the delivery timeout
            // not to exceed it.
            c.set("transactional.id", id)
                .set("enable.idempotence", "true")
                .set("transaction.timeout.ms", "10000")
                .set("message.timeout.ms", "10000");
        }
        for (k, v) in &config.client_properties {
            c.set(k, v);
        }
        let producer: ThreadedProducer<Deliveries> =
            c.create_with_context(Deliveries::default())
                .map_err(Error::kafka("creating the producer"))?;
        if transactional_id.is_some() {
            producer
                .init_transactions(Duration::from_secs(30))
                .map_err(fenced_or("initialising transactions"))?;
        }
        Ok(Arc::new(StreamProducer {
            producer,
            partitions: Mutex::new(HashMap::new()),
            transactional: transactional_id.is_some(),
        }))
    }

    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    pub fn send_raw(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: &[(String, Vec<u8>)],
    ) -> Result<()> {
        {
            let mut rec = BaseRecord::<[u8], [u8]>::to(topic);
            if let Some(p) = partition {
                rec = rec.partition(p);
            }
            if let Some(k) = key {
                rec = rec.key(k);
            }
            if let Some(v) = value {
                rec = rec.payload(v);
            }
            if let Some(ts) = timestamp.filter(|t| *t >= 0) {
                rec = rec.timestamp(ts);
            }
            if !headers.is_empty() {
                let mut h = OwnedHeaders::new_with_capacity(headers.len());
                for (name, v) in headers {
                    h = h.insert(Header {
                        key: name,
                        value: Some(v.as_slice()),
                    });
                }
                rec = rec.headers(h);
            }
            // Back-pressure: wait for acks to make room instead of buffering without bound.
            ks_kafka::send_with_backoff(
                rec,
                |r| self.producer.send(r),
                ks_kafka::pause(Duration::from_millis(2)),
            )
            .map_err(Error::kafka(format!("producing to {topic}")))
        }
    }

    /// Waits for every acknowledgement; fails if any message was lost since the last flush.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.producer
            .flush(timeout)
            .map_err(Error::kafka("flushing the producer"))?;
        let (failed, first) = self.producer.context().take_failures();
        if failed > 0 {
            let first = first.map(|f| f.to_string()).unwrap_or_default();
            return Err(
                Error::kafka(format!("a record was not delivered: {first}"))(KafkaError::Flush(
                    RDKafkaErrorCode::MessageTimedOut,
                )),
            );
        }
        Ok(())
    }

    /// The highest acknowledged offset of `topic[partition]`, if any record was acknowledged.
    pub fn acked_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.producer.context().acked_offset(topic, partition)
    }

    pub fn begin(&self) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(fenced_or("beginning a transaction"))
    }

    pub fn commit(
        &self,
        offsets: &rdkafka::TopicPartitionList,
        group: Option<&rdkafka::consumer::ConsumerGroupMetadata>,
    ) -> Result<()> {
        if let (Some(group), true) = (group, offsets.count() > 0) {
            self.producer
                .send_offsets_to_transaction(offsets, group, Duration::from_secs(30))
                .map_err(fenced_or("adding offsets to the transaction"))?;
        }
        self.producer
            .commit_transaction(Duration::from_secs(60))
            .map_err(fenced_or("committing the transaction"))?;
        // Deliveries inside a committed transaction are acknowledged by now.
        self.flush(Duration::from_secs(5))
    }

    pub fn abort(&self) -> Result<()> {
        self.producer
            .abort_transaction(Duration::from_secs(30))
            .map_err(fenced_or("aborting the transaction"))?;
        // Failures of the aborted transaction's records fail nothing more.
        let _ = self.producer.context().take_failures();
        Ok(())
    }

    pub fn num_partitions(&self, topic: &str) -> Result<i32> {
        if let Some(n) = self
            .partitions
            .lock()
            .ok()
            .and_then(|p| p.get(topic).copied())
        {
            return Ok(n);
        }
        let md = self
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(Error::kafka(format!("metadata of {topic}")))?;
        let n = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len() as i32)
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::InvalidTopology(format!("sink topic {topic} does not exist")))?;
        if let Ok(mut p) = self.partitions.lock() {
            p.insert(topic.to_string(), n);
        }
        Ok(n)
    }
}

/// A fatal transactional error means another producer with our transactional id took over.
fn fenced_or(what: &'static str) -> impl FnOnce(KafkaError) -> Error {
    move |e| {
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fenced)
                | Some(RDKafkaErrorCode::ProducerFenced)
                | Some(RDKafkaErrorCode::InvalidProducerEpoch)
                | Some(RDKafkaErrorCode::InvalidProducerIdMapping)
        ) || matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
        if fenced {
            Error::Fenced(format!("{what}: {e}"))
        } else {
            Error::kafka(what)(e)
        }
    }
}

/// Sink output through the thread's producer.
pub struct ProducerCollector<'a>(pub &'a StreamProducer);

impl RecordCollector for ProducerCollector<'_> {
    fn send(&mut self, out: OutputRecord) -> Result<()> {
        self.0.send_raw(
            &out.topic,
            out.partition,
            out.record.key.as_deref(),
            out.record.value.as_deref(),
            Some(out.record.timestamp),
            &out.record.headers,
        )
    }

    fn num_partitions(&mut self, topic: &str) -> Result<i32> {
        self.0.num_partitions(topic)
    }
}

/// Changelog writes through the thread's producer, to the task's partition.
pub struct ProducerChangelogSink(pub Arc<StreamProducer>);

impl ks_stores::ChangelogSink for ProducerChangelogSink {
    fn send(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> ks_stores::Result<()> {
        self.0
            .send_raw(topic, Some(partition), Some(key), value, None, &[])
            .map_err(|e| ks_stores::Error::ChangelogSend {
                topic: topic.to_string(),
                partition,
                reason: e.to_string(),
            })
    }
}
