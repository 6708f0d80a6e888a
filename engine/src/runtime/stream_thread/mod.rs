//! A stream thread: one consumer in the application's group, the tasks of the partitions it is
//! assigned, one producer for their output and changelogs. Split as Kafka Streams splits it:
//!
//! - `mod.rs`: the thread (its poll loop, the rebalance callbacks, processing and punctuation);
//! - `task_manager.rs`: which tasks run, and their assign / suspend / revoke / lose / close;
//! - `../state_manager.rs`: a task's stores, restored in slices between polls;
//! - `commit.rs`: the commit protocol; `../producer.rs` is the record collector;
//! - `dead_letter.rs`: the processing handler (continue, fail, dead letter);
//! - `partition_group.rs`: timestamp order across the inputs of a task that reads several.
//!
//! Partition time (the highest timestamp processed per input partition) is committed with the
//! partition's offset, so stream time resumes where it was after a restart or a move.
//!
//! Rebalance callbacks run inside `poll` on this thread (rdkafka's consumer context). On revoke
//! the revoked tasks are closed after everything processed so far is committed; on assign the
//! new tasks open their stores, and the loop restores them before their first record.
//!
//! Records are taken in batches: after a poll that returned one, the loop takes what the
//! consumer has fetched already (polls without waiting) up to `max.poll.records`, tells each
//! task which come (`Processor::prepare`), runs them in fetch order, and only then punctuates
//! and considers a commit, as Kafka Streams processes a poll's records before it punctuates.
//! A callback served by those polls can revoke partitions whose records the batch holds: they
//! are dropped (their next owner reads them from the last commit; were they kept, an eager
//! rebalance that gives the partition straight back would process them twice).

use crate::record::{Record, RecordMetadata};
use crate::runtime::config::{ErrorHandling, ProcessingGuarantee};

mod commit;
mod dead_letter;
mod partition_group;
mod task_manager;
use crate::processor::Upcoming;
use crate::runtime::producer::{ProducerChangelogSink, ProducerCollector, StreamProducer};
use crate::runtime::state_manager::{self, RestoringTask, TaskState};
use crate::runtime::{now_ms, Shared, TaskEntry};
use crate::task::task_id;
use crate::{Error, Result};
use dead_letter::Original;
use ks_stores::{ChangelogSink, StateStore};
use parking_lot::Mutex;
use partition_group::{Buffered, PartitionGroup, Pressure};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
    /// Records buffered for timestamp order, by task (tasks that read several partitions).
    groups: HashMap<String, PartitionGroup>,
    /// Partitions whose buffer filled up in this poll, paused before the next.
    pause_for_buffer: Vec<(String, i32)>,
    dirty: bool,
    /// A failure inside a rebalance callback, surfaced by the poll loop.
    failure: Option<Error>,
    /// Partitions were lost (the member was dropped from the group) since the last commit:
    /// a fenced producer then means our own transaction timed out, not a successor.
    lost: bool,
    /// The producer's transactional id (exactly-once), kept to build its replacement.
    transactional_id: Option<String>,
    /// The thread has shut its tasks down (cleanly or dirty): the revoke that leaving the
    /// group delivers afterwards has nothing to commit, and a failed thread must not commit.
    shut: bool,
    summary: LogSummary,
    /// The wall clock (ms) of the current poll-loop iteration, handed to the tasks with each
    /// record (see [`LoopClock`]).
    wall_clock: i64,
}

/// The wall clock of a poll-loop iteration, derived from the monotonic clock the loop reads
/// once anyway and re-based on the system clock at every punctuation check (so a step of the
/// system clock is seen within 50 ms): reading both clocks for every record cost a few percent
/// of the thread.
struct LoopClock {
    base: Instant,
    base_ms: i64,
}

impl LoopClock {
    fn new() -> LoopClock {
        LoopClock {
            base: Instant::now(),
            base_ms: now_ms(),
        }
    }

    fn wall_ms(&self, now: Instant) -> i64 {
        let since = now.saturating_duration_since(self.base).as_millis();
        self.base_ms
            .saturating_add(i64::try_from(since).unwrap_or(i64::MAX))
    }
}

/// What a thread did since its last `log.summary.interval.ms` line, as Kafka Streams logs it:
/// a long run's progress is visible at info without metrics.
struct LogSummary {
    since: Instant,
    records: u64,
}

impl LogSummary {
    fn new() -> LogSummary {
        LogSummary {
            since: Instant::now(),
            records: 0,
        }
    }

