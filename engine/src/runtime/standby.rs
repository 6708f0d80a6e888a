//! Standby replicas (Kafka Streams' standby tasks, `num.standby.replicas`): warm copies of
//! tasks this instance does not run, kept by tailing their changelogs into local stores, so a
//! task that moves here replays only the tail past the copy's position instead of the whole
//! changelog.
//!
//! Placement. librdkafka has no pluggable assignor, so Kafka Streams' own (which places
//! standbys and warm-up tasks inside the group protocol) cannot be had. Instead every
//! instance decides for itself from the instance metadata (`metadata.rs`): for each task with
//! a changelogged store, the live instances other than its active owner are ranked by a
//! rendezvous hash of (task, instance) and the first `num.standby.replicas` hold a standby.
//! Every instance computes the same ranking from the same metadata, a copy stays where it is
//! when unrelated instances come and go, and with two instances the survivor of a failure
//! always holds the copy of every task it takes over. While a task has no live owner (its
//! instance died and the group has not reassigned it yet) its standbys stay as they are.
//!
//! One standby thread per instance reads every standby changelog partition with one consumer
//! that is *assigned* its partitions (no group), `read_committed` under exactly-once, applies
//! records in batches through `restore_batch` (no changelog writes) and checkpoints the
//! persistent stores every commit interval and at close, so a restarted instance resumes its
//! standbys from the checkpoint.
//!
//! Hand-over. A stream thread that opens a task first *claims* it here (`claim_active`):
//! if this instance holds the task's standby, its open stores and positions are handed over,
//! and the state manager restores only from the position on. While a task is claimed (open or
//! restoring on a stream thread) the standby thread never opens its stores; a claim ends only
//! after the active task's stores are closed (`release_active`), so the two never hold the
//! same store directory at once.

use crate::runtime::metadata::{self, StreamsMetadata};
use crate::runtime::Shared;
use crate::task::task_id;
use crate::topology::Subtopology;
use crate::{Error, ProcessingGuarantee, Result};
use ks_stores::{ChangelogSink, Checkpoint, EofAwareContext, KeyValueStore, StoreContext};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One changelogged store of a standby task.
pub(crate) struct StandbyStore {
    pub name: String,
    pub changelog: String,
    /// The store itself (no changelogging layer: a standby never writes its changelog).
    pub store: Arc<dyn KeyValueStore>,
    /// Offset of the last changelog record the store holds (`None`: nothing yet).
    pub applied: Option<i64>,
    /// The log end offset (next offset) last seen: at partition EOF, or from the fetch
    /// responses' high watermark.
    end: Option<i64>,
    /// The consumer's position after the records applied (past transaction markers, which
    /// hold no record, under exactly-once).
    position: Option<i64>,
}

impl StandbyStore {
    /// Records the store is behind its changelog, once the log end is known.
    pub fn lag(&self) -> Option<u64> {
        let end = self.end?;
        let next = self
            .applied
            .map_or(0, |a| a + 1)
            .max(self.position.unwrap_or(0));
        Some(end.saturating_sub(next).max(0) as u64)
    }
}

/// A standby task: the changelogged stores of one task this instance does not run.
pub(crate) struct StandbyTask {
    pub partition: i32,
    pub stores: Vec<StandbyStore>,
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
    /// Records applied since the standby opened.
    applied_records: u64,
}

impl StandbyTask {
    /// The task's lag: the largest over its stores, `None` while a store's end is unknown.
    pub fn lag(&self) -> Option<u64> {
        self.stores
            .iter()
            .map(StandbyStore::lag)
            .try_fold(0u64, |acc, l| l.map(|l| acc.max(l)))
    }

    /// Flushes the stores and records their positions in the checkpoint (persistent stores
    /// only: an in-memory copy does not survive a restart).
    fn checkpoint(&mut self) -> Result<()> {
        let mut any = false;
        for s in &self.stores {
            s.store.flush()?;
            if let (Some(applied), true) = (s.applied, s.store.persistent()) {
                self.checkpoint
                    .set(s.changelog.clone(), self.partition, applied);
                any = true;
            }
        }
        if any {
            self.checkpoint.write(&self.checkpoint_path)?;
        }
        Ok(())
    }

