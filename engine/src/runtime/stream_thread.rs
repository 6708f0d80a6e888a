//! A stream thread: one consumer in the application's group, the tasks of the partitions it is
//! assigned, one producer for their output and changelogs, and the commit protocol.
//!
//! Rebalance callbacks run inside `poll` on this thread (rdkafka's consumer context). On revoke
//! the revoked tasks are closed after everything processed so far is committed; on assign the
//! new tasks open their stores and restore them from their changelogs before the first record.

use crate::record::{Record, RecordMetadata};
use crate::runtime::config::{ErrorHandling, ProcessingGuarantee};
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
    fn assign(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        assigned: &[(String, i32)],
    ) -> Result<()> {
        let mut paused = TopicPartitionList::new();
        for (topic, partition) in assigned {
            let Some(sub) = self
                .shared
                .subtopologies
                .iter()
                .find(|s| s.source_topics.contains(topic))
                .cloned()
            else {
                continue;
            };
            let id = task_id(sub.id, *partition);
            if !self
                .partitions
                .iter()
                .any(|p| p.topic == *topic && p.partition == *partition)
            {
                self.partitions.push(PartitionState {
                    topic: topic.clone(),
                    partition: *partition,
                    task: id.clone(),
                    consumed: None,
                });
            }
            if let Some(t) = self.suspended.remove(&id) {
                log::info!(
                    "{}: task {id} resumed (kept across the rebalance)",
                    self.name
                );
                self.tasks.insert(id.clone(), t);
            }
            let tp = (topic.clone(), *partition);
            if let Some(t) = self.tasks.get_mut(&id) {
                if !t.partitions.contains(&tp) {
                    t.partitions.push(tp);
                }
                continue;
            }
            if !self.restoring.contains_key(&id) {
                let opened = state_manager::open(&self.shared, &self.sink, &sub, *partition, &id)?;
                self.restoring.insert(id.clone(), opened);
            }
            if let Some(r) = self.restoring.get_mut(&id) {
                if !r.partitions.contains(&tp) {
                    r.partitions.push(tp);
                }
            }
            paused.add_partition(topic, *partition);
        }
        // Nothing of a restoring task is fetched until its stores are caught up.
        if paused.count() > 0 {
            consumer
                .pause(&paused)
                .map_err(Error::kafka("pausing restoring partitions"))?;
        }
        // Suspended tasks whose partitions went elsewhere close now.
        self.close_suspended()?;
        self.publish_tasks();
        Ok(())
    }

    /// An eager revoke: everything processed so far is committed, then the revoked tasks are
    /// set aside open (see `suspended`) until the assignment that follows.
    fn suspend(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        revoked: &[(String, i32)],
    ) -> Result<()> {
        self.abandon_restoring(revoked);
        self.commit(consumer)?;
        let ids: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.partitions.iter().any(|p| revoked.contains(p)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(mut t) = self.tasks.remove(&id) {
                t.partitions.clear();
                self.suspended.insert(id, t);
            }
        }
        self.partitions.retain(|p| {
            !revoked
                .iter()
                .any(|(t, n)| *t == p.topic && *n == p.partition)
        });
        self.publish_tasks();
        Ok(())
    }

    /// Closes the suspended tasks cleanly: their processors' last output goes out with the
    /// next flush (their input offsets were committed when they were suspended; suspension is
    /// at-least-once only).
    fn close_suspended(&mut self) -> Result<()> {
        for (id, mut t) in std::mem::take(&mut self.suspended) {
            let mut collector = ProducerCollector(&self.producer);
            t.task.close(&mut collector, now_ms())?;
            self.close_task_clean(&id, t)?;
        }
        Ok(())
    }

    /// Restores for about `budget`, then starts the tasks that are caught up: their
    /// partitions are resumed, from the first record that arrived while they restored.
    fn restore_step(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        budget: Duration,
    ) -> Result<()> {
        let Some(id) = self.restoring.keys().next().cloned() else {
            return Ok(());
        };
        let done = match self.restoring.get_mut(&id) {
            Some(r) => r.step(&self.shared, &self.name, budget)?,
            None => false,
        };
        if !done {
            return Ok(());
        }
        let Some(restored) = self.restoring.remove(&id) else {
            return Ok(());
        };
        let skipped = restored.skipped.clone();
        let state = restored.into_active(&self.shared, &self.name)?;
        let mut resumed = TopicPartitionList::new();
        for (topic, partition) in &state.partitions {
            if let Some(&offset) = skipped.get(&(topic.clone(), *partition)) {
                consumer
                    .seek(
                        topic,
                        *partition,
                        Offset::Offset(offset),
                        Duration::from_secs(10),
                    )
                    .map_err(Error::kafka("rewinding a restored task's partition"))?;
            }
            resumed.add_partition(topic, *partition);
        }
        self.tasks.insert(id, state);
        consumer
            .resume(&resumed)
            .map_err(Error::kafka("resuming a restored task's partitions"))?;
        self.publish_tasks();
        if self.restoring.is_empty() {
            self.shared.set_thread_ready(&self.name, true);
        }
        Ok(())
    }

    /// Drops restoring tasks of `partitions` (revoked or lost).
    fn abandon_restoring(&mut self, partitions: &[(String, i32)]) {
        let ids: Vec<String> = self
            .restoring
            .iter()
            .filter(|(_, r)| r.partitions.iter().any(|p| partitions.contains(p)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(r) = self.restoring.remove(&id) {
                r.abandon(&self.shared);
            }
        }
    }

    fn publish_tasks(&self) {
        let entries: Vec<TaskEntry> = self
            .tasks
            .iter()
            .map(|(id, t)| (id, &t.partitions))
            .chain(self.restoring.iter().map(|(id, r)| (id, &r.partitions)))
            .map(|(id, partitions)| TaskEntry {
                id: id.clone(),
                partitions: partitions.clone(),
            })
            .collect();
        self.shared.set_thread_tasks(&self.name, entries);
    }

    fn revoke(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        revoked: &[(String, i32)],
    ) -> Result<()> {
        self.abandon_restoring(revoked);
        let closing: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.partitions.iter().any(|p| revoked.contains(p)))
            .map(|(id, _)| id.clone())
            .collect();
        // Let closing processors emit their last output inside the commit that follows.
        for id in &closing {
            if let Some(t) = self.tasks.get_mut(id) {
                let mut collector = ProducerCollector(&self.producer);
                t.task.close(&mut collector, now_ms())?;
            }
        }
        self.commit(consumer)?;
        for id in &closing {
            if let Some(t) = self.tasks.remove(id) {
                self.close_task_clean(id, t)?;
            }
        }
        self.partitions.retain(|p| {
            !revoked
                .iter()
                .any(|(t, n)| *t == p.topic && *n == p.partition)
        });
        self.publish_tasks();
        Ok(())
    }

    /// Partitions lost without a clean revoke: their tasks close dirty (no commit, no new
    /// checkpoint), and the group's next assignment opens them again from what was committed.
    /// Under exactly-once the open transaction may hold records of any task of this thread,
    /// so it is aborted and every task closes dirty; under at-least-once only the lost ones.
    fn lose(&mut self, lost: &[(String, i32)]) -> Result<()> {
        self.abandon_restoring(lost);
        // Suspended tasks were committed; what they hold is safe to close as it is.
        self.close_suspended()?;
        if self.producer.is_transactional() {
            self.close_dirty();
            return self.producer.begin();
        }
        let closing: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.partitions.iter().any(|p| lost.contains(p)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in closing {
            if let Some(t) = self.tasks.remove(&id) {
                for (_, store, _) in &t.stores {
                    if let Err(e) = store.close() {
                        log::warn!("{}: closing a store of lost task {id}: {e}", self.name);
                    }
                }
                self.shared.unregister_task(&id);
            }
        }
        self.partitions
            .retain(|p| !lost.iter().any(|(t, n)| *t == p.topic && *n == p.partition));
        self.publish_tasks();
        Ok(())
    }

    fn close_task_clean(&mut self, id: &str, mut t: TaskState) -> Result<()> {
        t.update_checkpoint(&self.producer);
        for (_, store, _) in &t.stores {
            store.close()?;
        }
        t.checkpoint.write(t.store_ctx.checkpoint_path()?)?;
        self.shared.unregister_task(id);
        Ok(())
    }

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
            self.shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
            if !e.is_data_error() {
                return Err(e);
            }
            let (topic, partition, offset) = (&metadata.topic, metadata.partition, metadata.offset);
            match &self.shared.config.error_handling {
                ErrorHandling::LogAndContinue => {
                    log::warn!("{}: skipping {topic}[{partition}]@{offset}: {e}", self.name);
                }
                ErrorHandling::DeadLetter { topic: dlq } => {
                    log::warn!(
                        "{}: dead-lettering {topic}[{partition}]@{offset}: {e}",
                        self.name
                    );
                    let (_, original_record) = to_record(original);
                    let mut headers = original_record.headers;
                    headers.push(("ks.error".into(), e.to_string().into_bytes()));
                    headers.push(("ks.source.topic".into(), topic.clone().into_bytes()));
                    headers.push((
                        "ks.source.partition".into(),
                        partition.to_string().into_bytes(),
                    ));
                    headers.push(("ks.source.offset".into(), offset.to_string().into_bytes()));
                    self.producer.send_dead_letter(
                        dlq,
                        original_record.key.as_deref(),
                        original_record.value.as_deref(),
                        Some(original_record.timestamp),
                        &headers,
                    )?;
                }
                ErrorHandling::LogAndFail => return Err(e),
            }
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

    fn offsets(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for p in &self.partitions {
            let Some(offset) = p.consumed else { continue };
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(offset))
                .map_err(Error::kafka("building the offsets to commit"))?;
        }
        Ok(tpl)
    }

    /// The commit protocol. At-least-once: output and changelog acknowledged, then input
    /// offsets committed, then checkpoints written. Exactly-once: all three in one transaction,
    /// then the buffered store writes applied.
    fn commit(&mut self, consumer: &BaseConsumer<StreamContext>) -> Result<()> {
        // Processors put what they hold in memory into their stores first, so this commit
        // covers it (under exactly-once: the same transaction as the output it belongs to).
        let now = now_ms();
        for t in self.tasks.values_mut() {
            let mut collector = ProducerCollector(&self.producer);
            t.task.flush(&mut collector, now)?;
        }
        let offsets = self.offsets()?;
        if self.producer.is_transactional() {
            let group = consumer.group_metadata();
            self.producer.commit(&offsets, group.as_ref())?;
            for t in self.tasks.values() {
                for (_, _, txn) in &t.stores {
                    if let Some(txn) = txn {
                        txn.commit_pending()?;
                        txn.flush()?;
                    }
                }
            }
            self.producer.begin()?;
        } else {
            if !self.dirty && !self.producer.has_unflushed() {
                return Ok(());
            }
            // As long as a delivery may take (message.timeout.ms): a broker that is away for a
            // restart delays the commit instead of failing the thread.
            self.producer.flush(Duration::from_secs(130))?;
            for t in self.tasks.values() {
                for (_, store, _) in &t.stores {
                    store.flush()?;
                }
            }
            if offsets.count() > 0 {
                if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
                    // Output and changelog are acknowledged, so a failed offset commit (the
                    // coordinator moving or away, a rebalance under way) costs at most
                    // duplicates: the offsets stay pending and the next commit retries them.
                    log::warn!(
                        "{}: committing offsets failed, retrying at the next commit: {e}",
                        self.name
                    );
                    return Ok(());
                }
            }
            let ids: Vec<String> = self.tasks.keys().cloned().collect();
            for id in ids {
                if let Some(mut t) = self.tasks.remove(&id) {
                    t.update_checkpoint(&self.producer);
                    let written = t
                        .store_ctx
                        .checkpoint_path()
                        .and_then(|p| t.checkpoint.write(p));
                    self.tasks.insert(id, t);
                    written?;
                }
            }
        }
        self.shared
            .record_commit(self.partitions.iter_mut().filter_map(|p| {
                p.consumed
                    .take()
                    .map(|o| ((p.topic.clone(), p.partition), o))
            }));
        self.dirty = false;
        self.shared.metrics.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// After a failure: no commit. Under exactly-once the open transaction is aborted and the
    /// buffered writes dropped, so the input is processed again from the last commit. The local
    /// stores then hold exactly the committed state, so they are checkpointed past everything
    /// this producer wrote (committed or aborted): a restart restores nothing it should not,
    /// even on a broker that shows aborted records to read_committed consumers.
    fn close_dirty(&mut self) {
        let clean_abort = if self.producer.is_transactional() {
            match self.producer.abort() {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("{}: aborting the transaction failed: {e}", self.name);
                    false
                }
            }
        } else {
            false
        };
        for (_, r) in std::mem::take(&mut self.restoring) {
            r.abandon(&self.shared);
        }
        let mut tasks = std::mem::take(&mut self.tasks);
        tasks.append(&mut self.suspended);
        for (id, mut t) in tasks {
            for (_, _, txn) in &t.stores {
                if let Some(txn) = txn {
                    let _ = txn.discard_pending();
                }
            }
            if clean_abort {
                t.update_checkpoint(&self.producer);
                if let Err(e) = t
                    .store_ctx
                    .checkpoint_path()
                    .and_then(|p| t.checkpoint.write(p))
                {
                    log::warn!("{}: checkpoint of {id} after abort failed: {e}", self.name);
                }
            }
            for (_, store, _) in &t.stores {
                let _ = store.close();
            }
            self.shared.unregister_task(&id);
        }
        self.partitions.clear();
        self.publish_tasks();
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
    let cfg = &shared.config;
    let name = thread_name(&shared, index);
    let transactional_id =
        eos(&shared).then(|| format!("{}-{}-{}", cfg.application_id, shared.instance_id, index));
    let on_broker_state: crate::runtime::producer::BrokerStateHook = {
        let (shared, name) = (shared.clone(), name.clone());
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
    let core = Arc::new(Mutex::new(Core {
        shared: shared.clone(),
        name: name.clone(),
        producer,
        sink,
        tasks: BTreeMap::new(),
        restoring: BTreeMap::new(),
        suspended: BTreeMap::new(),
        partitions: Vec::new(),
        dirty: false,
        failure: None,
    }));
    let mut client = cfg.base_client();
    client
        .set("group.id", &cfg.application_id)
        .set("client.id", &name)
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
    if eos(&shared) {
        client.set("isolation.level", "read_committed");
    }
    for (k, v) in &cfg.client_properties {
        client.set(k, v);
    }
    shared.set_thread_ready(&name, false);
    let consumer: BaseConsumer<StreamContext> = client
        .create_with_context(StreamContext { core: core.clone() })
        .map_err(Error::kafka("creating the consumer"))?;
    let topics = shared.topology.source_topics();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(Error::kafka("subscribing"))?;

    let mut last_commit = Instant::now();
    let mut last_punctuate = Instant::now();
    let result: Result<()> = (|| {
        let mut restoring = false;
        while !shared.shutdown.load(Ordering::SeqCst) {
            // While stores restore, poll without waiting (heartbeats, rebalances) and spend
            // the time on restore slices instead.
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
                core.restore_step(&consumer, Duration::from_millis(100))?;
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
                core.commit(&consumer)?;
                last_commit = Instant::now();
            }
        }
        Ok(())
    })();

    let mut guard = core
        .lock()
        .map_err(|_| Error::NotRunning("poisoned".into()))?;
    match &result {
        Ok(()) => {
            // Clean shutdown: close processors, commit, checkpoint, close stores.
            let all: Vec<(String, i32)> = guard
                .partitions
                .iter()
                .map(|p| (p.topic.clone(), p.partition))
                .collect();
            if let Err(e) = guard
                .revoke(&consumer, &all)
                .and_then(|()| guard.close_suspended())
            {
                log::error!("{name}: closing tasks failed: {e}");
                guard.close_dirty();
            }
        }
        Err(e) => {
            log::error!("{name}: failed: {e}");
            if !matches!(e, Error::Fenced(_)) && !guard.producer.is_transactional() {
                // At-least-once: what was processed before the failure is safe to commit; the
                // failing record's offset is not included, so it is processed again.
                if let Err(e) = guard.commit(&consumer) {
                    log::warn!("{name}: final commit failed: {e}");
                }
            }
            guard.close_dirty();
        }
    }
    drop(guard);
    // Leave the group now rather than waiting for the session timeout.
    consumer.unsubscribe();
    result
}