    /// Logs and starts over once `every` has passed by `now`.
    fn report_if_due(
        &mut self,
        now: Instant,
        thread: &str,
        active: usize,
        restoring: usize,
        every: Duration,
    ) {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < every {
            return;
        }
        log::info!(
            "{thread}: processed {} records in the last {} s ({:.0} records/s); {active} active \
             tasks, {restoring} restoring",
            self.records,
            elapsed.as_secs(),
            self.records as f64 / elapsed.as_secs_f64().max(1e-3)
        );
        *self = LogSummary::new();
    }
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
    /// Partitions revoked or lost by a rebalance callback since the poll loop last looked:
    /// records of theirs that the loop holds in its batch, fetched before the callback, are
    /// dropped (their next owner, maybe this thread again, reads them from the last commit).
    revoked: Mutex<Vec<(String, i32)>>,
}

impl StreamContext {
    /// Drops from `batch` the records of partitions revoked since the last call.
    fn forget_revoked(&self, batch: &mut Vec<BorrowedMessage<'_>>) {
        let mut revoked = self.revoked.lock();
        if revoked.is_empty() {
            return;
        }
        batch.retain(|m| {
            !revoked
                .iter()
                .any(|(t, p)| *p == m.partition() && t == m.topic())
        });
        revoked.clear();
    }
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
        if let Some(core) = self.core.try_lock() {
            core.shared.metrics.set_lag(&core.name, lag.max(0) as u64);
        }
    }
}