    fn close(mut self, id: &str) {
        if let Err(e) = self.checkpoint() {
            log::warn!("standby {id}: checkpoint at close failed: {e}");
        }
        for s in &self.stores {
            if let Err(e) = s.store.close() {
                log::warn!("standby {id}: closing store {}: {e}", s.name);
            }
        }
    }
}

/// A standby's position and lag, as `/state/instances` and the metrics show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandbyPartition {
    /// The task's source topic.
    pub topic: String,
    pub partition: i32,
    pub task: String,
    /// Changelog records the copy is behind (`None` until the log end is known).
    pub lag: Option<u64>,
    /// Records applied to the copy since it opened here.
    pub applied_records: u64,
}

#[derive(Default)]
struct Inner {
    /// Tasks whose stores a stream thread of this instance holds (open or restoring).
    active: HashSet<String>,
    tasks: BTreeMap<String, StandbyTask>,
    /// The set of standby changelog partitions changed: the consumer is assigned anew.
    reassign: bool,
}

/// The standby tasks of this instance, shared by the standby thread (which keeps them) and
/// the stream threads (which claim them when the task becomes active here).
#[derive(Default)]
pub(crate) struct Standbys {
    inner: Mutex<Inner>,
}

/// A standby's stores by name, each with the offset of the last changelog record it holds:
/// what is handed from a standby to the active task taking its place.
pub(crate) type HandedStores = HashMap<String, (Arc<dyn KeyValueStore>, Option<i64>)>;

impl Standbys {
    /// A stream thread takes task `id`: the standby thread keeps off its stores from now on,
    /// and the standby's open stores (with the offset each holds) are handed over if there is
    /// one.
    pub fn claim_active(&self, id: &str) -> Option<HandedStores> {
        let mut inner = self.inner.lock();
        inner.active.insert(id.to_string());
        let task = inner.tasks.remove(id)?;
        inner.reassign = true;
        Some(
            task.stores
                .into_iter()
                .map(|s| (s.name, (s.store, s.applied)))
                .collect(),
        )
    }

    /// The active task `id` closed its stores: a standby may open them again.
    pub fn release_active(&self, id: &str) {
        self.inner.lock().active.remove(id);
    }

    /// The standby copies of store `name` whose lag is known and at most `max_lag`.
    pub fn stores_within(&self, name: &str, max_lag: u64) -> Vec<Arc<dyn KeyValueStore>> {
        let inner = self.inner.lock();
        inner
            .tasks
            .values()
            .flat_map(|t| t.stores.iter())
            .filter(|s| s.name == name && s.lag().is_some_and(|l| l <= max_lag))
            .map(|s| s.store.clone())
            .collect()
    }

    /// Per standby task within `max_lag`, its copy of store `name`.
    pub fn task_stores_within(
        &self,
        name: &str,
        max_lag: u64,
    ) -> Vec<(String, Arc<dyn KeyValueStore>)> {
        let inner = self.inner.lock();
        inner
            .tasks
            .iter()
            .flat_map(|(id, t)| t.stores.iter().map(move |s| (id, s)))
            .filter(|(_, s)| s.name == name && s.lag().is_some_and(|l| l <= max_lag))
            .map(|(id, s)| (id.clone(), s.store.clone()))
            .collect()
    }

