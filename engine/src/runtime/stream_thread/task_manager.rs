//! The task manager (Kafka Streams' `TaskManager`): which tasks this thread runs and how they
//! come and go with the group's assignment — opened and restored on assign (see
//! `state_manager`), suspended on an eager revoke and resumed if their partitions come back,
//! closed clean on a revoke (after a commit), closed dirty when partitions are lost or the
//! thread fails.

use super::*;

/// The ids of the tasks in `tasks` that hold any of `partitions`.
fn ids_touching<T>(
    tasks: &BTreeMap<String, T>,
    partitions_of: impl Fn(&T) -> &Vec<(String, i32)>,
    partitions: &[(String, i32)],
) -> Vec<String> {
    tasks
        .iter()
        .filter(|(_, t)| partitions_of(t).iter().any(|p| partitions.contains(p)))
        .map(|(id, _)| id.clone())
        .collect()
}

impl Core {
    /// Stops tracking `gone` partitions (their consumed offsets with them).
    /// Buffered records of gone tasks are dropped: their offsets were never committed, so they
    /// are fetched again by whoever processes the partition next.
    fn forget_partitions(&mut self, gone: &[(String, i32)]) {
        self.partitions
            .retain(|p| !gone.iter().any(|(t, n)| *t == p.topic && *n == p.partition));
        let partitions = &self.partitions;
        self.groups
            .retain(|id, _| partitions.iter().any(|p| p.task == *id));
        self.pause_for_buffer
            .retain(|tp| !gone.iter().any(|g| g == tp));
    }

    pub(super) fn assign(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        assigned: &[(String, i32)],
    ) -> Result<()> {
        let mut paused = TopicPartitionList::new();
        let mut fetching = TopicPartitionList::new();
        // New tasks resume from the partition time committed with their offsets.
        let mut opened = TopicPartitionList::new();
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
            if let Some(mut t) = self.suspended.remove(&id) {
                log::info!(
                    "{}: task {id} resumed (kept across the rebalance)",
                    self.name
                );
                t.task.restart_processors(&self.shared.topology, now_ms())?;
                self.tasks.insert(id.clone(), t);
            }
            let tp = (topic.clone(), *partition);
            if let Some(t) = self.tasks.get_mut(&id) {
                if !t.partitions.contains(&tp) {
                    t.partitions.push(tp);
                }
                fetching.add_partition(topic, *partition);
                continue;
            }
            opened.add_partition(topic, *partition);
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
        // A partition paused for a full buffer before an eager rebalance fetches again.
        if fetching.count() > 0 {
            consumer
                .resume(&fetching)
                .map_err(Error::kafka("resuming kept partitions"))?;
        }
        if opened.count() > 0 {
            let t = Instant::now();
            self.resume_partition_times(consumer, &opened);
            log::debug!(
                "{}: committed partition times read in {} ms",
                self.name,
                t.elapsed().as_millis()
            );
        }
        // Suspended tasks whose partitions went elsewhere close now.
        self.close_suspended()?;
        self.publish_tasks();
        Ok(())
    }

    /// Reads the partition times committed with the offsets of `partitions` into their
    /// restoring tasks. Without one (a first start, a broker that drops commit metadata) stream
    /// time starts from the first record, as it always did.
    fn resume_partition_times(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        partitions: &TopicPartitionList,
    ) {
        let committed =
            match consumer.committed_offsets(partitions.clone(), Duration::from_secs(10)) {
                Ok(c) => c,
                Err(e) => {
                    log::warn!(
                    "{}: reading committed partition times failed, stream time starts over: {e}",
                    self.name
                );
                    return;
                }
            };
        for e in committed.elements() {
            let Some(time) = crate::timestamp::decode_partition_time(e.metadata()) else {
                continue;
            };
            let Some(p) = self
                .partitions
                .iter()
                .find(|p| p.topic == e.topic() && p.partition == e.partition())
            else {
                continue;
            };
            if let Some(r) = self.restoring.get_mut(&p.task) {
                r.partition_times.insert(e.topic().to_string(), time);
            }
        }
    }

    /// An eager revoke (Kafka Streams' suspend): the revoked tasks' processors close (their
    /// last output and store writes go into this commit, one transaction under exactly-once),
    /// everything processed so far is committed, then the tasks are set aside with their stores
    /// open (see `suspended`) until the assignment that follows, which resumes them with new
    /// processors or closes their stores.
    pub(super) fn suspend(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        revoked: &[(String, i32)],
    ) -> Result<()> {
        self.abandon_restoring(revoked);
        let ids = ids_touching(&self.tasks, |t| &t.partitions, revoked);
        for id in &ids {
            if let Some(t) = self.tasks.get_mut(id) {
                let mut collector = ProducerCollector(&self.producer);
                t.task.close(&mut collector, now_ms())?;
            }
        }
        self.commit(consumer)?;
        for id in ids {
            if let Some(mut t) = self.tasks.remove(&id) {
                t.partitions.clear();
                self.suspended.insert(id, t);
            }
        }
        self.forget_partitions(revoked);
        self.publish_tasks();
        Ok(())
    }