impl ConsumerContext for StreamContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let mut core = self.core.lock();
        core.shared.set_thread_ready(&core.name, false);
        if core.shut {
            return;
        }
        let revoked: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        self.revoked.lock().extend(revoked.iter().cloned());
        // Lost (the session expired, the generation is stale): the partitions may already be
        // someone else's, so nothing is committed for them.
        let lost = consumer.assignment_lost();
        core.lost |= lost;
        log::info!(
            "{}: partitions {}: {revoked:?}",
            core.name,
            if lost { "lost" } else { "revoked" }
        );
        let eager = matches!(
            consumer.rebalance_protocol(),
            rdkafka::consumer::RebalanceProtocol::Eager
        );
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
        let mut core = self.core.lock();
        core.shared.set_thread_ready(&core.name, false);
        if core.shut {
            return;
        }
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
        if t.partitions.len() > 1 {
            // Several inputs: taken in timestamp order from the task's queues (a record whose
            // timestamp cannot be extracted goes first, to fail in `process` as it should).
            let timestamp = t
                .task
                .extract_timestamp(&metadata, &record)
                .unwrap_or(i64::MIN);
            let now = Instant::now();
            let (topic, partition) = (metadata.topic.clone(), metadata.partition);
            let group = self
                .groups
                .entry(self.partitions[slot].task.clone())
                .or_insert_with(|| PartitionGroup::new(&t.partitions, now));
            let buffered = Buffered {
                timestamp,
                metadata,
                record,
            };
            if group.push(buffered, now) == Pressure::Pause {
                self.pause_for_buffer.push((topic, partition));
            }
            return Ok(());
        }
        self.run_record(slot, metadata, record, Original::Message(original))
    }

    /// Runs a poll batch: each task reading one partition is told which of its records come
    /// (see [`crate::Processor::prepare`]), then the records go through [`Core::process`] in
    /// fetch order until all are done or `until` has passed. Returns how many were run: the
    /// rest stay in the batch for the next iteration, after a poll. `records` is the reused
    /// buffer of the batch's records.
    fn process_batch(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        records: &mut Vec<(RecordMetadata, Record)>,
        until: Instant,
    ) -> Result<usize> {
        records.clear();
        records.extend(batch.iter().map(to_record));
        if records.len() > 1 {
            self.prepare_tasks(records)?;
        }
        for (i, ((metadata, record), m)) in records.drain(..).zip(batch).enumerate() {
            self.process(metadata, record, m)?;
            if Instant::now() >= until {
                return Ok(i + 1);
            }
        }
        Ok(batch.len())
    }

    /// Hands each active single-partition task the batch's records of its partition.
    fn prepare_tasks(&mut self, records: &[(RecordMetadata, Record)]) -> Result<()> {
        let mut told: Vec<usize> = Vec::new();
        let mut upcoming: Vec<Upcoming<'_>> = Vec::new();
        for (i, (metadata, _)) in records.iter().enumerate() {
            let Some(slot) = self
                .partitions
                .iter()
                .position(|p| p.partition == metadata.partition && p.topic == metadata.topic)
            else {
                continue;
            };
            if told.contains(&slot) {
                continue;
            }
            told.push(slot);
            let Some(t) = self.tasks.get_mut(&self.partitions[slot].task) else {
                continue;
            };
            if t.partitions.len() > 1 {
                continue;
            }
            upcoming.clear();
            upcoming.extend(
                records[i..]
                    .iter()
                    .filter(|(m, _)| m.partition == metadata.partition && m.topic == metadata.topic)
                    .map(|(metadata, record)| Upcoming { metadata, record }),
            );
            let _in_task = t.span.enter();
            t.task
                .prepare(&metadata.topic, &upcoming, self.wall_clock)?;
        }
        Ok(())
    }

    /// Processes one record of the partition in `slot` through its task.
    fn run_record(
        &mut self,
        slot: usize,
        metadata: RecordMetadata,
        record: Record,
        original: Original<'_>,
    ) -> Result<()> {
        let Some(t) = self.tasks.get_mut(&self.partitions[slot].task) else {
            return Ok(());
        };
        self.dirty = true;
        // What the task and its processors log, and the error handling below, name the task.
        // The span is taken out of the task for the record and put back (a clone cost two
        // more reference-count updates in the subscriber's registry per record).
        let span = std::mem::replace(&mut t.span, tracing::Span::none());
        let in_task = span.enter();
        let mut collector = ProducerCollector(&self.producer);
        let result = t
            .task
            .process(&metadata, record, &mut collector, self.wall_clock);
        let handled = match result {
            Ok(()) => Ok(()),
            Err(e) => self.handle_processing_error(e, &metadata, original),
        };
        drop(in_task);
        if let Some(t) = self.tasks.get_mut(&self.partitions[slot].task) {
            t.span = span;
        }
        handled?;
        self.shared
            .metrics
            .processed
            .fetch_add(1, Ordering::Relaxed);
        self.partitions[slot].consumed = Some(metadata.offset + 1);
        self.summary.records += 1;
        Ok(())
    }

    /// Processes what the buffering tasks may take now (see `partition_group`), and pauses or
    /// resumes their partitions for back-pressure.
    fn process_buffered(&mut self, consumer: &BaseConsumer<StreamContext>) -> Result<()> {
        if !self.pause_for_buffer.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in self.pause_for_buffer.drain(..) {
                tpl.add_partition(&topic, partition);
            }
            consumer
                .pause(&tpl)
                .map_err(Error::kafka("pausing a partition with a full buffer"))?;
        }
        if self.groups.is_empty() {
            return Ok(());
        }
        let idle = self.shared.config.max_task_idle;
        let dead_letters = matches!(
            self.shared.config.error_handling,
            ErrorHandling::DeadLetter { .. }
        );
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            while let Some(group) = self.groups.get_mut(&id) {
                let Some(b) = group.next(Instant::now(), idle) else {
                    break;
                };
                let resumable = group.take_resumable();
                if !resumable.is_empty() {
                    let mut tpl = TopicPartitionList::new();
                    for (topic, partition) in &resumable {
                        tpl.add_partition(topic, *partition);
                    }
                    consumer
                        .resume(&tpl)
                        .map_err(Error::kafka("resuming a drained partition"))?;
                }
                let Some(slot) = self.partitions.iter().position(|p| {
                    p.partition == b.metadata.partition && p.topic == b.metadata.topic
                }) else {
                    continue;
                };
                // A dead letter needs the original record, which `process` consumes.
                let original = Original::Record(dead_letters.then(|| b.record.clone()));
                self.run_record(slot, b.metadata, b.record, original)?;
            }
        }
        Ok(())
    }

    /// Wall-clock punctuation of every task. A data error raised by a punctuator goes through
    /// the processing handler like one raised by `process` (there is no record to
    /// dead-letter, so dead-lettering logs and goes on); any other error fails the thread.
    fn punctuate(&mut self) -> Result<()> {
        let now = now_ms();
        for (id, t) in self.tasks.iter_mut() {
            let _in_task = t.span.enter();
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

/// Adds to `batch` what the consumer has fetched already, up to `max` records, without
/// waiting. A rebalance callback served by these polls may revoke partitions of records
/// already in the batch: those are dropped (see [`StreamContext::forget_revoked`]), while a
/// record a poll returns comes after any callback that poll served.
fn fill_batch<'c>(
    consumer: &'c BaseConsumer<StreamContext>,
    batch: &mut Vec<BorrowedMessage<'c>>,
    max: usize,
    name: &str,
) {
    while batch.len() < max {
        let polled = consumer.poll(Duration::ZERO);
        consumer.context().forget_revoked(batch);
        match polled {
            Some(Ok(m)) => batch.push(m),
            Some(Err(e)) => {
                log::warn!("{name}: consumer: {e}");
                break;
            }
            None => break,
        }
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
            // No timestamp reads as invalid (-1), for the timestamp extractor to judge.
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
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

/// Sets the calling thread's niceness (Linux: per thread; threads it creates inherit it).
fn set_nice(name: &str, nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take and return plain integers.
        let rc = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
        };
        if rc != 0 {
            log::warn!(
                "{name}: cannot set niceness {nice}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    log::warn!("{name}: stream thread niceness is supported on Linux only");
}

/// Runs one stream thread until shutdown or failure.
pub(crate) fn run(shared: Arc<Shared>, index: usize) -> Result<()> {
    let name = thread_name(&shared, index);
    // Before the clients exist: their threads inherit this thread's niceness.
    set_nice(&name, shared.config.stream_thread_nice);
    let core = Arc::new(Mutex::new(Core::new(&shared, &name, index)?));
    shared.set_thread_ready(&name, false);
    crate::runtime::standby::warm_up(&shared, &name);
    let consumer = subscribe(&shared, &name, &core)?;
    let result = loop {
        let result = poll_loop(&shared, &name, &core, &consumer);
        let mut guard = core.lock();
        let result = result.map_err(|e| guard.fenced(e));
        let Err(e) = &result else {
            break result;
        };
        if shared.shutdown.load(Ordering::SeqCst) || !guard.migrated(e, &consumer) {
            break result;
        }
        // Kafka Streams' TaskMigratedException: the thread goes on with the group.
        log::warn!("{name}: {e}; closing its tasks dirty and rejoining the group");
        if let Err(e) = guard.rejoin(&consumer) {
            break Err(e);
        }
    };
    let mut guard = core.lock();
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
        let producer = thread_producer(shared, name, transactional_id.as_deref())?;
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
            groups: HashMap::new(),
            pause_for_buffer: Vec::new(),
            dirty: false,
            failure: None,
            lost: false,
            transactional_id,
            shut: false,
            summary: LogSummary::new(),
            wall_clock: now_ms(),
        })
    }

    /// `e` as fencing when the producer's fatal error says it was fenced: a changelog write
    /// refused by a fenced producer fails with librdkafka's generic `Fatal`, wrapped as a store
    /// error, and must still stop the zombie (or rejoin) as fencing does.
    fn fenced(&self, e: Error) -> Error {
        if matches!(e, Error::Fenced(_) | Error::TaskMigrated(_)) {
            return e;
        }
        match self.producer.fencing_error() {
            Some(fatal) => Error::Fenced(format!("{e} (the producer's fatal error: {fatal})")),
            None => e,
        }
    }

    /// Whether `e` means this thread's tasks moved on without it, so it can close them dirty and
    /// rejoin: a stale generation or aborted transaction always; a fenced producer only after
    /// the member lost its partitions (its own transaction timed out meanwhile), since a fenced
    /// producer of a member in good standing means a successor with the same instance id took
    /// over, and this one is the zombie that must stop.
    fn migrated(&self, e: &Error, consumer: &BaseConsumer<StreamContext>) -> bool {
        match e {
            Error::TaskMigrated(_) => true,
            Error::Fenced(_) => self.lost || consumer.assignment_lost(),
            _ => false,
        }
    }

    /// After a migration: every task closes dirty (the open transaction is aborted where it
    /// still can be), a new producer replaces the old one (its epoch fences anything the old
    /// one still had in flight), and the consumer rejoins the group, whose next assignment
    /// opens the tasks again from the last commit.
    fn rejoin(&mut self, consumer: &BaseConsumer<StreamContext>) -> Result<()> {
        self.shared.set_thread_ready(&self.name, false);
        self.close_dirty();
        self.producer =
            thread_producer(&self.shared, &self.name, self.transactional_id.as_deref())?;
        self.sink = Arc::new(ProducerChangelogSink(self.producer.clone()));
        self.lost = false;
        self.shared
            .metrics
            .task_migrations
            .fetch_add(1, Ordering::Relaxed);
        consumer.unsubscribe();
        let topics = self.shared.topology.source_topics();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topic_refs)
            .map_err(Error::kafka("subscribing again after a migration"))
    }

    /// After the loop: a clean shutdown closes processors, commits, checkpoints and closes
    /// stores; a failure commits what is safe (at-least-once) and closes everything dirty.
    fn shut_down(&mut self, consumer: &BaseConsumer<StreamContext>, result: &Result<()>) {
        self.shut = true;
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

/// A stream thread's producer (transactional under exactly-once, with a transaction begun),
/// reporting its broker connection to the instance's metrics.
fn thread_producer(
    shared: &Arc<Shared>,
    name: &str,
    transactional_id: Option<&str>,
) -> Result<Arc<StreamProducer>> {
    let on_broker_state: crate::runtime::producer::BrokerStateHook = {
        let (shared, name) = (shared.clone(), name.to_string());
        Box::new(move |up| shared.metrics.set_broker_up(&name, up))
    };
    let producer = StreamProducer::new(
        &shared.config,
        transactional_id,
        Some(on_broker_state),
        shared.metrics.dropped_records.clone(),
    )?;
    if producer.is_transactional() {
        producer.begin()?;
    }
    Ok(producer)
}

/// The thread's group consumer, subscribed to the topology's source topics.
fn subscribe(
    shared: &Arc<Shared>,
    name: &str,
    core: &Arc<Mutex<Core>>,
) -> Result<BaseConsumer<StreamContext>> {
    let cfg = &shared.config;
    let mut client = cfg.client_for(ks_kafka::ClientKind::Consumer);
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
        .set("statistics.interval.ms", "1000");
    // Prefetch bounded, refills never postponed (`ks_kafka::config::STREAM_CONSUMER_PREFETCH`).
    ks_kafka::with_stream_prefetch(&mut client);
    if eos(shared) {
        client.set("isolation.level", "read_committed");
    }
    // The user's tuning wins over the prefetch defaults above.
    cfg.apply_user_properties(ks_kafka::ClientKind::Consumer, &mut client);
    let consumer: BaseConsumer<StreamContext> = client
        .create_with_context(StreamContext {
            core: core.clone(),
            revoked: Mutex::new(Vec::new()),
        })
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
    let mut clock = LoopClock::new();
    let mut restoring = false;
    let max_batch = shared.config.max_poll_records.max(1);
    let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(max_batch.min(1024));
    let mut records: Vec<(RecordMetadata, Record)> = Vec::with_capacity(max_batch.min(1024));
    while !shared.shutdown.load(Ordering::SeqCst) {
        // While stores restore, poll without waiting (heartbeats, rebalances) and spend the
        // time on restore slices instead.
        let wait = if restoring {
            Duration::ZERO
        } else {
            Duration::from_millis(50)
        };
        // Records left from the last batch (its time ran out) are taken first, without waiting.
        let wait = if batch.is_empty() {
            wait
        } else {
            Duration::ZERO
        };
        let polled = consumer.poll(wait);
        consumer.context().forget_revoked(&mut batch);
        match polled {
            Some(Ok(m)) => {
                batch.push(m);
                fill_batch(consumer, &mut batch, max_batch, name);
            }
            Some(Err(e)) => log::warn!("{name}: consumer: {e}"),
            None => {}
        }
        // One clock read per iteration serves the records' wall clock and every check below.
        let now = Instant::now();
        let mut core = core.lock();
        core.wall_clock = clock.wall_ms(now);
        if let Some(e) = core.failure.take() {
            return Err(e);
        }
        if !core.restoring.is_empty() {
            core.restore_step(consumer, Duration::from_millis(100))?;
        }
        restoring = !core.restoring.is_empty();
        if !batch.is_empty() {
            // Half of max.poll.interval.ms for a batch, as Kafka Streams stops processing to
            // poll: a member that stalled is told it was dropped before it goes on with the
            // records of partitions that are no longer its own.
            let until = now + shared.config.max_poll_interval / 2;
            match core.process_batch(&batch, &mut records, until) {
                Ok(done) => {
                    batch.drain(..done.min(batch.len()));
                }
                Err(e) => {
                    batch.clear();
                    return Err(e);
                }
            }
        }
        core.process_buffered(consumer)?;
        if now.saturating_duration_since(last_punctuate) >= Duration::from_millis(50) {
            clock = LoopClock::new();
            core.punctuate()?;
            last_punctuate = now;
        }
        if now.saturating_duration_since(last_commit) >= shared.config.commit_interval {
            core.commit(consumer)?;
            last_commit = Instant::now();
        }
        let (active, restoring) = (core.tasks.len(), core.restoring.len());
        let every = shared.config.log_summary_interval;
        core.summary
            .report_if_due(now, name, active, restoring, every);
    }
    Ok(())
}
