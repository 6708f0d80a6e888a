//! [`TopologyTestDriver`]: pipes records through a topology in-process — stores, punctuation and
//! all — with no broker, as Kafka Streams' `TopologyTestDriver` does.

use crate::record::{OutputRecord, Record, RecordMetadata};
use crate::task::{GlobalStores, GlobalTask, RecordCollector, Task};
use crate::topology::Topology;
use crate::{Error, Result};
use ks_stores::{KeyValueStore, MemoryChangelogSink, ReadOnlyKeyValueStore, StoreContext};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Capture {
    out: Vec<OutputRecord>,
}

impl RecordCollector for Capture {
    fn send(&mut self, out: OutputRecord) -> Result<()> {
        self.out.push(out);
        Ok(())
    }

    fn num_partitions(&mut self, _topic: &str) -> Result<i32> {
        Ok(1)
    }
}

/// Runs a topology with one task per sub-topology (partition 0) and real stores in a temporary
/// state directory. Sink output to a topic the topology also reads is fed back in, as through a
/// broker.
pub struct TopologyTestDriver {
    tasks: Vec<Task>,
    globals: Vec<(String, GlobalTask)>,
    source_topics: Vec<String>,
    outputs: HashMap<String, VecDeque<Record>>,
    stores: HashMap<String, Arc<dyn KeyValueStore>>,
    global_views: GlobalStores,
    changelog: Arc<MemoryChangelogSink>,
    offsets: HashMap<String, i64>,
    wall_clock: i64,
    _state_dir: tempfile::TempDir,
}

impl TopologyTestDriver {
    /// Builds every task and global task and calls their processors' `init`; the mock wall clock
    /// starts at `start_ms`. No record cache (`cache.max.bytes.buffering` = 0).
    pub fn new(topology: &Topology, start_ms: i64) -> Result<TopologyTestDriver> {
        TopologyTestDriver::with_cache_max_bytes(topology, start_ms, 0)
    }

    /// As [`TopologyTestDriver::new`], each task with a record cache of `cache_max_bytes`
    /// (see [`crate::cache`]). As Kafka Streams' driver, this one commits after every record
    /// it processes (piped or fed back), so a cache collapses the updates one record causes.
    pub fn with_cache_max_bytes(
        topology: &Topology,
        start_ms: i64,
        cache_max_bytes: usize,
    ) -> Result<TopologyTestDriver> {
        topology.validate()?;
        let state_dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
        let app = "test-driver";
        let changelog = Arc::new(MemoryChangelogSink::default());
        let mut stores: HashMap<String, Arc<dyn KeyValueStore>> = HashMap::new();
        let mut global_views: HashMap<String, Arc<dyn ReadOnlyKeyValueStore>> = HashMap::new();
        let mut globals = Vec::new();
        for g in &topology.globals {
            let ctx = StoreContext::new(state_dir.path(), app, "global", 0);
            let opened = g.spec.open(&ctx, None)?;
            global_views.insert(
                g.spec.name.clone(),
                ks_stores::read_only(opened.store.clone()),
            );
            stores.insert(g.spec.name.clone(), opened.store.clone());
            let mut gt = GlobalTask::new(
                &g.processor_name,
                (g.supplier)(),
                opened.store,
                &g.spec.name,
                app,
            );
            gt.init(start_ms)?;
            globals.push((g.topic.clone(), gt));
        }
        let global_views: GlobalStores = Arc::new(global_views);
        let mut tasks = Vec::new();
        for sub in topology.subtopologies() {
            let task_id = crate::task::task_id(sub.id, 0);
            let ctx = StoreContext::new(state_dir.path(), app, task_id, 0);
            let mut task_stores = HashMap::new();
            for name in &sub.stores {
                let spec = topology
                    .stores
                    .iter()
                    .find(|s| &s.name == name)
                    .ok_or_else(|| Error::UnknownStore(name.clone()))?;
                let sink: Arc<dyn ks_stores::ChangelogSink> = changelog.clone();
                let opened = spec.open(&ctx, Some(sink))?;
                stores.insert(name.clone(), opened.store.clone());
                task_stores.insert(name.clone(), opened.store);
            }
            let mut task = Task::new(topology, &sub, 0, app, task_stores, global_views.clone());
            task.set_cache_max_bytes(cache_max_bytes);
            task.init(start_ms)?;
            tasks.push(task);
        }
        Ok(TopologyTestDriver {
            tasks,
            globals,
            source_topics: topology.source_topics(),
            outputs: HashMap::new(),
            stores,
            global_views,
            changelog,
            offsets: HashMap::new(),
            wall_clock: start_ms,
            _state_dir: state_dir,
        })
    }