    /// Closes the stores of the suspended tasks cleanly: their processors closed and their
    /// input offsets, output and changelog writes were committed when they were suspended.
    pub(super) fn close_suspended(&mut self) -> Result<()> {
        for (id, t) in std::mem::take(&mut self.suspended) {
            self.close_task_clean(&id, t)?;
        }
        Ok(())
    }

    /// Restores for about `budget`, then starts the tasks that are caught up: their
    /// partitions are resumed, from the first record that arrived while they restored.
    /// The restoring tasks take turns in short slices, so their restore consumers fetch in
    /// parallel (a failover moves several tasks at once) and a task whose changelog tail is
    /// short starts as soon as it has it, not after the others' turns.
    pub(super) fn restore_step(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        budget: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + budget;
        let slice = Duration::from_millis(5);
        loop {
            let ids: Vec<String> = self.restoring.keys().cloned().collect();
            for id in ids {
                let done = match self.restoring.get_mut(&id) {
                    Some(r) => r.step(&self.shared, &self.name, slice)?,
                    None => false,
                };
                if done {
                    self.start_restored(consumer, &id)?;
                }
            }
            if self.restoring.is_empty() || Instant::now() >= deadline {
                return Ok(());
            }
        }
    }

    fn start_restored(&mut self, consumer: &BaseConsumer<StreamContext>, id: &str) -> Result<()> {
        let Some(restored) = self.restoring.remove(id) else {
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
        self.tasks.insert(id.to_string(), state);
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
    pub(super) fn abandon_restoring(&mut self, partitions: &[(String, i32)]) {
        let ids = ids_touching(&self.restoring, |r| &r.partitions, partitions);
        for id in ids {
            if let Some(r) = self.restoring.remove(&id) {
                r.abandon(&self.shared);
            }
        }
    }

    pub(super) fn publish_tasks(&self) {
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

    pub(super) fn revoke(
        &mut self,
        consumer: &BaseConsumer<StreamContext>,
        revoked: &[(String, i32)],
    ) -> Result<()> {
        self.abandon_restoring(revoked);
        let closing = ids_touching(&self.tasks, |t| &t.partitions, revoked);
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
        self.forget_partitions(revoked);
        self.publish_tasks();
        Ok(())
    }

    /// Partitions lost without a clean revoke: their tasks close dirty (no commit, no new
    /// checkpoint), and the group's next assignment opens them again from what was committed.
    /// Under exactly-once the open transaction may hold records of any task of this thread,
    /// so it is aborted and every task closes dirty; under at-least-once only the lost ones.
    pub(super) fn lose(&mut self, lost: &[(String, i32)]) -> Result<()> {
        self.abandon_restoring(lost);
        // Suspended tasks were committed; what they hold is safe to close as it is.
        self.close_suspended()?;
        if self.producer.is_transactional() {
            self.close_dirty();
            return self.producer.begin();
        }
        let closing = ids_touching(&self.tasks, |t| &t.partitions, lost);
        for id in closing {
            if let Some(t) = self.tasks.remove(&id) {
                // Queries stop seeing the task before its stores close.
                self.shared.unregister_task(&id);
                for (_, store, _) in &t.stores {
                    if let Err(e) = store.close() {
                        log::warn!("{}: closing a store of lost task {id}: {e}", self.name);
                    }
                }
                self.shared.standbys.release_active(&id);
            }
        }
        self.forget_partitions(lost);
        self.publish_tasks();
        Ok(())
    }

    pub(super) fn close_task_clean(&mut self, id: &str, mut t: TaskState) -> Result<()> {
        t.update_checkpoint(&self.producer);
        self.shared.unregister_task(id);
        let closed = t.stores.iter().try_for_each(|(_, store, _)| store.close());
        let written = closed
            .map_err(crate::Error::from)
            .and_then(|()| Ok(t.checkpoint.write(t.store_ctx.checkpoint_path()?)?));
        // The checkpoint is written: a standby may open the stores from it.
        self.shared.standbys.release_active(id);
        written
    }

    /// After a failure: no commit. Under exactly-once the open transaction is aborted and the
    /// buffered writes dropped, so the input is processed again from the last commit. The local
    /// stores then hold exactly the committed state, so they are checkpointed past everything
    /// this producer wrote (committed or aborted): a restart restores nothing it should not,
    /// even on a broker that shows aborted records to read_committed consumers.
    pub(super) fn close_dirty(&mut self) {
        let clean_abort = if self.producer.is_transactional() {
            match self.producer.abort() {
                Ok(()) => true,
                Err(e @ Error::Fenced(_)) => {
                    log::info!("{}: {e}", self.name);
                    false
                }
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
            self.shared.unregister_task(&id);
            for (_, store, _) in &t.stores {
                let _ = store.close();
            }
            self.shared.standbys.release_active(&id);
        }
        self.partitions.clear();
        self.groups.clear();
        self.pause_for_buffer.clear();
        self.publish_tasks();
    }
}
