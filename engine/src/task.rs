//! A task: one sub-topology instantiated for one partition (its own processors and stores),
//! driving records from its sources through the graph to its sinks. Used alike by the Kafka
//! runtime and by the test driver, so topology logic tested in-process is the logic that runs.

use crate::processor::{
    Processor, ProcessorContext, PunctuationType, Schedule, StreamPartitioner, Upcoming,
};
use crate::record::{Header, OutputRecord, Record, RecordMetadata};

/// Records a processor forwarded: to one child (`Some`) or to all of them.
type Forwarded = Vec<(Option<usize>, Record)>;
use crate::cache::CacheBudget;
use crate::timestamp::{RecordTimestamp, TimestampExtractor};
use crate::topology::{NodeKind, Subtopology, Topology};
use crate::{Error, Result};
use ks_stores::{KeyValueStore, ReadOnlyKeyValueStore};
use std::collections::HashMap;
use std::sync::Arc;

/// The largest forward buffer (in records) kept for reuse.
const MAX_SPARE_FORWARDED: usize = 64;

/// Where sink output goes: the producer in the runtime, a capture in the test driver.
pub trait RecordCollector {
    fn send(&mut self, out: OutputRecord) -> Result<()>;
    /// How many partitions `topic` has (for a sink's partitioner).
    fn num_partitions(&mut self, topic: &str) -> Result<i32>;
}

enum RtKind {
    Absent,
    Source,
    Processor(Box<dyn Processor>),
    Sink {
        topic: String,
        partitioner: Option<Arc<dyn StreamPartitioner>>,
        /// The topic's partition count once asked for (a partitioner needs it per record).
        partitions: Option<i32>,
    },
}

struct NodeRt {
    name: String,
    kind: RtKind,
    children: Vec<(String, usize)>,
    stores: Vec<String>,
}

/// Global stores every processor may read.
pub type GlobalStores = Arc<HashMap<String, Arc<dyn ReadOnlyKeyValueStore>>>;

pub struct Task {
    pub id: String,
    pub subtopology: u32,
    pub partition: i32,
    application_id: String,
    nodes: Vec<NodeRt>,
    sources: HashMap<String, usize>,
    stores: HashMap<String, Arc<dyn KeyValueStore>>,
    global_stores: GlobalStores,
    schedules: Vec<Schedule>,
    stream_time: i64,
    /// Source nodes' own timestamp extractors, by node; the others use `default_extractor`.
    extractors: Vec<Option<Arc<dyn TimestampExtractor>>>,
    default_extractor: Arc<dyn TimestampExtractor>,
    /// The highest timestamp processed from each input topic's partition (-1 before any).
    /// A task reads one or a few topics: a short list searched by name beats hashing the
    /// topic name for every record.
    partition_times: Vec<(String, i64)>,
    /// The record caches' budget (`cache.max.bytes.buffering`; 0 by default: no caching).
    cache: Arc<CacheBudget>,
    /// Emptied forward buffers, reused by the next processor run (one per nesting level) so
    /// forwarding allocates nothing per record.
    spare_forwarded: Vec<Forwarded>,
}

/// Runs user code of processor `name`: a panic in it becomes a processing error of that
/// processor (so it reaches the processing handler, as an exception thrown by a Kafka Streams
/// processor does) instead of silently ending the stream thread.
pub(crate) fn guarded<R>(name: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::processing(name, panic_message(&*payload))))
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".into());
    format!("panicked: {text}")
}

pub fn task_id(subtopology: u32, partition: i32) -> String {
    format!("{subtopology}_{partition}")
}

