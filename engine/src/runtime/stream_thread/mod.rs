//! A stream thread: one consumer in the application's group, the tasks of the partitions it is
//! assigned, one producer for their output and changelogs. Split as Kafka Streams splits it:
//!
//! - `mod.rs`: the thread (its poll loop, the rebalance callbacks, processing and punctuation);
//! - `task_manager.rs`: which tasks run, and their assign / suspend / revoke / lose / close;
//! - `../state_manager.rs`: a task's stores, restored in slices between polls;
//! - `commit.rs`: the commit protocol; `../producer.rs` is the record collector;
//! - `dead_letter.rs`: the processing handler (continue, fail, dead letter).
//!
//! Rebalance callbacks run inside `poll` on this thread (rdkafka's consumer context). On revoke
//! the revoked tasks are closed after everything processed so far is committed; on assign the
//! new tasks open their stores, and the loop restores them before their first record.

use crate::record::{Record, RecordMetadata};
use crate::runtime::config::{ErrorHandling, ProcessingGuarantee};

mod commit;
mod dead_letter;
mod task_manager;
use crate::runtime::producer::{ProducerChangelogSink, ProducerCollector, StreamProducer};
use crate::runtime::state_manager::{self, RestoringTask, TaskState};
use crate::runtime::{now_ms, Shared, TaskEntry};
use crate::task::task_id;
use crate::{Error, Result};
use ks_stores::{ChangelogSink, StateStore};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Core {
    shared: Arc<Shared>,
    name: String,
    producer: Arc<StreamProducer>,
    sink: Arc<dyn ChangelogSink>,
    tasks: BTreeMap<String, TaskState>,
    /// Tasks whose stores are being restored, between polls (see `state_manager`); their
    /// partitions are paused until they are caught up.
    restoring: BTreeMap<String, RestoringTask>,
    /// Tasks committed and set aside by an eager revoke (every partition is revoked at each
    /// rebalance under the range assignor): resumed as they are if the next assignment gives
    /// their partitions back, closed otherwise, so a task that stays is never restored again.
    suspended: BTreeMap<String, TaskState>,
    /// The input partitions this thread holds: their task and the next offset to commit.
    /// A handful per thread, so a vector searched by `&str` beats hashing a cloned topic
    /// name per record.
    partitions: Vec<PartitionState>,
    dirty: bool,
    /// A failure inside a rebalance callback, surfaced by the poll loop.
    failure: Option<Error>,
}

struct PartitionState {
    topic: String,
    partition: i32,
    task: String,
    /// Next offset to commit, when records were processed since the last commit.
    consumed: Option<i64>,
}

struct StreamContext {
    core: Arc<Mutex<Core>>,
}

impl ClientContext for StreamContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        if let Ok(core) = self.core.try_lock() {
            core.shared.metrics.set_lag(&core.name, lag.max(0) as u64);
        }
    }
}

impl ConsumerContext for StreamContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let Ok(mut core) = self.core.lock() else {
            return;
        };
        core.shared.set_thread_ready(&core.name, false);
        let revoked: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        // Lost (the session expired, the generation is stale): the partitions may already be
        // someone else's, so nothing is committed for them.
        let lost = consumer.assignment_lost();
        log::info!(
            "{}: partitions {}: {revoked:?}",
            core.name,
            if lost { "lost" } else { "revoked" }
        );
        // Under exactly-once a closing processor's store writes belong to a transaction, so a
        // revoked task closes within the revoke's commit as before instead of being suspended.
        let eager = matches!(
            consumer.rebalance_protocol(),
            rdkafka::consumer::RebalanceProtocol::Eager
        ) && !core.producer.is_transactional();
        let result = if lost {
            core.lose(&revoked)
        } else if eager {
            core.suspend(consumer, &revoked)
        } else {
            core.revoke(consumer, &revoked)
        };
        if let Err(e) = result {
            log::error!("{}: revoking partitions failed: {e}", core.name);
            core.failure.get_or_insert(e);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let Ok(mut core) = self.core.lock() else {
            return;
        };
        core.shared.set_thread_ready(&core.name, false);
        let assigned: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        log::info!("{}: partitions assigned: {assigned:?}", core.name);
        core.shared
            .metrics
            .rebalances
            .fetch_add(1, Ordering::Relaxed);
        match core.assign(consumer, &assigned) {
            Ok(()) => {
                let ready = core.restoring.is_empty();
                core.shared.set_thread_ready(&core.name, ready);
            }
            Err(e) => {
                log::error!("{}: opening tasks failed: {e}", core.name);
                core.failure.get_or_insert(e);
            }
        }
    }
}

