//! A task's state, from assignment to processing (Kafka Streams' state manager and restore
//! phase): open its stores (wiping a persistent store without checkpoint under exactly-once),
//! restore them from their changelogs in bounded slices between the stream thread's polls, and
//! only then build the task and initialise its processors.
//!
//! Restoring outside the rebalance callback keeps the member polling: a long restore (a large
//! changelog) never exceeds `max.poll.interval.ms` and gets the member evicted. While a task
//! restores, its input partitions are paused on the group consumer.

use crate::runtime::producer::StreamProducer;
use crate::runtime::txn_store::TxnBufferStore;
use crate::runtime::{now_ms, Shared};
use crate::task::Task;
use crate::topology::Subtopology;
use crate::{Error, Result};
use ks_stores::{
    ChangeLoggingStore, ChangelogSink, Checkpoint, KeyValueStore, RestoreConfig, Restorer,
    StoreContext,
};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A task's store: its changelog topic, the store as processors write it, and under
/// exactly-once the transaction buffer in front of it.
pub(crate) type TaskStore = (
    Option<String>,
    Arc<dyn KeyValueStore>,
    Option<Arc<TxnBufferStore>>,
);

/// A task that processes records.
pub(crate) struct TaskState {
    pub task: Task,
    pub store_ctx: StoreContext,
    pub stores: Vec<TaskStore>,
    pub checkpoint: Checkpoint,
    pub partitions: Vec<(String, i32)>,
    /// Entered around the task's work, so every log line of it names the task.
    pub span: tracing::Span,
}

/// The span a task's work runs in: `task{task=0_1}` on each of its log lines. At ERROR level so
/// it is enabled whenever anything is logged (a span below the filter's level would be
/// dropped, and a task's warnings with it would lose their task).
pub(crate) fn task_span(id: &str) -> tracing::Span {
    tracing::error_span!("task", task = %id)
}

/// How often a long restore reports its progress at info.
const RESTORE_PROGRESS_EVERY: Duration = Duration::from_secs(10);

impl TaskState {
    /// Records in the checkpoint the highest acknowledged offset of each changelog.
    pub fn update_checkpoint(&mut self, producer: &StreamProducer) {
        for (topic, _, _) in &self.stores {
            if let Some(topic) = topic {
                if let Some(offset) = producer.acked_offset(topic, self.task.partition) {
                    self.checkpoint
                        .set(topic.clone(), self.task.partition, offset);
                }
            }
        }
    }
}

/// One store still to restore.
struct PendingRestore {
    name: String,
    changelog: String,
    store: Arc<dyn KeyValueStore>,
    after: Option<i64>,
    /// Started when this store's turn comes, so one restore consumer runs at a time.
    restorer: Option<Restorer>,
    /// Records already counted in the instance's `restored_records`.
    counted: u64,
    /// When progress was last reported (the restore's start at first).
    reported: Option<Instant>,
}

/// A task whose stores are open and being restored.
pub(crate) struct RestoringTask {
    pub id: String,
    sub: Subtopology,
    partition: i32,
    store_ctx: StoreContext,
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
    stores: Vec<TaskStore>,
    by_name: HashMap<String, Arc<dyn KeyValueStore>>,
    pending: VecDeque<PendingRestore>,
    pub partitions: Vec<(String, i32)>,
    /// The lowest offset per input partition that arrived while restoring (and was not
    /// processed), so the consumer is sent back there when the task starts.
    pub skipped: HashMap<(String, i32), i64>,
    /// Partition times committed with the input offsets, by topic (see `timestamp`).
    pub partition_times: HashMap<String, i64>,
    started: Instant,
    /// Whether a standby copy was handed over, and the records restored so far.
    from_standby: bool,
    restored: u64,
    span: tracing::Span,
}

fn eos(shared: &Shared) -> bool {
    shared.config.processing_guarantee == crate::ProcessingGuarantee::ExactlyOnce
}

/// How the stream threads' restore consumers read changelogs: the application's client
/// properties, and under exactly-once only committed records.
pub(crate) fn restore_config(cfg: &crate::StreamsConfig) -> RestoreConfig {
    let mut restore_config = RestoreConfig::new(&cfg.bootstrap_servers);
    for (k, v) in cfg.user_properties(ks_kafka::ClientKind::Consumer) {
        restore_config = restore_config.with_property(k, v);
    }
    if cfg.processing_guarantee == crate::ProcessingGuarantee::ExactlyOnce {
        restore_config = restore_config.with_property("isolation.level", "read_committed");
    }
    restore_config
}