impl Task {
    /// Instantiates `sub` of `topology` for `partition` with its opened `stores`.
    pub fn new(
        topology: &Topology,
        sub: &Subtopology,
        partition: i32,
        application_id: &str,
        stores: HashMap<String, Arc<dyn KeyValueStore>>,
        global_stores: GlobalStores,
    ) -> Task {
        let mut nodes: Vec<NodeRt> = topology
            .nodes
            .iter()
            .map(|n| NodeRt {
                name: n.name.clone(),
                kind: RtKind::Absent,
                children: n
                    .children
                    .iter()
                    .map(|&c| (topology.nodes[c].name.clone(), c))
                    .collect(),
                stores: n.stores.clone(),
            })
            .collect();
        let mut sources = HashMap::new();
        let mut extractors = vec![None; nodes.len()];
        for &i in &sub.nodes {
            if let Some(e) = topology.extractors.get(&topology.nodes[i].name) {
                extractors[i] = Some(e.clone());
            }
            nodes[i].kind = match &topology.nodes[i].kind {
                NodeKind::Source { topics } => {
                    for t in topics {
                        sources.insert(t.clone(), i);
                    }
                    RtKind::Source
                }
                NodeKind::Processor { supplier } => RtKind::Processor(supplier()),
                NodeKind::Sink { topic, partitioner } => RtKind::Sink {
                    topic: topic.clone(),
                    partitioner: partitioner.clone(),
                    partitions: None,
                },
            };
        }
        Task {
            id: task_id(sub.id, partition),
            subtopology: sub.id,
            partition,
            application_id: application_id.to_string(),
            nodes,
            sources,
            stores,
            global_stores,
            schedules: Vec::new(),
            spare_forwarded: Vec::new(),
            stream_time: -1,
            extractors,
            default_extractor: Arc::new(RecordTimestamp),
            partition_times: Vec::new(),
            cache: CacheBudget::disabled(),
        }
    }

    /// Gives this task's record caches `bytes` (`cache.max.bytes.buffering`; 0 disables them).
    /// Call before `init`: processors take their caches from the budget they first see.
    pub fn set_cache_max_bytes(&mut self, bytes: usize) {
        self.cache = CacheBudget::new(bytes);
    }

    /// The extractor of sources without their own (the runtime's `default.timestamp.extractor`).
    pub fn set_default_timestamp_extractor(&mut self, extractor: Arc<dyn TimestampExtractor>) {
        self.default_extractor = extractor;
    }

    /// The event time of `record` (from `metadata`'s topic), without processing it.
    pub fn extract_timestamp(&self, metadata: &RecordMetadata, record: &Record) -> Result<i64> {
        let source = self.sources.get(&metadata.topic).copied();
        self.extract_from(source, metadata, record)
    }

    /// [`Task::extract_timestamp`] of a record read by source node `source`.
    fn extract_from(
        &self,
        source: Option<usize>,
        metadata: &RecordMetadata,
        record: &Record,
    ) -> Result<i64> {
        let extractor = source
            .and_then(|i| self.extractors.get(i)?.as_ref())
            .unwrap_or(&self.default_extractor);
        let partition_time = self.partition_time(&metadata.topic);
        let timestamp = extractor.extract(metadata, record, partition_time)?;
        if timestamp < 0 {
            return Err(Error::InvalidTimestamp {
                topic: metadata.topic.clone(),
                partition: metadata.partition,
                offset: metadata.offset,
                timestamp,
            });
        }
        Ok(timestamp)
    }

    /// The highest timestamp processed from input `topic` (this task's partition of it), or -1.
    pub fn partition_time(&self, topic: &str) -> i64 {
        self.partition_times
            .iter()
            .find(|(t, _)| t == topic)
            .map_or(-1, |(_, time)| *time)
    }

    /// The partition time of input `topic`, -1 until it is first set (the topic's name is
    /// copied once, not per record).
    fn partition_time_mut(&mut self, topic: &str) -> &mut i64 {
        let i = match self.partition_times.iter().position(|(t, _)| t == topic) {
            Some(i) => i,
            None => {
                self.partition_times.push((topic.to_string(), -1));
                self.partition_times.len() - 1
            }
        };
        &mut self.partition_times[i].1
    }

    /// Resumes from a partition time recorded before (a restart or a move to this instance):
    /// stream time is never behind it, so late records stay late across restarts.
    pub fn resume_partition_time(&mut self, topic: &str, partition_time: i64) {
        let t = self.partition_time_mut(topic);
        *t = (*t).max(partition_time);
        self.stream_time = self.stream_time.max(partition_time);
    }

