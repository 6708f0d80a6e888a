//! The global thread: every instance reads all partitions of each global store's topic through
//! the store's processor, from the beginning, and keeps following it. Stream threads start
//! only after every global partition has been read to its end once (librdkafka's EOF event;
//! the local broker's watermark query is not trusted).

use crate::runtime::{now_ms, Shared};
use crate::task::GlobalTask;
use crate::topology::GlobalReset;
use crate::{Error, Result};
use ks_stores::restore::EofAwareContext;
use ks_stores::{KeyValueStore, StoreContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct OpenedGlobals {
    pub tasks: Vec<(String, GlobalTask)>,
    pub resets: Vec<(String, GlobalReset)>,
    pub stores: Vec<(String, Arc<dyn KeyValueStore>)>,
}

/// Opens the global stores, empty: the topic is their changelog and is always read whole.
pub(crate) fn open(shared: &Shared) -> Result<OpenedGlobals> {
    let cfg = &shared.config;
    let ctx = StoreContext::new(&cfg.state_dir, &cfg.application_id, "global", 0);
    let mut tasks = Vec::new();
    let mut stores = Vec::new();
    let mut resets = Vec::new();
    for g in &shared.topology.globals {
        resets.push((g.topic.clone(), g.reset));
        g.spec.wipe(&ctx)?;
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
    })
}

pub(crate) fn run(
    shared: Arc<Shared>,
    mut globals: OpenedGlobals,
    bootstrapped: Sender<Result<()>>,
) -> Result<()> {
    let cfg = &shared.config;
    // One consumer per global topic: librdkafka's EOF event names only the partition.
    let mut consumers: Vec<(BaseConsumer<EofAwareContext>, HashSet<i32>)> = Vec::new();
    for (topic, reset) in &globals.resets {
        let consumer: BaseConsumer<EofAwareContext> = cfg
            .base_client()
            .set("group.id", format!("{}-global", cfg.application_id))
            .set("client.id", format!("{}-GlobalThread", cfg.application_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
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
            let start = match reset {
                GlobalReset::Earliest => Offset::Beginning,
                // On the local broker `End` resolves through its watermark query, which points
                // at the last batch's base offset + 1: a model topic's batches are single
                // messages, so that is its end.
                GlobalReset::Latest => Offset::End,
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
    while !shared.shutdown.load(Ordering::SeqCst) {
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
                    // A bad global record must not take the instance down: every instance
                    // would fail alike on it.
                    if let Err(e) = globals.tasks[i].1.process(&metadata, record, now_ms()) {
                        shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        log::warn!(
                            "global store update from {}[{}]@{} failed: {e}",
                            metadata.topic,
                            metadata.partition,
                            metadata.offset
                        );
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    pending.remove(&p);
                }
                Some(Err(e)) => log::warn!("global consumer: {e}"),
                None => {}
            }
        }
    }
    for (_, task) in &mut globals.tasks {
        let _ = task.close(now_ms());
    }
    for (_, store) in &globals.stores {
        let _ = store.close();
    }
    Ok(())
}
