//! Restore: rebuilds a store from its changelog partition before processing starts.
//!
//! Reads with an rdkafka consumer that is *assigned* the partition (no consumer group: a first
//! group join is slow on the local broker) and stops at librdkafka's partition-EOF event. The
//! local broker (tansu) answers watermark/ListOffsets queries wrongly, so the end of the log is
//! never asked for; an empty partition ends with EOF at its first offset. Records are applied in
//! batches through [`StateStore::restore_batch`], bypassing the changelog, and the store is
//! flushed at the end; the caller then writes the checkpoint
//! ([`RestoreStats::checkpoint_offset`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::store::{ChangelogRecord, StateStore};
use crate::{Error, Result};

/// A consumer context for readers that stop at partition EOF: librdkafka also reports each EOF
/// through the client's error callback, which the default context logs at ERROR level. Here
/// EOF is the expected end of a read, so it is logged at debug level; other errors as before.
pub struct EofAwareContext;

impl rdkafka::ClientContext for EofAwareContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF) => log::debug!("{reason}"),
            _ => log::error!("librdkafka: {error}: {reason}"),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for EofAwareContext {}

#[derive(Debug, Clone)]
pub struct RestoreConfig {
    pub bootstrap_servers: String,
    /// Records applied per `restore_batch` call.
    pub batch_size: usize,
    /// How long the consumer may go without a record or EOF before restore fails.
    pub stall_timeout: Duration,
    /// Further consumer properties, applied last (they may override the defaults).
    pub properties: Vec<(String, String)>,
}

impl RestoreConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        RestoreConfig {
            bootstrap_servers: bootstrap_servers.into(),
            batch_size: 10_000,
            stall_timeout: Duration::from_secs(30),
            properties: Vec::new(),
        }
    }

    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    fn create_consumer(&self) -> Result<BaseConsumer<EofAwareContext>> {
        self.consumer_config()
            .create_with_context(EofAwareContext)
            .map_err(|e| Error::kafka("creating the restore consumer", e))
    }

    fn consumer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            // librdkafka wants a group id even for `assign`; no group is joined and nothing is
            // committed with it.
            .set("group.id", "ks-stores-restore")
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A checkpoint past the log (topic recreated, or compacted away) restores everything.
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestoreStats {
    /// Records applied (tombstones included).
    pub records: u64,
    pub seconds: f64,
    /// The offset the partition ended at: the next offset to read.
    pub end_offset: i64,
}

impl RestoreStats {
    /// What to checkpoint after this restore: the last offset the store now reflects, or `None`
    /// when the partition was empty from the start.
    pub fn checkpoint_offset(&self) -> Option<i64> {
        (self.end_offset > 0).then(|| self.end_offset - 1)
    }

    pub fn records_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Applies `topic[partition]` to `store`, from the record after `checkpoint` (the offset of the
/// last record the store already holds) or from the beginning, up to the end of the partition.
pub fn restore(
    store: &dyn StateStore,
    config: &RestoreConfig,
    topic: &str,
    partition: i32,
    checkpoint: Option<i64>,
) -> Result<RestoreStats> {
    let mut restorer = Restorer::start(config, topic, partition, checkpoint)?;
    loop {
        if let Some(stats) = restorer.step(store, Duration::from_secs(1))? {
            return Ok(stats);
        }
    }
}

/// A restore done in slices: [`Restorer::step`] applies what arrives within a time budget and
/// returns, so a caller with its own deadlines (a stream thread that must poll its group
/// consumer within `max.poll.interval.ms`) restores between its other work.
pub struct Restorer {
    consumer: ReturnedOnDrop,
    topic: String,
    partition: i32,
    checkpoint: Option<i64>,
    batch: Vec<ChangelogRecord>,
    batch_size: usize,
    stall_timeout: Duration,
    records: u64,
    first_offset: Option<i64>,
    next_offset: Option<i64>,
    started: Instant,
    last_progress: Instant,
}

/// How far a restore has come, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestoreProgress {
    /// Records applied (or batched to apply) so far.
    pub records: u64,
    /// Records per second since the restore started.
    pub records_per_second: f64,
    /// The share of the changelog partition read, 0.0–1.0: from the first record read to the
    /// end the broker last reported with a fetch. `None` before the first fetch. An estimate
    /// (the end moves, and a broker may report it late), so it stays below 1.0 until the
    /// restore has met the partition's end.
    pub fraction: Option<f64>,
}

impl Restorer {
    /// Assigns the changelog partition, from the record after `checkpoint` or the beginning.
    pub fn start(
        config: &RestoreConfig,
        topic: &str,
        partition: i32,
        checkpoint: Option<i64>,
    ) -> Result<Restorer> {
        Self::start_on(
            config.create_consumer()?,
            None,
            config,
            topic,
            partition,
            checkpoint,
        )
    }