    /// Whether one of this task's sources reads `topic`.
    pub fn reads(&self, topic: &str) -> bool {
        self.sources.contains_key(topic)
    }

    pub fn stores(&self) -> &HashMap<String, Arc<dyn KeyValueStore>> {
        &self.stores
    }

    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }

    fn run_on<R>(
        &mut self,
        idx: usize,
        metadata: Option<&RecordMetadata>,
        current: Option<(i64, &[Header])>,
        wall_clock: i64,
        f: impl FnOnce(&mut dyn Processor, &mut ProcessorContext<'_>) -> Result<R>,
    ) -> Result<(R, Forwarded)> {
        let node = &mut self.nodes[idx];
        let RtKind::Processor(processor) = &mut node.kind else {
            return Err(Error::InvalidTopology(format!(
                "{} is not a processor",
                node.name
            )));
        };
        let mut ctx = ProcessorContext {
            node: idx,
            name: &node.name,
            children: &node.children,
            connected: &node.stores,
            stores: &self.stores,
            global_stores: &self.global_stores,
            metadata,
            current,
            task_id: &self.id,
            application_id: &self.application_id,
            stream_time: self.stream_time,
            wall_clock,
            forwarded: self.spare_forwarded.pop().unwrap_or_default(),
            schedules: &mut self.schedules,
            cache: &self.cache,
        };
        let r = guarded(&node.name, || f(processor.as_mut(), &mut ctx))?;
        Ok((r, ctx.forwarded))
    }

    /// Replaces every processor with a new one from its supplier and initialises it (Kafka
    /// Streams' resume of a suspended task): the stores, stream time and partition times stay,
    /// the punctuation schedules of the closed processors go.
    pub fn restart_processors(&mut self, topology: &Topology, wall_clock: i64) -> Result<()> {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let (RtKind::Processor(p), Some(def)) = (&mut node.kind, topology.nodes.get(i)) {
                if let NodeKind::Processor { supplier } = &def.kind {
                    *p = supplier();
                }
            }
        }
        self.schedules.clear();
        self.init(wall_clock)
    }

    /// Calls `init` on every processor, in topology order.
    pub fn init(&mut self, wall_clock: i64) -> Result<()> {
        for i in 0..self.nodes.len() {
            if matches!(self.nodes[i].kind, RtKind::Processor(_)) {
                self.run_on(i, None, None, wall_clock, |p, ctx| p.init(ctx))?;
            }
        }
        Ok(())
    }

    /// Runs one source record through the graph. Stream-time punctuations due after it fire.
    pub fn process(
        &mut self,
        metadata: &RecordMetadata,
        record: Record,
        collector: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<()> {
        let source = *self.sources.get(&metadata.topic).ok_or_else(|| {
            Error::InvalidTopology(format!(
                "task {} reads no topic {}",
                self.id, metadata.topic
            ))
        })?;
        let timestamp = self.extract_from(Some(source), metadata, &record)?;
        let record = Record {
            timestamp,
            ..record
        };
        let t = self.partition_time_mut(&metadata.topic);
        *t = (*t).max(timestamp);
        self.stream_time = self.stream_time.max(timestamp);
        self.deliver_to_children(source, record, Some(metadata), collector, wall_clock)?;
        self.punctuate_stream_time(collector, wall_clock)
    }

    /// Tells the processors below the source of `topic` which of its records come next (see
    /// [`Processor::prepare`]). A processor that forwards here fails the call.
    pub fn prepare(
        &mut self,
        topic: &str,
        upcoming: &[Upcoming<'_>],
        wall_clock: i64,
    ) -> Result<()> {
        let Some(&source) = self.sources.get(topic) else {
            return Ok(());
        };
        for c in 0..self.nodes[source].children.len() {
            let child = self.nodes[source].children[c].1;
            if !matches!(self.nodes[child].kind, RtKind::Processor(_)) {
                continue;
            }
            let ((), forwarded) = self.run_on(child, None, None, wall_clock, |p, ctx| {
                p.prepare(ctx, upcoming)
            })?;
            if !forwarded.is_empty() {
                return Err(Error::processing(
                    &self.nodes[child].name,
                    "prepare forwarded records: output belongs in process",
                ));
            }
            self.spare_forwarded.push(forwarded);
        }
        Ok(())
    }

    /// Dispatches `record` to every child of `from` (a clone to all but the last), without
    /// collecting their indices.
    fn deliver_to_children(
        &mut self,
        from: usize,
        record: Record,
        metadata: Option<&RecordMetadata>,
        collector: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<()> {
        let n = self.nodes[from].children.len();
        let Some(last) = n.checked_sub(1) else {
            return Ok(());
        };
        for i in 0..last {
            let child = self.nodes[from].children[i].1;
            self.dispatch(child, record.clone(), metadata, collector, wall_clock)?;
        }
        let child = self.nodes[from].children[last].1;
        self.dispatch(child, record, metadata, collector, wall_clock)
    }

    fn dispatch(
        &mut self,
        idx: usize,
        record: Record,
        metadata: Option<&RecordMetadata>,
        collector: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<()> {
        match &mut self.nodes[idx].kind {
            RtKind::Absent | RtKind::Source => Ok(()),
            RtKind::Sink {
                topic,
                partitioner,
                partitions,
            } => {
                let partition = match partitioner {
                    Some(p) => {
                        let n = match *partitions {
                            Some(n) => n,
                            None => *partitions.insert(collector.num_partitions(topic)?),
                        };
                        p.partition_from(topic, &record, n, metadata)
                            .filter(|p| (0..n).contains(p))
                    }
                    None => None,
                };
                collector.send(OutputRecord {
                    topic: topic.clone(),
                    partition,
                    record,
                })
            }
            RtKind::Processor(_) => {
                let headers = record.headers.clone();
                let ts = record.timestamp;
                let ((), forwarded) =
                    self.run_on(idx, metadata, Some((ts, &headers)), wall_clock, |p, ctx| {
                        p.process(ctx, record)
                    })?;
                self.route(idx, forwarded, metadata, collector, wall_clock)
            }
        }
    }

    fn route(
        &mut self,
        from: usize,
        mut forwarded: Forwarded,
        metadata: Option<&RecordMetadata>,
        collector: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<()> {
        for (target, rec) in forwarded.drain(..) {
            match target {
                Some(t) => self.dispatch(t, rec, metadata, collector, wall_clock)?,
                None => self.deliver_to_children(from, rec, metadata, collector, wall_clock)?,
            }
        }
        // A buffer grown by a burst (a punctuation flushing many records) is not kept.
        if forwarded.capacity() <= MAX_SPARE_FORWARDED {
            self.spare_forwarded.push(forwarded);
        }
        Ok(())
    }

    fn punctuate_due(
        &mut self,
        kind: PunctuationType,
        now: i64,
        collector: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<()> {
        if now < 0 {
            return Ok(());
        }
        let mut i = 0;
        while i < self.schedules.len() {
            let s = &mut self.schedules[i];
            let interval = s.interval.as_millis().max(1) as i64;
            let due = s.kind == kind && s.next.is_none_or(|n| now >= n);
            if due {
                // Fire once, then move past `now`: a jump in time does not replay every missed
                // interval (Kafka Streams does the same).
                let mut next = s.next.unwrap_or(now);
                while next <= now {
                    next += interval;
                }
                s.next = Some(next);
                let node = s.node;
                let ((), forwarded) = self.run_on(node, None, None, wall_clock, |p, ctx| {
                    p.punctuate(ctx, kind, now)
                })?;
                self.route(node, forwarded, None, collector, wall_clock)?;
            }
            i += 1;
        }
        Ok(())
    }

    fn punctuate_stream_time(
        &mut self,
        collector: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<()> {
        let now = self.stream_time;
        self.punctuate_due(PunctuationType::StreamTime, now, collector, wall_clock)
    }

    /// Fires the wall-clock punctuations due at `now` (ms).
    pub fn punctuate_wall_clock(
        &mut self,
        collector: &mut dyn RecordCollector,
        now: i64,
    ) -> Result<()> {
        self.punctuate_due(PunctuationType::WallClockTime, now, collector, now)
    }

    /// Calls `flush` on every processor before a commit; output they forward reaches the sinks
    /// inside that commit.
    pub fn flush(&mut self, collector: &mut dyn RecordCollector, wall_clock: i64) -> Result<()> {
        self.each_processor(collector, wall_clock, |p, ctx| p.flush(ctx))
    }

    /// Calls `close` on every processor; output they forward still reaches the sinks.
    pub fn close(&mut self, collector: &mut dyn RecordCollector, wall_clock: i64) -> Result<()> {
        self.each_processor(collector, wall_clock, |p, ctx| p.close(ctx))
    }

    /// Runs `f` on every processor in topology order, routing what each forwards; the first
    /// error is returned after every processor had its turn.
    fn each_processor(
        &mut self,
        collector: &mut dyn RecordCollector,
        wall_clock: i64,
        f: impl Fn(&mut dyn Processor, &mut ProcessorContext<'_>) -> Result<()> + Copy,
    ) -> Result<()> {
        let mut first_err = None;
        for i in 0..self.nodes.len() {
            if matches!(self.nodes[i].kind, RtKind::Processor(_)) {
                match self.run_on(i, None, None, wall_clock, f) {
                    Ok(((), fwd)) => {
                        if let Err(e) = self.route(i, fwd, None, collector, wall_clock) {
                            first_err.get_or_insert(e);
                        }
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The task of a global store: its processor alone, writing the store from every partition of
/// the global topic.
pub struct GlobalTask {
    name: String,
    processor: Box<dyn Processor>,
    store_names: Vec<String>,
    stores: HashMap<String, Arc<dyn KeyValueStore>>,
    no_globals: HashMap<String, Arc<dyn ReadOnlyKeyValueStore>>,
    schedules: Vec<Schedule>,
    application_id: String,
    // Global stores are written as their topic is read: never cached.
    cache: Arc<CacheBudget>,
}

impl GlobalTask {
    pub fn new(
        processor_name: &str,
        processor: Box<dyn Processor>,
        store: Arc<dyn KeyValueStore>,
        store_name: &str,
        application_id: &str,
    ) -> GlobalTask {
        let mut stores = HashMap::new();
        stores.insert(store_name.to_string(), store);
        GlobalTask {
            name: processor_name.to_string(),
            processor,
            store_names: vec![store_name.to_string()],
            stores,
            no_globals: HashMap::new(),
            schedules: Vec::new(),
            application_id: application_id.to_string(),
            cache: CacheBudget::disabled(),
        }
    }

    fn ctx<'a>(
        &'a mut self,
        metadata: Option<&'a RecordMetadata>,
        current: Option<(i64, &'a [Header])>,
        wall_clock: i64,
    ) -> (&'a mut Box<dyn Processor>, ProcessorContext<'a>) {
        (
            &mut self.processor,
            ProcessorContext {
                node: 0,
                name: &self.name,
                children: &[],
                connected: &self.store_names,
                stores: &self.stores,
                global_stores: &self.no_globals,
                metadata,
                current,
                task_id: "global",
                application_id: &self.application_id,
                stream_time: current.map(|c| c.0).unwrap_or(-1),
                wall_clock,
                forwarded: Vec::new(),
                schedules: &mut self.schedules,
                cache: &self.cache,
            },
        )
    }

    pub fn init(&mut self, wall_clock: i64) -> Result<()> {
        let name = self.name.clone();
        let (p, mut ctx) = self.ctx(None, None, wall_clock);
        guarded(&name, || p.init(&mut ctx))
    }

    pub fn process(
        &mut self,
        metadata: &RecordMetadata,
        record: Record,
        wall_clock: i64,
    ) -> Result<()> {
        let headers = record.headers.clone();
        let name = self.name.clone();
        let (p, mut ctx) = self.ctx(
            Some(metadata),
            Some((record.timestamp, &headers)),
            wall_clock,
        );
        guarded(&name, || p.process(&mut ctx, record))
    }

    pub fn close(&mut self, wall_clock: i64) -> Result<()> {
        let name = self.name.clone();
        let (p, mut ctx) = self.ctx(None, None, wall_clock);
        guarded(&name, || p.close(&mut ctx))
    }
}