fn eos(shared: &Shared) -> bool {
    shared.config.processing_guarantee == ProcessingGuarantee::ExactlyOnce
}

impl Core {
    /// Runs one record through its task. `original` is the message it came from, still
    /// borrowed from the consumer, so a dead letter copies the original bytes only on failure
    /// instead of every record being cloned up front.
    fn process(
        &mut self,
        metadata: RecordMetadata,
        record: Record,
        original: &BorrowedMessage<'_>,
    ) -> Result<()> {
        let Some(slot) = self
            .partitions
            .iter()
            .position(|p| p.partition == metadata.partition && p.topic == metadata.topic)
        else {
            // A record of a partition revoked in this very poll: its new owner processes it.
            return Ok(());
        };
        let Some(t) = self.tasks.get_mut(&self.partitions[slot].task) else {
            // Fetched before its partition was paused: processed once the task has restored.
            if let Some(r) = self.restoring.get_mut(&self.partitions[slot].task) {
                let first = r
                    .skipped
                    .entry((metadata.topic.clone(), metadata.partition))
                    .or_insert(metadata.offset);
                *first = (*first).min(metadata.offset);
            }
            return Ok(());
        };
        self.dirty = true;
        let mut collector = ProducerCollector(&self.producer);
        let result = t.task.process(&metadata, record, &mut collector, now_ms());
        if let Err(e) = result {
            self.handle_processing_error(e, &metadata, original)?;
        }
        self.shared
            .metrics
            .processed
            .fetch_add(1, Ordering::Relaxed);
        self.partitions[slot].consumed = Some(metadata.offset + 1);
        Ok(())
    }

    /// Wall-clock punctuation of every task. A data error raised by a punctuator goes through
    /// the processing handler like one raised by `process` (there is no record to
    /// dead-letter, so dead-lettering logs and goes on); any other error fails the thread.
    fn punctuate(&mut self) -> Result<()> {
        let now = now_ms();
        for (id, t) in self.tasks.iter_mut() {
            let mut collector = ProducerCollector(&self.producer);
            let Err(e) = t.task.punctuate_wall_clock(&mut collector, now) else {
                continue;
            };
            self.shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
            match &self.shared.config.error_handling {
                ErrorHandling::LogAndFail => return Err(e),
                _ if !e.is_data_error() => return Err(e),
                _ => log::warn!(
                    "{}: punctuation of task {id} failed, going on: {e}",
                    self.name
                ),
            }
        }
        Ok(())
    }
}

/// A consumed message as the topology sees it.
pub(crate) fn to_record(m: &BorrowedMessage<'_>) -> (RecordMetadata, Record) {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (
        RecordMetadata {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
        },
        Record {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis().unwrap_or(0),
            headers,
        },
    )
}

/// Kafka Streams' thread name: `<application.id>-StreamThread-<n>`.
pub(crate) fn thread_name(shared: &Shared, index: usize) -> String {
    format!(
        "{}-StreamThread-{}",
        shared.config.application_id,
        index + 1
    )
}

/// Runs one stream thread until shutdown or failure.
pub(crate) fn run(shared: Arc<Shared>, index: usize) -> Result<()> {
    let name = thread_name(&shared, index);
    let core = Arc::new(Mutex::new(Core::new(&shared, &name, index)?));
    shared.set_thread_ready(&name, false);
    let consumer = subscribe(&shared, &name, &core)?;
    let result = poll_loop(&shared, &name, &core, &consumer);
    let mut guard = core
        .lock()
        .map_err(|_| Error::NotRunning("poisoned".into()))?;
    guard.shut_down(&consumer, &result);
    drop(guard);
    // Leave the group now rather than waiting for the session timeout.
    consumer.unsubscribe();
    result
}

impl Core {
    /// A thread's core with its producer (transactional under exactly-once: its id is
    /// `<application.id>-<instance id>-<thread index>`, so a restarted instance fences its
    /// predecessor's zombie).
    fn new(shared: &Arc<Shared>, name: &str, index: usize) -> Result<Core> {
        let cfg = &shared.config;
        let transactional_id =
            eos(shared).then(|| format!("{}-{}-{}", cfg.application_id, shared.instance_id, index));
        let on_broker_state: crate::runtime::producer::BrokerStateHook = {
            let (shared, name) = (shared.clone(), name.to_string());
            Box::new(move |up| shared.metrics.set_broker_up(&name, up))
        };
        let producer = StreamProducer::new(
            cfg,
            transactional_id.as_deref(),
            Some(on_broker_state),
            shared.metrics.dropped_records.clone(),
        )?;
        if producer.is_transactional() {
            producer.begin()?;
        }
        let sink: Arc<dyn ChangelogSink> = Arc::new(ProducerChangelogSink(producer.clone()));
        Ok(Core {
            shared: shared.clone(),
            name: name.to_string(),
            producer,
            sink,
            tasks: BTreeMap::new(),
            restoring: BTreeMap::new(),
            suspended: BTreeMap::new(),
            partitions: Vec::new(),
            dirty: false,
            failure: None,
        })
    }

