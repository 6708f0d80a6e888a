//! The stream thread's producer, shared by the sinks (as a [`RecordCollector`]) and the
//! changelogging stores (as a [`ChangelogSink`]): one producer, so one transaction covers both
//! under exactly-once, and one flush acknowledges both under at-least-once.

use crate::record::OutputRecord;
use crate::runtime::config::{ProductionErrorHandling, StreamsConfig};
use crate::task::RecordCollector;
use crate::{Error, Result};
use parking_lot::Mutex;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Delivery accounting: the highest acknowledged offset per partition (for checkpoints) and the
/// first failure (which fails the next commit).
#[derive(Default)]
pub struct Deliveries {
    acked: Mutex<BTreeMap<(String, i32), i64>>,
    /// Failed deliveries of changelog records: always fatal.
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Failed deliveries of output records: fatal unless the production handler continues.
    failed_output: AtomicU64,
    first_output_error: Mutex<Option<String>>,
    /// Told at every statistics report whether a broker connection is up. The producer's
    /// reports come from its own polling thread, so they keep coming while the stream thread
    /// waits in a flush for a broker that is away.
    on_broker_state: Option<BrokerStateHook>,
}

/// Called with `true` when the client has a broker connection up, `false` when none is.
pub type BrokerStateHook = Box<dyn Fn(bool) + Send + Sync>;

impl ClientContext for Deliveries {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(hook) = &self.on_broker_state {
            hook(broker_up(&statistics));
        }
    }
}

/// Whether librdkafka reports any (non-bootstrap) broker connection as up.
pub(crate) fn broker_up(statistics: &rdkafka::Statistics) -> bool {
    statistics
        .brokers
        .values()
        .any(|b| b.nodeid >= 0 && b.state == "UP")
}

/// What a record is, carried through librdkafka as its delivery opaque: an output record
/// (subject to the production handler) or one that must not be lost (changelog, dead letter).
const OUTPUT: usize = 0;
const CHANGELOG: usize = 1;

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, kind: usize) {
        match result {
            Ok(m) => {
                let mut acked = self.acked.lock();
                let e = acked
                    .entry((m.topic().to_string(), m.partition()))
                    .or_insert(-1);
                *e = (*e).max(m.offset());
            }
            Err((e, m)) => {
                let (count, first) = if kind == CHANGELOG {
                    (&self.failed, &self.first_error)
                } else {
                    (&self.failed_output, &self.first_output_error)
                };
                count.fetch_add(1, Ordering::Relaxed);
                first
                    .lock()
                    .get_or_insert_with(|| format!("{} (topic {})", e, m.topic()));
            }
        }
    }
}

/// The producer handle of one stream thread.
pub struct StreamProducer {
    producer: ThreadedProducer<Deliveries>,
    /// Records handed to librdkafka since the last flush: a commit with nothing processed
    /// still flushes what punctuations and closing processors sent.
    unflushed: AtomicU64,
    production: ProductionErrorHandling,
    /// Output records dropped by the production handler (the instance's metric).
    dropped: Arc<AtomicU64>,
    partitions: Mutex<HashMap<String, i32>>,
    transactional: bool,
    /// Set when a transactional call was refused because a newer producer with this
    /// transactional id took over: the open transaction is the successor's to abort (its
    /// `init_transactions` does), and asking the coordinator again only waits out a timeout.
    fenced: AtomicBool,
}

impl StreamProducer {
    pub fn new(
        config: &StreamsConfig,
        transactional_id: Option<&str>,
        on_broker_state: Option<BrokerStateHook>,
        dropped: Arc<AtomicU64>,
    ) -> Result<Arc<StreamProducer>> {
        let mut c = config.client_for(ks_kafka::ClientKind::Producer);
        if on_broker_state.is_some() {
            c.set("statistics.interval.ms", "1000");
        }
        // Kafka Streams' delivery.timeout.ms (120 s): a broker that is away for a while (a
        // restart, a leader election) delays delivery instead of failing the thread.
        c.set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            // Bounded: a full queue makes `send_raw` wait (back-pressure) instead of buffering
            // up to librdkafka's default 1 GiB or 100 000 messages (each with its bookkeeping).
            // 20 000 results are still tens of milliseconds of output at full rate, far more
            // than the 5 ms linger batches.
            .set("queue.buffering.max.kbytes", "4096")
            .set("queue.buffering.max.messages", "20000")
            // As Kafka's own producer defaults to since 3.0: a batch retried after a broker
            // failure (written, but its acknowledgement lost) is not written twice.
            .set("enable.idempotence", "true");
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
        // The user's tuning (linger, queue bounds) wins over the defaults above.
        config.apply_user_properties(ks_kafka::ClientKind::Producer, &mut c);
        let producer: ThreadedProducer<Deliveries> = c
            .create_with_context(Deliveries {
                on_broker_state,
                ..Deliveries::default()
            })
            .map_err(Error::kafka("creating the producer"))?;
        if transactional_id.is_some() {
            init_transactions(&producer)?;
        }
        Ok(Arc::new(StreamProducer {
            producer,
            unflushed: AtomicU64::new(0),
            production: config.production_error_handling,
            dropped,
            partitions: Mutex::new(HashMap::new()),
            transactional: transactional_id.is_some(),
            fenced: AtomicBool::new(false),
        }))
    }