/// Opens the stores of task `id` (sub-topology `sub`, `partition`) and plans their restore.
/// The task is claimed from the standby thread first (see `standby`): a standby copy kept
/// here is handed over and restored from its position on.
pub(crate) fn open(
    shared: &Arc<Shared>,
    sink: &Arc<dyn ChangelogSink>,
    sub: &Subtopology,
    partition: i32,
    id: &str,
) -> Result<RestoringTask> {
    let handed = shared.standbys.claim_active(id);
    let opened = open_claimed(shared, sink, sub, partition, id, handed);
    if opened.is_err() {
        shared.standbys.release_active(id);
    }
    opened
}

fn open_claimed(
    shared: &Arc<Shared>,
    sink: &Arc<dyn ChangelogSink>,
    sub: &Subtopology,
    partition: i32,
    id: &str,
    mut handed: Option<crate::runtime::standby::HandedStores>,
) -> Result<RestoringTask> {
    let cfg = &shared.config;
    let store_ctx = StoreContext::new(&cfg.state_dir, &cfg.application_id, id, partition);
    let checkpoint_path = store_ctx.checkpoint_path()?;
    let checkpoint = Checkpoint::read(&checkpoint_path)?;
    let mut stores = Vec::new();
    let mut by_name: HashMap<String, Arc<dyn KeyValueStore>> = HashMap::new();
    let mut pending = VecDeque::new();
    let from_standby = handed.is_some();
    for name in &sub.stores {
        let spec = shared
            .topology
            .store_specs()
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| Error::UnknownStore(name.clone()))?;
        let copy = handed.as_mut().and_then(|h| h.remove(name));
        if eos(shared) && spec.logging && copy.is_none() {
            // No checkpoint under exactly-once means the task did not close cleanly: its
            // local state may hold writes the changelog does not (an aborted transaction's, on
            // a broker that shows them), so it is rebuilt from the changelog alone, as Kafka
            // Streams does.
            let changelog = ks_stores::changelog_topic(&cfg.application_id, name);
            if checkpoint.offset(&changelog, partition).is_none() {
                spec.wipe(&store_ctx)?;
            }
        }
        let (opened, after) = match copy {
            // The standby's live store, restored from its position on.
            Some((store, applied)) => (spec.wrap(store, &store_ctx, Some(sink.clone()))?, applied),
            None => {
                let opened = spec.open(&store_ctx, Some(sink.clone()))?;
                let after = opened.restore_after(&checkpoint);
                (opened, after)
            }
        };
        if let Some(changelog) = &opened.changelog_topic {
            pending.push_back(PendingRestore {
                name: name.clone(),
                changelog: changelog.clone(),
                store: opened.inner.clone(),
                after,
                restorer: None,
                counted: 0,
                reported: None,
            });
        }
        let (written, txn): (Arc<dyn KeyValueStore>, Option<Arc<TxnBufferStore>>) = if eos(shared) {
            let txn = Arc::new(TxnBufferStore::new(opened.inner.clone()));
            let inner: Arc<dyn KeyValueStore> = txn.clone();
            let written: Arc<dyn KeyValueStore> = match &opened.changelog_topic {
                Some(topic) => Arc::new(ChangeLoggingStore::new(
                    inner,
                    sink.clone(),
                    topic.clone(),
                    partition,
                )),
                None => inner,
            };
            (written, Some(txn))
        } else {
            (opened.store.clone(), None)
        };
        by_name.insert(name.clone(), written.clone());
        stores.push((opened.changelog_topic.clone(), written, txn));
        // Queries read the committed store: under exactly-once, never an aborted write.
        shared.register_store(id, name, opened.inner.clone());
    }
    Ok(RestoringTask {
        id: id.to_string(),
        sub: sub.clone(),
        partition,
        store_ctx,
        checkpoint,
        checkpoint_path,
        stores,
        by_name,
        pending,
        partitions: Vec::new(),
        skipped: HashMap::new(),
        partition_times: HashMap::new(),
        started: Instant::now(),
        from_standby,
        restored: 0,
        span: task_span(id),
    })
}