    /// As [`Restorer::start`], on a connected consumer of `pool` (one is created if none is
    /// idle); the consumer goes back to the pool when the restorer is dropped.
    pub fn start_pooled(
        pool: &Arc<RestoreConsumers>,
        topic: &str,
        partition: i32,
        checkpoint: Option<i64>,
    ) -> Result<Restorer> {
        let consumer = pool.take()?;
        Self::start_on(
            consumer,
            Some(pool.clone()),
            &pool.config,
            topic,
            partition,
            checkpoint,
        )
    }

    fn start_on(
        consumer: BaseConsumer<EofAwareContext>,
        pool: Option<Arc<RestoreConsumers>>,
        config: &RestoreConfig,
        topic: &str,
        partition: i32,
        checkpoint: Option<i64>,
    ) -> Result<Restorer> {
        let consumer = ReturnedOnDrop {
            consumer: Some(consumer),
            pool,
        };
        let start = match checkpoint {
            Some(c) => Offset::Offset(c + 1),
            None => Offset::Beginning,
        };
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, start)
            .map_err(|e| Error::kafka(format!("assigning {topic}[{partition}]"), e))?;
        consumer
            .assign(&assignment)
            .map_err(|e| Error::kafka(format!("assigning {topic}[{partition}]"), e))?;
        let batch_size = config.batch_size.max(1);
        Ok(Restorer {
            consumer,
            topic: topic.to_string(),
            partition,
            checkpoint,
            batch: Vec::with_capacity(batch_size.min(100_000)),
            batch_size,
            stall_timeout: config.stall_timeout,
            records: 0,
            first_offset: None,
            next_offset: None,
            started: Instant::now(),
            last_progress: Instant::now(),
        })
    }

    /// Records applied so far.
    pub fn records(&self) -> u64 {
        self.records + self.batch.len() as u64
    }

    /// Progress so far: records, rate, and the share of the partition read. The share asks
    /// the broker for the partition's high watermark (one round trip, at most 200 ms), so call
    /// this for an occasional report, not per batch.
    pub fn progress(&self) -> RestoreProgress {
        let records = self.records();
        let fraction = match (self.first_offset, self.next_offset) {
            (Some(first), Some(next)) => self
                .consumer
                .fetch_watermarks(&self.topic, self.partition, Duration::from_millis(200))
                .ok()
                .filter(|(_, high)| *high > first)
                .map(|(_, high)| ((next - first) as f64 / (high - first) as f64).clamp(0.0, 0.99)),
            _ => None,
        };
        RestoreProgress {
            records,
            records_per_second: records as f64 / self.started.elapsed().as_secs_f64().max(1e-3),
            fraction,
        }
    }