    /// Pipes one record into `topic` and runs it (and anything it feeds back) to completion.
    pub fn pipe(&mut self, topic: &str, record: Record) -> Result<()> {
        let mut queue = VecDeque::from([(topic.to_string(), record)]);
        while let Some((topic, record)) = queue.pop_front() {
            let offset = self.offsets.entry(topic.clone()).or_insert(0);
            let metadata = RecordMetadata {
                topic: topic.clone(),
                partition: 0,
                offset: *offset,
            };
            *offset += 1;
            if let Some((_, g)) = self.globals.iter_mut().find(|(t, _)| *t == topic) {
                g.process(&metadata, record, self.wall_clock)?;
                continue;
            }
            let mut capture = Capture::default();
            let task = self
                .tasks
                .iter_mut()
                .find(|t| t.reads(&topic))
                .ok_or_else(|| Error::InvalidTopology(format!("no source reads topic {topic}")))?;
            task.process(&metadata, record, &mut capture, self.wall_clock)?;
            self.commit(&mut capture)?;
            self.collect(capture, &mut queue);
        }
        Ok(())
    }

    /// Pipes records into `topic` as one poll batch, the way a stream thread runs them: the
    /// processors below the topic's source are told what comes first
    /// ([`TopologyTestDriver::prepare`]), then each record runs as
    /// [`TopologyTestDriver::pipe`] runs it.
    pub fn pipe_batch(&mut self, topic: &str, records: Vec<Record>) -> Result<()> {
        if records.len() > 1 {
            self.prepare(topic, &records)?;
        }
        for record in records {
            self.pipe(topic, record)?;
        }
        Ok(())
    }

    /// Tells the processors below `topic`'s source that `records` come next
    /// ([`crate::Processor::prepare`]), at the offsets [`TopologyTestDriver::pipe`] will give
    /// them, without running them: a test can then change the world (swap a model, say)
    /// before they arrive, or never pipe them.
    pub fn prepare(&mut self, topic: &str, records: &[Record]) -> Result<()> {
        let first = self.offsets.get(topic).copied().unwrap_or(0);
        let metadata: Vec<RecordMetadata> = (first..)
            .take(records.len())
            .map(|offset| RecordMetadata {
                topic: topic.to_string(),
                partition: 0,
                offset,
            })
            .collect();
        let upcoming: Vec<crate::Upcoming<'_>> = metadata
            .iter()
            .zip(records)
            .map(|(metadata, record)| crate::Upcoming { metadata, record })
            .collect();
        match self.tasks.iter_mut().find(|t| t.reads(topic)) {
            Some(task) => task.prepare(topic, &upcoming, self.wall_clock),
            None => Ok(()),
        }
    }

    // Kafka Streams' driver commits after every record: processors flush (record caches
    // forward their dirty entries) into the same capture.
    fn commit(&mut self, capture: &mut Capture) -> Result<()> {
        for task in &mut self.tasks {
            task.flush(capture, self.wall_clock)?;
        }
        Ok(())
    }

    /// Pipes a record with key, value and timestamp.
    pub fn pipe_input(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<()> {
        self.pipe(
            topic,
            Record::new(
                key.map(<[u8]>::to_vec),
                value.map(<[u8]>::to_vec),
                timestamp,
            ),
        )
    }

    fn collect(&mut self, capture: Capture, queue: &mut VecDeque<(String, Record)>) {
        for out in capture.out {
            if self.source_topics.contains(&out.topic)
                || self.globals.iter().any(|(t, _)| *t == out.topic)
            {
                queue.push_back((out.topic.clone(), out.record.clone()));
            }
            self.outputs
                .entry(out.topic)
                .or_default()
                .push_back(out.record);
        }
    }

    /// Moves the mock wall clock forward, firing wall-clock punctuations that come due.
    pub fn advance_wall_clock(&mut self, by: Duration) -> Result<()> {
        self.wall_clock += by.as_millis() as i64;
        let mut capture = Capture::default();
        for task in &mut self.tasks {
            task.punctuate_wall_clock(&mut capture, self.wall_clock)?;
        }
        self.commit(&mut capture)?;
        let mut queue = VecDeque::new();
        self.collect(capture, &mut queue);
        while let Some((topic, record)) = queue.pop_front() {
            self.pipe(&topic, record)?;
        }
        Ok(())
    }

    /// The next record written to `topic`, oldest first.
    pub fn read_output(&mut self, topic: &str) -> Option<Record> {
        self.outputs.get_mut(topic).and_then(VecDeque::pop_front)
    }

    /// Every record written to `topic` not read yet.
    pub fn read_all_output(&mut self, topic: &str) -> Vec<Record> {
        self.outputs
            .get_mut(topic)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// A store by name (task or global).
    pub fn store(&self, name: &str) -> Result<Arc<dyn KeyValueStore>> {
        self.stores
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStore(name.to_string()))
    }

    pub fn global_store(&self, name: &str) -> Result<Arc<dyn ReadOnlyKeyValueStore>> {
        self.global_views
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStore(name.to_string()))
    }

    /// Every changelog write so far: (topic, partition, key, value-or-tombstone).
    pub fn changelog(&self) -> Vec<(String, i32, ks_stores::ChangelogRecord)> {
        self.changelog.records()
    }

    pub fn wall_clock(&self) -> i64 {
        self.wall_clock
    }

    /// Closes every processor (their `close` output is captured too).
    pub fn close(mut self) -> Result<()> {
        let mut capture = Capture::default();
        for task in &mut self.tasks {
            task.close(&mut capture, self.wall_clock)?;
        }
        for (_, g) in &mut self.globals {
            g.close(self.wall_clock)?;
        }
        Ok(())
    }
}