impl RestoringTask {
    /// Restores for about `budget`; true once every store is caught up.
    pub fn step(&mut self, shared: &Shared, thread: &str, budget: Duration) -> Result<bool> {
        let span = self.span.clone();
        let _in_task = span.enter();
        let deadline = Instant::now() + budget;
        while let Some(head) = self.pending.front_mut() {
            if head.restorer.is_none() {
                head.restorer = Some(Restorer::start_pooled(
                    &shared.restore_consumers,
                    &head.changelog,
                    self.partition,
                    head.after,
                )?);
                log::debug!(
                    "{thread}: task {} restore of {} started {} ms after open",
                    self.id,
                    head.name,
                    self.started.elapsed().as_millis()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(restorer) = head.restorer.as_mut() else {
                continue;
            };
            let done = restorer.step(head.store.as_ref(), left)?;
            // Progress is visible while it goes on (metrics, the log at the end).
            let so_far = restorer.records();
            shared
                .metrics
                .restored_records
                .fetch_add(so_far - head.counted, Ordering::Relaxed);
            head.counted = so_far;
            let Some(stats) = done else {
                let reported = *head.reported.get_or_insert_with(Instant::now);
                if reported.elapsed() >= RESTORE_PROGRESS_EVERY {
                    head.reported = Some(Instant::now());
                    let p = restorer.progress();
                    log::info!(
                        "{thread}: task {} restoring {}: {} records so far{} at {:.0} records/s",
                        self.id,
                        head.name,
                        p.records,
                        p.fraction
                            .map(|f| format!(" ({:.0}% of the changelog)", f * 100.0))
                            .unwrap_or_default(),
                        p.records_per_second
                    );
                }
                return Ok(false);
            };
            if let Some(offset) = stats.checkpoint_offset() {
                self.checkpoint
                    .set(head.changelog.clone(), self.partition, offset);
            }
            self.restored += stats.records;
            log::info!(
                "{thread}: restored {} records of {} for task {}{} in {} ms ({:.0} records/s)",
                stats.records,
                head.name,
                self.id,
                if self.from_standby {
                    " (the tail past its standby copy)"
                } else {
                    ""
                },
                (stats.seconds * 1000.0) as u64,
                stats.records_per_second()
            );
            self.pending.pop_front();
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(self.pending.is_empty())
    }

    /// The restored task, ready to process: checkpoint kept for the first commit (at-least-once)
    /// or removed (exactly-once: while the task runs no checkpoint exists, so a crash restores from the
    /// changelog instead of trusting local state that may be ahead of it), processors built
    /// and initialised.
    pub fn into_active(self, shared: &Shared, thread: &str) -> Result<TaskState> {
        let span = self.span.clone();
        let _in_task = span.enter();
        let restored_at = self.started.elapsed();
        // Under at-least-once the restored offsets go into the checkpoint at the task's first
        // commit, not here: its two fsyncs (10–40 ms on a busy disk) would delay every moved
        // task, and a crash before that commit only replays the changelog from the older
        // checkpoint again, which is idempotent.
        if eos(shared) {
            Checkpoint::delete(&self.checkpoint_path)?;
        }
        let mut task = Task::new(
            &shared.topology,
            &self.sub,
            self.partition,
            &shared.config.application_id,
            self.by_name,
            shared.global_stores(),
        );
        task.set_default_timestamp_extractor(shared.config.timestamp_extractor.0.clone());
        task.set_cache_max_bytes(shared.config.cache_max_bytes_buffering);
        for (topic, time) in &self.partition_times {
            task.resume_partition_time(topic, *time);
        }
        let checkpointed_at = self.started.elapsed();
        task.init(now_ms())?;
        let elapsed = self.started.elapsed();
        log::debug!(
            "{thread}: task {}: restored at {} ms, checkpoint at {} ms, init at {} ms",
            self.id,
            restored_at.as_millis(),
            checkpointed_at.as_millis(),
            elapsed.as_millis()
        );
        log::info!(
            "{thread}: task {} ready (stores restored) in {} ms",
            self.id,
            elapsed.as_millis()
        );
        shared.metrics.set_task_restore(
            &self.id,
            crate::runtime::TaskRestore {
                records: self.restored,
                records_per_second: self.restored as f64 / elapsed.as_secs_f64().max(1e-6),
                time_to_ready: elapsed,
                from_standby: self.from_standby,
            },
        );
        Ok(TaskState {
            task,
            store_ctx: self.store_ctx,
            stores: self.stores,
            checkpoint: self.checkpoint,
            partitions: self.partitions,
            span: self.span,
        })
    }

    /// Gives up the restore (the partition was revoked or lost): the stores close as they
    /// are, and the old checkpoint (if any) stays, so the next owner here restores from it.
    pub fn abandon(self, shared: &Shared) {
        shared.unregister_task(&self.id);
        for (_, store, _) in &self.stores {
            if let Err(e) = store.close() {
                log::warn!("closing a store of restoring task {}: {e}", self.id);
            }
        }
        shared.standbys.release_active(&self.id);
    }
}
