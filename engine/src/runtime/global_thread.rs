//! The global thread: every instance reads all partitions of each global store's topic through
//! the store's processor and keeps following it. Stream threads start only after every global
//! partition has been read to its end once (librdkafka's EOF event; the local broker's
//! watermark query is not trusted).
//!
//! - A persistent global store (RocksDB, file) keeps a checkpoint of the offsets it has
//!   processed (`<state.dir>/<application.id>/global/.checkpoint`, written at each commit
//!   interval and at close) and resumes after it; an in-memory one (or one without checkpoint)
//!   is rebuilt from the topic's beginning.
//! - Under exactly-once it reads only committed records (read_committed), otherwise
//!   read_uncommitted, as Kafka Streams' global consumer does.
//! - A data error of its processor is counted and follows the processing handler (continue, or
//!   fail the instance; dead-lettering logs and goes on: the global thread has no producer);
//!   any other error fails the instance.

use crate::runtime::config::{ErrorHandling, ProcessingGuarantee};
use crate::runtime::{now_ms, Shared};
use crate::task::GlobalTask;
use crate::topology::GlobalReset;
use crate::{Error, Result};
use ks_stores::restore::EofAwareContext;
use ks_stores::{Checkpoint, KeyValueStore, StoreContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct OpenedGlobals {
    pub tasks: Vec<(String, GlobalTask)>,
    pub resets: Vec<(String, GlobalReset)>,
    pub stores: Vec<(String, Arc<dyn KeyValueStore>)>,
    /// Per global topic: whether its store is persistent (so checkpointed).
    persistent: Vec<bool>,
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
}

/// Opens the global stores: a persistent one with a checkpoint as it is, any other empty.
pub(crate) fn open(shared: &Shared) -> Result<OpenedGlobals> {
    let cfg = &shared.config;
    let ctx = StoreContext::new(&cfg.state_dir, &cfg.application_id, "global", 0);
    let checkpoint_path = ctx.checkpoint_path()?;
    let checkpoint = Checkpoint::read(&checkpoint_path)?;
    let mut tasks = Vec::new();
    let mut stores = Vec::new();
    let mut resets = Vec::new();
    let mut persistent = Vec::new();
    for g in &shared.topology.globals {
        resets.push((g.topic.clone(), g.reset));
        let durable = g.spec.kind().is_some_and(|k| k.dir_name().is_some());
        let checkpointed = checkpoint.iter().any(|(t, _, _)| t == g.topic);
        if !(durable && checkpointed && g.reset == GlobalReset::Earliest) {
            g.spec.wipe(&ctx)?;
        }
        persistent.push(durable);
        let opened = g.spec.open(&ctx, None)?;
        let mut task = GlobalTask::new(
            &g.processor_name,
            (g.supplier)(),
            opened.store.clone(),
            &g.spec.name,
            &cfg.application_id,
        );
        task.init(now_ms())?;
        stores.push((g.spec.name.clone(), opened.store));
        tasks.push((g.topic.clone(), task));
    }
    Ok(OpenedGlobals {
        tasks,
        resets,
        stores,
        persistent,
        checkpoint,
        checkpoint_path,
    })
}

impl OpenedGlobals {
    /// Flushes the persistent stores and records how far they have processed.
    fn write_checkpoint(&mut self, processed: &HashMap<(String, i32), i64>) -> Result<()> {
        let mut any = false;
        for (i, (topic, _)) in self.resets.iter().enumerate() {
            if !self.persistent[i] {
                continue;
            }
            self.stores[i].1.flush()?;
            for ((t, p), o) in processed {
                if t == topic {
                    self.checkpoint.set(t.clone(), *p, *o);
                    any = true;
                }
            }
        }
        if any {
            self.checkpoint.write(&self.checkpoint_path)?;
        }
        Ok(())
    }
}

pub(crate) fn run(
    shared: Arc<Shared>,
    mut globals: OpenedGlobals,
    bootstrapped: Sender<Result<()>>,
) -> Result<()> {
    let cfg = &shared.config;
    let isolation = if cfg.processing_guarantee == ProcessingGuarantee::ExactlyOnce {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    // One consumer per global topic: librdkafka's EOF event names only the partition.
    let mut consumers: Vec<(BaseConsumer<EofAwareContext>, HashSet<i32>)> = Vec::new();
    for (i, (topic, reset)) in globals.resets.iter().enumerate() {
        let consumer: BaseConsumer<EofAwareContext> = cfg
            .client_for(ks_kafka::ClientKind::Consumer)
            .set("group.id", format!("{}-global", cfg.application_id))
            .set("client.id", format!("{}-GlobalThread", cfg.application_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", isolation)
            .create_with_context(EofAwareContext)
            .map_err(Error::kafka("creating the global consumer"))?;
        let n = *shared
            .partition_counts
            .get()
            .and_then(|c| c.get(topic))
            .ok_or_else(|| {
                Error::InvalidTopology(format!("global topic {topic} does not exist"))
            })?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..n {
            let resume = globals.persistent[i]
                .then(|| globals.checkpoint.offset(topic, p))
                .flatten();
            let start = match (reset, resume) {
                (GlobalReset::Earliest, Some(done)) => Offset::Offset(done + 1),
                (GlobalReset::Earliest, None) => Offset::Beginning,
                // On the local broker `End` resolves through its watermark query, which points
                // at the last batch's base offset + 1: a model topic's batches are single
                // messages, so that is its end.
                (GlobalReset::Latest, _) => Offset::End,
            };
            tpl.add_partition_offset(topic, p, start)
                .map_err(Error::kafka("assigning global partitions"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(Error::kafka("assigning global partitions"))?;
        consumers.push((consumer, (0..n).collect()));
    }
    let mut bootstrapped = Some(bootstrapped);
    let timeout = Duration::from_millis((100 / consumers.len().max(1)) as u64);
    let mut processed: HashMap<(String, i32), i64> = HashMap::new();
    let mut last_checkpoint = Instant::now();
    let result = follow(
        &shared,
        &mut globals,
        &mut consumers,
        &mut bootstrapped,
        timeout,
        &mut processed,
        &mut last_checkpoint,
    );
    for (_, task) in &mut globals.tasks {
        if let Err(e) = task.close(now_ms()) {
            log::warn!("closing a global processor: {e}");
        }
    }
    match &result {
        Ok(()) => globals.write_checkpoint(&processed)?,
        Err(e) => {
            // Failing before the stores were bootstrapped fails start() with the reason.
            if let Some(tx) = bootstrapped.take() {
                let _ = tx.send(Err(Error::NotRunning(format!(
                    "the global thread failed: {e}"
                ))));
            }
        }
    }
    for (_, store) in &globals.stores {
        if let Err(e) = store.close() {
            log::warn!("closing a global store: {e}");
        }
    }
    result
}

type GlobalConsumers = Vec<(BaseConsumer<EofAwareContext>, HashSet<i32>)>;

#[allow(clippy::too_many_arguments)]
fn follow(
    shared: &Shared,
    globals: &mut OpenedGlobals,
    consumers: &mut GlobalConsumers,
    bootstrapped: &mut Option<Sender<Result<()>>>,
    timeout: Duration,
    processed: &mut HashMap<(String, i32), i64>,
    last_checkpoint: &mut Instant,
) -> Result<()> {
    while !shared.shutdown.load(Ordering::SeqCst) {
        if last_checkpoint.elapsed() >= shared.config.commit_interval {
            globals.write_checkpoint(processed)?;
            *last_checkpoint = Instant::now();
        }
        if consumers.iter().all(|(_, pending)| pending.is_empty()) {
            if let Some(tx) = bootstrapped.take() {
                log::info!("global stores bootstrapped");
                let _ = tx.send(Ok(()));
            }
        }
        if consumers.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (i, (consumer, pending)) in consumers.iter_mut().enumerate() {
            match consumer.poll(timeout) {
                Some(Ok(m)) => {
                    let (metadata, record) = crate::runtime::stream_thread::to_record(&m);
                    drop(m);
                    let position = (metadata.topic.clone(), metadata.partition);
                    let offset = metadata.offset;
                    if let Err(e) = globals.tasks[i].1.process(&metadata, record, now_ms()) {
                        shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        let failing = !e.is_data_error()
                            || shared.config.error_handling == ErrorHandling::LogAndFail;
                        if failing {
                            return Err(e);
                        }
                        log::warn!(
                            "global store update from {}[{}]@{offset} failed, going on: {e}",
                            position.0,
                            position.1,
                        );
                    }
                    processed.insert(position, offset);
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    pending.remove(&p);
                }
                Some(Err(e)) => log::warn!("global consumer: {e}"),
                None => {}
            }
        }
    }
    Ok(())
}