    /// Whether records were sent since the last flush.
    pub fn has_unflushed(&self) -> bool {
        self.unflushed.load(Ordering::Relaxed) > 0
    }

    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// The producer's fatal error when it is one of fencing: a send that failed with
    /// librdkafka's generic `Fatal` (a changelog write, say) reaches the caller wrapped in
    /// whatever was writing, so the thread asks the producer what the fatal error really was.
    pub fn fencing_error(&self) -> Option<String> {
        let (code, reason) = self.producer.client().fatal_error()?;
        is_fencing(code).then(|| format!("{code:?}: {reason}"))
    }

    /// Sends an output record (a sink's, or a dead letter). A send the producer refuses goes
    /// to the production handler.
    pub fn send_output(&self, out: &OutputRecord) -> Result<()> {
        match self.send_raw(
            OUTPUT,
            &out.topic,
            out.partition,
            out.record.key.as_deref(),
            out.record.value.as_deref(),
            Some(out.record.timestamp),
            &out.record.headers,
        ) {
            Err(e) if self.production == ProductionErrorHandling::Continue => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                log::warn!("dropping a record for {}: {e}", out.topic);
                Ok(())
            }
            other => other,
        }
    }

    /// Sends a dead letter: like a changelog write it is never dropped, a failure fails the task
    /// (the record it stands for is not processed otherwise).
    pub fn send_dead_letter(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: &[(String, Vec<u8>)],
    ) -> Result<()> {
        self.send_raw(CHANGELOG, topic, None, key, value, timestamp, headers)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_raw(
        &self,
        kind: usize,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: &[(String, Vec<u8>)],
    ) -> Result<()> {
        {
            let mut rec = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, kind);
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
            // The context is formatted only on failure: a `format!` per record cost ~3 %.
            .map_err(|e| Error::kafka(format!("producing to {topic}"))(e))?;
            self.unflushed.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    /// Waits for every acknowledgement; fails if any message was lost since the last flush.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.producer
            .flush(timeout)
            .map_err(Error::kafka("flushing the producer"))?;
        self.unflushed.store(0, Ordering::Relaxed);
        let ctx = self.producer.context();
        let failed_output = ctx.failed_output.swap(0, Ordering::SeqCst);
        let first_output = ctx.first_output_error.lock().take().unwrap_or_default();
        if failed_output > 0 {
            if self.production == ProductionErrorHandling::Continue {
                self.dropped.fetch_add(failed_output, Ordering::Relaxed);
                log::warn!(
                    "{failed_output} output record(s) not delivered, dropped: {first_output}"
                );
            } else {
                return Err(Error::kafka(format!(
                    "an output record was not delivered: {first_output}"
                ))(KafkaError::Flush(
                    RDKafkaErrorCode::MessageTimedOut,
                )));
            }
        }
        if ctx.failed.swap(0, Ordering::SeqCst) > 0 {
            let first = ctx.first_error.lock().take().unwrap_or_default();
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
        self.producer
            .context()
            .acked
            .lock()
            .get(&(topic.to_string(), partition))
            .copied()
    }

    pub fn begin(&self) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(|e| self.refused("beginning a transaction", e))
    }

    pub fn commit(
        &self,
        offsets: &rdkafka::TopicPartitionList,
        group: Option<&rdkafka::consumer::ConsumerGroupMetadata>,
    ) -> Result<()> {
        if let (Some(group), true) = (group, offsets.count() > 0) {
            self.producer
                .send_offsets_to_transaction(offsets, group, Duration::from_secs(30))
                .map_err(|e| self.refused("adding offsets to the transaction", e))?;
        }
        self.producer
            .commit_transaction(Duration::from_secs(60))
            .map_err(|e| self.refused("committing the transaction", e))?;
        // Deliveries inside a committed transaction are acknowledged by now.
        self.flush(Duration::from_secs(5))
    }

    /// Aborts the open transaction. A fenced producer does not ask the coordinator (the
    /// successor aborted the transaction when it started; the call would only time out) and
    /// reports the fencing instead.
    pub fn abort(&self) -> Result<()> {
        if self.fenced.load(Ordering::SeqCst) || self.fencing_error().is_some() {
            return Err(Error::Fenced(
                "aborting the transaction: the producer was fenced, the successor aborted it"
                    .into(),
            ));
        }
        self.producer
            .abort_transaction(Duration::from_secs(30))
            .map_err(|e| self.refused("aborting the transaction", e))?;
        let ctx = self.producer.context();
        ctx.failed.store(0, Ordering::SeqCst);
        ctx.failed_output.store(0, Ordering::SeqCst);
        self.unflushed.store(0, Ordering::Relaxed);
        Ok(())
    }

    pub fn num_partitions(&self, topic: &str) -> Result<i32> {
        let known = self.partitions.lock().get(topic).copied();
        if let Some(n) = known {
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
        self.partitions.lock().insert(topic.to_string(), n);
        Ok(n)
    }
}

/// How long a starting thread keeps asking for its transactional id: the coordinator answers
/// only once the predecessor's open transaction is aborted, which after a crash may wait for
/// that transaction's timeout, and a broker that is still starting answers nothing for a while.
const INIT_TRANSACTIONS_FOR: Duration = Duration::from_secs(120);

/// `init_transactions`, called again after a retriable failure (a timeout: librdkafka resumes
/// where the last call stopped) until [`INIT_TRANSACTIONS_FOR`] has passed, as Kafka Streams
/// retries its producer's initialisation instead of failing the thread at the first timeout.
fn init_transactions(producer: &ThreadedProducer<Deliveries>) -> Result<()> {
    let deadline = std::time::Instant::now() + INIT_TRANSACTIONS_FOR;
    loop {
        match producer.init_transactions(Duration::from_secs(30)) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(e))
                if e.is_retriable() && std::time::Instant::now() < deadline =>
            {
                log::warn!("initialising transactions: {e}; asking again");
            }
            Err(e) => return Err(fenced_or("initialising transactions")(e)),
        }
    }
}