    /// After the loop: a clean shutdown closes processors, commits, checkpoints and closes
    /// stores; a failure commits what is safe (at-least-once) and closes everything dirty.
    fn shut_down(&mut self, consumer: &BaseConsumer<StreamContext>, result: &Result<()>) {
        match result {
            Ok(()) => {
                let all: Vec<(String, i32)> = self
                    .partitions
                    .iter()
                    .map(|p| (p.topic.clone(), p.partition))
                    .collect();
                if let Err(e) = self
                    .revoke(consumer, &all)
                    .and_then(|()| self.close_suspended())
                {
                    log::error!("{}: closing tasks failed: {e}", self.name);
                    self.close_dirty();
                }
            }
            Err(e) => {
                log::error!("{}: failed: {e}", self.name);
                if !matches!(e, Error::Fenced(_)) && !self.producer.is_transactional() {
                    // At-least-once: what was processed before the failure is safe to commit;
                    // the failing record's offset is not included, so it is processed again.
                    if let Err(e) = self.commit(consumer) {
                        log::warn!("{}: final commit failed: {e}", self.name);
                    }
                }
                self.close_dirty();
            }
        }
    }
}

/// The thread's group consumer, subscribed to the topology's source topics.
fn subscribe(
    shared: &Arc<Shared>,
    name: &str,
    core: &Arc<Mutex<Core>>,
) -> Result<BaseConsumer<StreamContext>> {
    let cfg = &shared.config;
    let mut client = cfg.base_client();
    client
        .set("group.id", &cfg.application_id)
        .set("client.id", name)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            cfg.session_timeout.as_millis().to_string(),
        )
        .set(
            "max.poll.interval.ms",
            cfg.max_poll_interval.as_millis().to_string(),
        )
        .set(
            "partition.assignment.strategy",
            shared.assignment_strategy(),
        )
        .set("statistics.interval.ms", "1000")
        // librdkafka prefetches up to 64 MiB by default: memory that grows with the backlog,
        // not the work. 16 MiB bounds it without slowing fetches; 4 MiB starved them on the
        // local broker (5x fewer records/s, benches/README.md).
        .set("queued.max.messages.kbytes", "16384");
    if eos(shared) {
        client.set("isolation.level", "read_committed");
    }
    for (k, v) in &cfg.client_properties {
        client.set(k, v);
    }
    let consumer: BaseConsumer<StreamContext> = client
        .create_with_context(StreamContext { core: core.clone() })
        .map_err(Error::kafka("creating the consumer"))?;
    let topics = shared.topology.source_topics();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(Error::kafka("subscribing"))?;
    Ok(consumer)
}

/// Poll, restore, process, punctuate and commit until shutdown or failure.
fn poll_loop(
    shared: &Shared,
    name: &str,
    core: &Mutex<Core>,
    consumer: &BaseConsumer<StreamContext>,
) -> Result<()> {
    let mut last_commit = Instant::now();
    let mut last_punctuate = Instant::now();
    let mut restoring = false;
    while !shared.shutdown.load(Ordering::SeqCst) {
        // While stores restore, poll without waiting (heartbeats, rebalances) and spend the
        // time on restore slices instead.
        let wait = if restoring {
            Duration::ZERO
        } else {
            Duration::from_millis(50)
        };
        let polled = consumer.poll(wait);
        let mut core = core
            .lock()
            .map_err(|_| Error::NotRunning("poisoned".into()))?;
        if let Some(e) = core.failure.take() {
            return Err(e);
        }
        if !core.restoring.is_empty() {
            core.restore_step(consumer, Duration::from_millis(100))?;
        }
        restoring = !core.restoring.is_empty();
        match polled {
            Some(Ok(m)) => {
                let (metadata, record) = to_record(&m);
                core.process(metadata, record, &m)?;
            }
            Some(Err(e)) => log::warn!("{name}: consumer: {e}"),
            None => {}
        }
        if last_punctuate.elapsed() >= Duration::from_millis(50) {
            core.punctuate()?;
            last_punctuate = Instant::now();
        }
        if last_commit.elapsed() >= shared.config.commit_interval {
            core.commit(consumer)?;
            last_commit = Instant::now();
        }
    }
    Ok(())
}
