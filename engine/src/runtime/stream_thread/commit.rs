//! The commit protocol. At-least-once: output and changelog acknowledged (the producer is the
//! record collector, `producer.rs`), then input offsets committed, then checkpoints written.
//! Exactly-once: all three in one transaction, then the buffered store writes applied.

use super::*;

impl Core {
    pub(super) fn offsets(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for p in &self.partitions {
            let Some(offset) = p.consumed else { continue };
            let mut e = tpl.add_partition(&p.topic, p.partition);
            e.set_offset(Offset::Offset(offset))
                .map_err(Error::kafka("building the offsets to commit"))?;
            // Stream time survives a restart: the partition's time goes with its offset.
            let time = self
                .tasks
                .get(&p.task)
                .map_or(-1, |t| t.task.partition_time(&p.topic));
            if time >= 0 {
                e.set_metadata(crate::timestamp::encode_partition_time(time));
            }
        }
        Ok(tpl)
    }

    /// The commit protocol. At-least-once: output and changelog acknowledged, then input
    /// offsets committed, then checkpoints written. Exactly-once: all three in one transaction,
    /// then the buffered store writes applied.
    pub(super) fn commit(&mut self, consumer: &BaseConsumer<StreamContext>) -> Result<()> {
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
        self.lost = false;
        self.shared.metrics.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