    /// Applies what arrives within `budget` to `store`; `Some` once the end of the partition
    /// was reached (the store is flushed then), `None` when there is more to do.
    pub fn step(
        &mut self,
        store: &dyn StateStore,
        budget: Duration,
    ) -> Result<Option<RestoreStats>> {
        let deadline = Instant::now() + budget;
        let (topic, partition) = (self.topic.clone(), self.partition);
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            match self.consumer.poll(wait) {
                Some(Ok(m)) => {
                    self.last_progress = Instant::now();
                    self.first_offset.get_or_insert(m.offset());
                    self.next_offset = Some(m.offset() + 1);
                    let Some(key) = m.key() else {
                        log::warn!(
                            "skipping a changelog record without key at {topic}[{partition}]@{}",
                            m.offset()
                        );
                        continue;
                    };
                    self.batch
                        .push((key.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    if self.batch.len() >= self.batch_size {
                        store.restore_batch(&self.batch)?;
                        self.records += self.batch.len() as u64;
                        self.batch.clear();
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return self.finish(store).map(Some),
                Some(Err(e)) => {
                    // Transient client errors (a broker reconnect, metadata not there yet) are
                    // retried by librdkafka; only a stall ends the restore.
                    log::warn!("restoring {topic}[{partition}]: {e}");
                }
                None => {}
            }
            if self.last_progress.elapsed() > self.stall_timeout {
                return Err(Error::RestoreStalled {
                    topic,
                    partition,
                    offset: self
                        .next_offset
                        .unwrap_or(self.checkpoint.map_or(0, |c| c + 1)),
                    seconds: self.stall_timeout.as_secs(),
                });
            }
            if Instant::now() >= deadline {
                // What was read is applied, so progress is visible between slices.
                if !self.batch.is_empty() {
                    store.restore_batch(&self.batch)?;
                    self.records += self.batch.len() as u64;
                    self.batch.clear();
                }
                return Ok(None);
            }
        }
    }

    fn finish(&mut self, store: &dyn StateStore) -> Result<RestoreStats> {
        if !self.batch.is_empty() {
            store.restore_batch(&self.batch)?;
            self.records += self.batch.len() as u64;
            self.batch.clear();
        }
        store.flush()?;
        let end_offset = match self.next_offset {
            Some(o) => o,
            // Nothing read: the consumer's position is where EOF was met.
            None => position(&self.consumer, &self.topic, self.partition)
                .unwrap_or(self.checkpoint.map_or(0, |c| c + 1)),
        };
        Ok(RestoreStats {
            records: self.records,
            seconds: self.started.elapsed().as_secs_f64(),
            end_offset,
        })
    }
}

/// Restore consumers kept connected between restores, as Kafka Streams keeps one restore
/// consumer per stream thread. A restore that starts on a fresh client first waits for its
/// connection, metadata and the partition leader's connection (tens of milliseconds, more on a
/// busy machine); when a task moves onto a caught-up standby copy that wait is most of its
/// restore. [`RestoreConsumers::prepare`] connects spares ahead of need, and a finished
/// restore's consumer is unassigned and kept for the next one.
pub struct RestoreConsumers {
    config: RestoreConfig,
    /// How many idle consumers to keep.
    keep: usize,
    idle: Mutex<Vec<BaseConsumer<EofAwareContext>>>,
    /// Whether a background thread is creating spares.
    preparing: AtomicBool,
}

impl RestoreConsumers {
    /// A pool of restore consumers made from `config`, keeping up to `keep` idle ones.
    pub fn new(config: RestoreConfig, keep: usize) -> Arc<RestoreConsumers> {
        Arc::new(RestoreConsumers {
            config,
            keep: keep.max(1),
            idle: Mutex::new(Vec::new()),
            preparing: AtomicBool::new(false),
        })
    }

    /// The configuration the pool's consumers are made from.
    pub fn config(&self) -> &RestoreConfig {
        &self.config
    }

    /// Idle consumers ready now.
    pub fn idle(&self) -> usize {
        self.lock_idle().len()
    }

    /// Fills the pool up to `keep` connected consumers on a background thread (a no-op while
    /// one is already at it). A consumer that cannot be created or connected is logged; the
    /// restore that needs one then creates its own and reports the error itself.
    pub fn prepare(self: &Arc<Self>) {
        if self.idle() >= self.keep || self.preparing.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ks-restore-prepare".into())
            .spawn(move || {
                while pool.idle() < pool.keep {
                    let consumer = match pool.config.create_consumer() {
                        Ok(c) => c,
                        Err(e) => {
                            log::warn!("preparing a restore consumer: {e}");
                            break;
                        }
                    };
                    // Connects, and caches the metadata the next assignment needs.
                    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(10)) {
                        log::debug!("a spare restore consumer found no broker yet: {e}");
                    }
                    pool.lock_idle().push(consumer);
                }
                pool.preparing.store(false, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            self.preparing.store(false, Ordering::SeqCst);
            log::warn!("preparing restore consumers: cannot start a thread: {e}");
        }
    }

    fn take(self: &Arc<Self>) -> Result<BaseConsumer<EofAwareContext>> {
        let idle = self.lock_idle().pop();
        let consumer = match idle {
            Some(c) => c,
            None => self.config.create_consumer()?,
        };
        self.prepare();
        Ok(consumer)
    }

    fn give_back(&self, consumer: BaseConsumer<EofAwareContext>) {
        if let Err(e) = consumer.unassign() {
            log::debug!("a finished restore consumer would not unassign ({e}); closed");
            close_in_background(consumer);
            return;
        }
        let mut idle = self.lock_idle();
        if idle.len() < self.keep {
            idle.push(consumer);
        } else {
            drop(idle);
            close_in_background(consumer);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<BaseConsumer<EofAwareContext>>> {
        // A panic elsewhere while holding the lock leaves a usable list behind.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for RestoreConsumers {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        for consumer in idle {
            close_in_background(consumer);
        }
    }
}

/// Destroys a consumer on a background thread. Destroying a librdkafka consumer blocks until
/// its broker threads have finished their in-flight requests (about 100 ms with a fetch
/// outstanding); a stream thread that dropped a finished restore consumer itself would hold a
/// restored task back that long — once the larger part of a failover onto a standby copy.
fn close_in_background(consumer: BaseConsumer<EofAwareContext>) {
    let spawned = std::thread::Builder::new()
        .name("ks-restore-close".into())
        .spawn(move || drop(consumer));
    if let Err(e) = spawned {
        // The consumer went down with the closure, on this thread.
        log::warn!("closing a restore consumer in the background failed ({e}); closed inline");
    }
}

/// A restorer's consumer: back to its pool when the restore ends, else closed in the
/// background.
struct ReturnedOnDrop {
    consumer: Option<BaseConsumer<EofAwareContext>>,
    pool: Option<Arc<RestoreConsumers>>,
}

impl std::ops::Deref for ReturnedOnDrop {
    type Target = BaseConsumer<EofAwareContext>;

    fn deref(&self) -> &Self::Target {
        match &self.consumer {
            Some(c) => c,
            // Only `drop` takes the consumer out.
            None => unreachable!("a restore consumer is taken only when its restorer drops"),
        }
    }
}

impl Drop for ReturnedOnDrop {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        match &self.pool {
            Some(pool) => pool.give_back(consumer),
            None => close_in_background(consumer),
        }
    }
}

fn position(consumer: &BaseConsumer<EofAwareContext>, topic: &str, partition: i32) -> Option<i64> {
    let tpl = consumer.position().ok()?;
    match tpl.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}