impl StreamProducer {
    /// A refused transactional call as the thread's error, remembering a fencing.
    fn refused(&self, what: &'static str, e: KafkaError) -> Error {
        let e = fenced_or(what)(e);
        if matches!(e, Error::Fenced(_)) {
            self.fenced.store(true, Ordering::SeqCst);
        }
        e
    }
}

/// A fatal transactional error means another producer with our transactional id took over
/// (or the coordinator bumped our epoch); a stale group generation in the transaction's offset
/// commit, or any error the transaction must be aborted for, means the tasks migrated.
fn fenced_or(what: &'static str) -> impl FnOnce(KafkaError) -> Error {
    move |e| {
        let fenced = e.rdkafka_error_code().is_some_and(is_fencing)
            || matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
        let migrated = matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::IllegalGeneration)
                | Some(RDKafkaErrorCode::UnknownMemberId)
                | Some(RDKafkaErrorCode::FencedInstanceId)
                | Some(RDKafkaErrorCode::RebalanceInProgress)
        ) || matches!(&e, KafkaError::Transaction(t) if t.txn_requires_abort());
        if fenced {
            Error::Fenced(format!("{what}: {e}"))
        } else if migrated {
            Error::TaskMigrated(format!("{what}: {e}"))
        } else {
            Error::kafka(what)(e)
        }
    }
}

/// The error codes that mean a newer producer with our transactional id took over.
fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::InvalidProducerIdMapping
    )
}

/// Sink output through the thread's producer.
pub struct ProducerCollector<'a>(pub &'a StreamProducer);

impl RecordCollector for ProducerCollector<'_> {
    fn send(&mut self, out: OutputRecord) -> Result<()> {
        self.0.send_output(&out)
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
            .send_raw(
                CHANGELOG,
                topic,
                Some(partition),
                Some(key),
                value,
                None,
                &[],
            )
            .map_err(|e| ks_stores::Error::ChangelogSend {
                topic: topic.to_string(),
                partition,
                reason: e.to_string(),
            })
    }
}