    /// Per standby task: its source partitions and lag.
    pub fn partitions(&self, shared: &Shared) -> Vec<StandbyPartition> {
        let inner = self.inner.lock();
        let mut out = Vec::new();
        for (id, t) in &inner.tasks {
            let Some(sub) = subtopology_of(shared, id) else {
                continue;
            };
            for topic in &sub.source_topics {
                out.push(StandbyPartition {
                    topic: topic.clone(),
                    partition: t.partition,
                    task: id.clone(),
                    lag: t.lag(),
                    applied_records: t.applied_records,
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Whether every standby this instance should hold is open and within `max_lag`.
    pub fn caught_up(&self, wanted: &BTreeSet<String>, max_lag: u64) -> bool {
        let inner = self.inner.lock();
        wanted.iter().all(|id| {
            inner
                .tasks
                .get(id)
                .is_some_and(|t| t.lag().is_some_and(|l| l <= max_lag))
        })
    }
}

fn subtopology_of<'a>(shared: &'a Shared, id: &str) -> Option<&'a Subtopology> {
    let sub_id: u32 = id.split_once('_')?.0.parse().ok()?;
    shared.subtopologies.iter().find(|s| s.id == sub_id)
}

/// A stable 64-bit FNV-1a hash: every instance must rank the same way, whatever its build.
fn rendezvous(task: &str, instance: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in task.bytes().chain([0u8]).chain(instance.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The instances that should hold standbys of task `id`: the live instances other than its
/// active `owner`, ranked by rendezvous hash, the first `replicas` of them.
pub(crate) fn standby_holders<'a>(
    id: &str,
    owner: Option<&str>,
    instances: &'a [StreamsMetadata],
    replicas: usize,
) -> Vec<&'a str> {
    let mut candidates: Vec<&str> = instances
        .iter()
        .map(|m| m.instance_id.as_str())
        .filter(|i| Some(*i) != owner)
        .collect();
    candidates.sort_by_key(|i| std::cmp::Reverse((rendezvous(id, i), *i)));
    candidates.truncate(replicas);
    candidates
}

/// What the placement says of one task for this instance.
enum Wanted {
    Hold,
    Drop,
    /// The task has no live owner right now: keep whatever is held.
    Keep,
}

/// The tasks with a changelogged store, by id, with their sub-topology and partition.
fn standby_candidates(shared: &Shared) -> Vec<(String, Subtopology, i32)> {
    let logged: HashSet<&str> = shared
        .topology
        .store_specs()
        .iter()
        .filter(|s| s.logging)
        .map(|s| s.name.as_str())
        .collect();
    let mut out = Vec::new();
    for sub in &shared.subtopologies {
        if !sub.stores.iter().any(|s| logged.contains(s.as_str())) {
            continue;
        }
        for p in 0..shared.task_count(sub) {
            out.push((task_id(sub.id, p), sub.clone(), p));
        }
    }
    out
}

fn placement(shared: &Shared) -> Vec<(String, Subtopology, i32, Wanted)> {
    let replicas = shared.config.num_standby_replicas;
    let instances = metadata::all(shared);
    let me = shared.instance_id.as_str();
    standby_candidates(shared)
        .into_iter()
        .map(|(id, sub, p)| {
            let owner = instances
                .iter()
                .find(|m| m.tasks.contains(&id))
                .map(|m| m.instance_id.as_str());
            let wanted = match owner {
                None => Wanted::Keep,
                Some(o) if o == me => Wanted::Drop,
                Some(o) => {
                    if standby_holders(&id, Some(o), &instances, replicas).contains(&me) {
                        Wanted::Hold
                    } else {
                        Wanted::Drop
                    }
                }
            };
            (id, sub, p, wanted)
        })
        .collect()
}

/// The standby tasks this instance should hold now (for the warm-up before joining).
pub(crate) fn wanted_now(shared: &Shared) -> BTreeSet<String> {
    placement(shared)
        .into_iter()
        .filter(|(_, _, _, w)| matches!(w, Wanted::Hold))
        .map(|(id, ..)| id)
        .collect()
}

/// The warm-up, done the only way librdkafka's assignors allow: they hand a joining member
/// tasks at once, caught up or not (Kafka Streams' own assignor would keep them on their old
/// owner and warm a copy up first). So an instance that starts while others already run the
/// application tails its standby copies *before* it joins the group, and joins once they are
/// within `acceptable.recovery.lag` (or after `max_warmup_wait`). With two instances the copy
/// is of every task the new one can be given; with more, of the tasks the placement gives it.
pub(crate) fn warm_up(shared: &Shared, thread: &str) {
    let cfg = &shared.config;
    if cfg.num_standby_replicas == 0 || cfg.max_warmup_wait.is_zero() {
        return;
    }
    let started = Instant::now();
    // Long enough to have read every live instance's heartbeat.
    let grace = cfg.metadata_heartbeat + Duration::from_secs(1);
    while !shared.shutdown.load(Ordering::SeqCst) {
        let elapsed = started.elapsed();
        let others_run = metadata::all(shared)
            .iter()
            .any(|m| m.instance_id != shared.instance_id && !m.tasks.is_empty());
        let wanted = wanted_now(shared);
        if elapsed >= grace && (!others_run || wanted.is_empty()) {
            return;
        }
        if others_run
            && !wanted.is_empty()
            && shared
                .standbys
                .caught_up(&wanted, cfg.acceptable_recovery_lag)
        {
            log::info!(
                "{thread}: {} standby copies warmed up in {} ms; joining the group",
                wanted.len(),
                elapsed.as_millis()
            );
            return;
        }
        if elapsed >= cfg.max_warmup_wait {
            log::warn!(
                "{thread}: standby copies not caught up after {} s; joining the group anyway",
                elapsed.as_secs()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A changelog sink for standby stores, which are written by restore only.
struct RefuseWrites;

impl ChangelogSink for RefuseWrites {
    fn send(
        &self,
        topic: &str,
        partition: i32,
        _: &[u8],
        _: Option<&[u8]>,
    ) -> ks_stores::Result<()> {
        Err(ks_stores::Error::InvalidConfig(format!(
            "a standby store is read-only (write to {topic}[{partition}] refused)"
        )))
    }
}

fn eos(shared: &Shared) -> bool {
    shared.config.processing_guarantee == ProcessingGuarantee::ExactlyOnce
}

/// Opens the changelogged stores of task `id` as a standby, from their checkpoint.
fn open_standby(
    shared: &Shared,
    sub: &Subtopology,
    partition: i32,
    id: &str,
) -> Result<StandbyTask> {
    let cfg = &shared.config;
    let store_ctx = StoreContext::new(&cfg.state_dir, &cfg.application_id, id, partition);
    let checkpoint_path = store_ctx.checkpoint_path()?;
    let checkpoint = Checkpoint::read(&checkpoint_path)?;
    let sink: Arc<dyn ChangelogSink> = Arc::new(RefuseWrites);
    let mut stores: Vec<StandbyStore> = Vec::new();
    for name in &sub.stores {
        let spec = shared
            .topology
            .store_specs()
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| Error::UnknownStore(name.clone()))?;
        if !spec.logging {
            continue;
        }
        let changelog = ks_stores::changelog_topic(&cfg.application_id, name);
        // As for an active task: without a checkpoint under exactly-once the local state
        // cannot be trusted, so the copy is rebuilt from the changelog.
        if eos(shared) && checkpoint.offset(&changelog, partition).is_none() {
            spec.wipe(&store_ctx)?;
        }
        let opened = match spec.open(&store_ctx, Some(sink.clone())) {
            Ok(o) => o,
            Err(e) => {
                for s in &stores {
                    let _ = s.store.close();
                }
                return Err(e.into());
            }
        };
        stores.push(StandbyStore {
            name: name.clone(),
            changelog,
            applied: opened.restore_after(&checkpoint),
            store: opened.inner,
            end: None,
            position: None,
        });
    }
    Ok(StandbyTask {
        partition,
        stores,
        checkpoint,
        checkpoint_path,
        applied_records: 0,
    })
}

/// Brings the held standbys in line with the placement.
fn reconcile(shared: &Shared, standbys: &Standbys) {
    let plan = placement(shared);
    let mut inner = standbys.inner.lock();
    let before: Vec<String> = inner.tasks.keys().cloned().collect();
    for (id, sub, p, wanted) in plan {
        let held = inner.tasks.contains_key(&id);
        match wanted {
            Wanted::Hold if !held && !inner.active.contains(&id) => {
                match open_standby(shared, &sub, p, &id) {
                    Ok(t) => {
                        log::info!(
                            "standby: holding task {id} (from {})",
                            t.stores
                                .iter()
                                .map(|s| s.applied.map_or("the beginning".to_string(), |a| {
                                    format!("offset {}", a + 1)
                                }))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        inner.tasks.insert(id, t);
                        inner.reassign = true;
                    }
                    // The stores may still be held by a closing task of another process
                    // (a restarted instance); tried again at the next round.
                    Err(e) => log::debug!("standby: cannot open task {id} yet: {e}"),
                }
            }
            Wanted::Drop if held => {
                if let Some(t) = inner.tasks.remove(&id) {
                    log::info!("standby: task {id} no longer held here");
                    t.close(&id);
                    inner.reassign = true;
                }
            }
            _ => {}
        }
    }
    if inner.tasks.keys().ne(before.iter()) {
        shared.metadata_dirty.store(true, Ordering::SeqCst);
    }
}

fn assignment(inner: &Inner) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for t in inner.tasks.values() {
        for s in &t.stores {
            let offset = match s.applied {
                Some(a) => Offset::Offset(a + 1),
                None => Offset::Beginning,
            };
            tpl.add_partition_offset(&s.changelog, t.partition, offset)
                .map_err(Error::kafka("assigning standby changelogs"))?;
        }
    }
    Ok(tpl)
}

/// Applies `batch` (changelog records by topic and partition, with their last offset).
fn apply(shared: &Shared, standbys: &Standbys, batch: BatchByPartition) -> Result<()> {
    let mut inner = standbys.inner.lock();
    for ((topic, partition), (records, last)) in batch {
        // A task claimed meanwhile: its records are the new owner's to restore.
        let Some(t) = inner
            .tasks
            .values_mut()
            .find(|t| t.partition == partition && t.stores.iter().any(|s| s.changelog == topic))
        else {
            continue;
        };
        let Some(s) = t.stores.iter_mut().find(|s| s.changelog == topic) else {
            continue;
        };
        s.store.restore_batch(&records)?;
        s.applied = Some(last);
        if s.end.is_some_and(|e| e <= last) {
            s.end = Some(last + 1);
        }
        let n = records.len() as u64;
        t.applied_records += n;
        shared
            .metrics
            .standby_records
            .fetch_add(n, Ordering::Relaxed);
    }
    Ok(())
}

type BatchByPartition = HashMap<(String, i32), (Vec<ks_stores::ChangelogRecord>, i64)>;

/// Runs the standby thread until shutdown.
pub(crate) fn run(shared: Arc<Shared>) -> Result<()> {
    let cfg = &shared.config;
    let mut client = cfg.client_for(ks_kafka::ClientKind::Consumer);
    client
        .set("group.id", format!("{}-standby", cfg.application_id))
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100");
    if eos(&shared) {
        client.set("isolation.level", "read_committed");
    }
    client.set("statistics.interval.ms", "500");
    let consumer: BaseConsumer<StandbyContext> = client
        .create_with_context(StandbyContext {
            read_committed: eos(&shared),
            ends: Mutex::new(HashMap::new()),
        })
        .map_err(Error::kafka("creating the standby consumer"))?;
    let standbys = &shared.standbys;
    let mut last_reconcile: Option<Instant> = None;
    let mut last_checkpoint = Instant::now();
    while !shared.shutdown.load(Ordering::SeqCst) {
        if last_reconcile.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) {
            reconcile(&shared, standbys);
            last_reconcile = Some(Instant::now());
        }
        {
            let mut inner = standbys.inner.lock();
            if inner.reassign {
                let tpl = assignment(&inner)?;
                consumer
                    .assign(&tpl)
                    .map_err(Error::kafka("assigning standby changelogs"))?;
                inner.reassign = false;
            }
        }
        let mut batch: BatchByPartition = HashMap::new();
        let mut eof = Vec::new();
        let mut taken = 0usize;
        let until = Instant::now() + Duration::from_millis(50);
        // Small batches: a stream thread claiming a task waits for the one being applied.
        while taken < 2_000 {
            let wait = until.saturating_duration_since(Instant::now());
            match consumer.poll(wait) {
                Some(Ok(m)) => {
                    let Some(key) = m.key() else { continue };
                    let entry = batch
                        .entry((m.topic().to_string(), m.partition()))
                        .or_insert_with(|| (Vec::new(), m.offset()));
                    entry
                        .0
                        .push((key.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    entry.1 = m.offset();
                    taken += 1;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => eof.push(p),
                Some(Err(e)) => log::warn!("standby consumer: {e}"),
                None => break,
            }
        }
        apply(&shared, standbys, batch)?;
        update_positions(&consumer, standbys, &eof);
        update_ends(&consumer, standbys);
        if last_checkpoint.elapsed() >= cfg.commit_interval {
            let mut inner = standbys.inner.lock();
            for (id, t) in inner.tasks.iter_mut() {
                if let Err(e) = t.checkpoint() {
                    log::warn!("standby {id}: checkpoint failed: {e}");
                }
            }
            last_checkpoint = Instant::now();
        }
    }
    let mut inner = standbys.inner.lock();
    for (id, t) in std::mem::take(&mut inner.tasks) {
        t.close(&id);
    }
    Ok(())
}

/// Records each store's position after what was applied; at partition EOF (`eof`: the
/// partitions that reported it) the position is also the log end.
fn update_positions(consumer: &BaseConsumer<StandbyContext>, standbys: &Standbys, eof: &[i32]) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    let mut inner = standbys.inner.lock();
    for t in inner.tasks.values_mut() {
        for s in &mut t.stores {
            let Some(e) = positions.find_partition(&s.changelog, t.partition) else {
                continue;
            };
            if let Offset::Offset(o) = e.offset() {
                s.position = Some(o);
                if eof.contains(&t.partition) {
                    // A store of this partition not at its end yet keeps the larger high
                    // watermark.
                    s.end = Some(s.end.map_or(o, |old| old.max(o)));
                }
            }
        }
    }
}

/// The standby consumer's context: partition EOF is an expected event (logged at debug), and
/// librdkafka's statistics give each partition's log end (the fetch responses' high
/// watermark, or last stable offset under read_committed; not a ListOffsets query, which the
/// local broker answers wrongly).
struct StandbyContext {
    read_committed: bool,
    ends: Mutex<HashMap<(String, i32), i64>>,
}

impl rdkafka::ClientContext for StandbyContext {
    fn error(&self, error: KafkaError, reason: &str) {
        EofAwareContext.error(error, reason);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut ends = self.ends.lock();
        for (topic, t) in &statistics.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0) {
                let end = if self.read_committed {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                if end >= 0 {
                    ends.insert((topic.clone(), p.partition), end);
                }
            }
        }
    }
}

impl rdkafka::consumer::ConsumerContext for StandbyContext {}

/// The log ends from the latest statistics raise the known ends.
fn update_ends(consumer: &BaseConsumer<StandbyContext>, standbys: &Standbys) {
    let ends = consumer.context().ends.lock().clone();
    let mut inner = standbys.inner.lock();
    for t in inner.tasks.values_mut() {
        for s in &mut t.stores {
            if let Some(&end) = ends.get(&(s.changelog.clone(), t.partition)) {
                s.end = Some(s.end.map_or(end, |e| e.max(end)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str) -> StreamsMetadata {
        StreamsMetadata {
            instance_id: id.into(),
            host: String::new(),
            port: 0,
            state_stores: vec![],
            topic_partitions: vec![],
            tasks: vec![],
            heartbeat_ms: 0,
            shutdown_requested: None,
            standby_partitions: vec![],
        }
    }

    #[test]
    fn the_owner_never_holds_its_own_standby_and_placement_is_stable() {
        let all: Vec<_> = ["a", "b", "c", "d"].into_iter().map(instance).collect();
        for task in ["0_0", "0_1", "0_2", "1_3"] {
            let holders = standby_holders(task, Some("b"), &all, 2);
            assert_eq!(holders.len(), 2);
            assert!(!holders.contains(&"b"));
            // Removing an instance that holds no copy moves nothing.
            let spare = ["a", "c", "d"]
                .into_iter()
                .find(|i| !holders.contains(i))
                .unwrap();
            let fewer: Vec<_> = all
                .iter()
                .filter(|m| m.instance_id != spare)
                .cloned()
                .collect();
            assert_eq!(standby_holders(task, Some("b"), &fewer, 2), holders);
        }
    }

    #[test]
    fn with_two_instances_the_other_one_holds_the_copy() {
        let all: Vec<_> = ["x", "y"].into_iter().map(instance).collect();
        assert_eq!(standby_holders("0_0", Some("x"), &all, 1), vec!["y"]);
        assert_eq!(standby_holders("0_0", Some("y"), &all, 3), vec!["x"]);
        assert!(standby_holders("0_0", Some("x"), &all, 0).is_empty());
    }
}
