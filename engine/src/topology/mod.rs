//! A topology: sources, processors and sinks joined into a graph, with state stores attached to
//! processors, plus global stores. Built by hand (the Processor API) or by the DSL, which only
//! adds nodes through the same methods.

mod describe;

pub use describe::TopologyDescription;

use crate::processor::{ProcessorSupplier, StreamPartitioner};
use crate::timestamp::TimestampExtractor;
use crate::{Error, Result};
use ks_stores::StoreSpec;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What a node does.
#[derive(Clone)]
pub(crate) enum NodeKind {
    Source {
        topics: Vec<String>,
    },
    Processor {
        supplier: ProcessorSupplier,
    },
    Sink {
        topic: String,
        partitioner: Option<Arc<dyn StreamPartitioner>>,
    },
}

#[derive(Clone)]
pub(crate) struct NodeDef {
    pub name: String,
    pub kind: NodeKind,
    pub parents: Vec<usize>,
    pub children: Vec<usize>,
    pub stores: Vec<String>,
}

/// A global store: every instance reads all partitions of `topic` through `processor`, which
/// writes the store.
#[derive(Clone)]
pub(crate) struct GlobalStoreDef {
    pub spec: StoreSpec,
    pub source_name: String,
    pub topic: String,
    pub processor_name: String,
    pub supplier: ProcessorSupplier,
    pub reset: GlobalReset,
}

/// Where a global store starts reading its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlobalReset {
    /// From the beginning: the store holds everything the topic holds (the usual global table).
    #[default]
    Earliest,
    /// From the end: only what arrives after the instance starts (nothing is replayed).
    Latest,
}

/// A group of nodes connected by edges or shared stores: one task per input partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Subtopology {
    pub id: u32,
    /// Node indices in insertion order.
    pub(crate) nodes: Vec<usize>,
    pub source_topics: Vec<String>,
    pub stores: Vec<String>,
}

/// The graph of a streams application.
#[derive(Clone, Default)]
pub struct Topology {
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) stores: Vec<StoreSpec>,
    pub(crate) globals: Vec<GlobalStoreDef>,
    pub(crate) counter: usize,
    /// Repartition topics the DSL added (named without the application id; the runtime scopes
    /// them to the application, see [`Topology::scoped`]).
    pub(crate) internal: BTreeSet<String>,
    /// Timestamp extractors of source nodes, by node name (the others use the configured
    /// default).
    pub(crate) extractors: HashMap<String, Arc<dyn TimestampExtractor>>,
}

impl Topology {
    pub fn new() -> Topology {
        Topology::default()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn name_is_free(&self, name: &str) -> Result<()> {
        let taken = self.index(name).is_some()
            || self
                .globals
                .iter()
                .any(|g| g.source_name == name || g.processor_name == name);
        if name.is_empty() || taken {
            return Err(Error::InvalidTopology(format!(
                "node name {name:?} is empty or already used"
            )));
        }
        Ok(())
    }

    fn add_node(&mut self, name: &str, kind: NodeKind, parents: &[&str]) -> Result<usize> {
        self.name_is_free(name)?;
        let mut parent_idx = Vec::with_capacity(parents.len());
        for p in parents {
            let i = self.index(p).ok_or_else(|| {
                Error::InvalidTopology(format!("{name}: parent {p:?} does not exist"))
            })?;
            if matches!(self.nodes[i].kind, NodeKind::Sink { .. }) {
                return Err(Error::InvalidTopology(format!(
                    "{name}: parent {p:?} is a sink and cannot have children"
                )));
            }
            parent_idx.push(i);
        }
        let idx = self.nodes.len();
        for &p in &parent_idx {
            self.nodes[p].children.push(idx);
        }
        self.nodes.push(NodeDef {
            name: name.to_string(),
            kind,
            parents: parent_idx,
            children: Vec::new(),
            stores: Vec::new(),
        });
        Ok(idx)
    }

    /// A source reading `topics` (records go to the processors that name it as a parent).
    pub fn add_source(&mut self, name: &str, topics: &[&str]) -> Result<&mut Self> {
        if topics.is_empty() {
            return Err(Error::InvalidTopology(format!(
                "{name}: a source needs a topic"
            )));
        }
        for t in topics {
            if self.source_of(t).is_some() {
                return Err(Error::InvalidTopology(format!(
                    "topic {t:?} is already read by another source"
                )));
            }
        }
        self.add_node(
            name,
            NodeKind::Source {
                topics: topics.iter().map(|t| t.to_string()).collect(),
            },
            &[],
        )?;
        Ok(self)
    }

    /// Event time of the records of source `source` from `extractor` instead of the configured
    /// default (Kafka Streams' `addSource(TimestampExtractor, ...)`).
    pub fn set_timestamp_extractor(
        &mut self,
        source: &str,
        extractor: impl TimestampExtractor + 'static,
    ) -> Result<&mut Self> {
        let is_source = self
            .index(source)
            .is_some_and(|i| matches!(self.nodes[i].kind, NodeKind::Source { .. }));
        if !is_source {
            return Err(Error::InvalidTopology(format!(
                "{source:?} is not a source: only sources take a timestamp extractor"
            )));
        }
        self.extractors
            .insert(source.to_string(), Arc::new(extractor));
        Ok(self)
    }

    pub fn add_processor(
        &mut self,
        name: &str,
        supplier: ProcessorSupplier,
        parents: &[&str],
    ) -> Result<&mut Self> {
        if parents.is_empty() {
            return Err(Error::InvalidTopology(format!(
                "{name}: a processor needs a parent"
            )));
        }
        self.add_node(name, NodeKind::Processor { supplier }, parents)?;
        Ok(self)
    }

    pub fn add_sink(&mut self, name: &str, topic: &str, parents: &[&str]) -> Result<&mut Self> {
        self.add_sink_with_partitioner(name, topic, None, parents)
    }

    pub fn add_sink_with_partitioner(
        &mut self,
        name: &str,
        topic: &str,
        partitioner: Option<Arc<dyn StreamPartitioner>>,
        parents: &[&str],
    ) -> Result<&mut Self> {
        if parents.is_empty() {
            return Err(Error::InvalidTopology(format!(
                "{name}: a sink needs a parent"
            )));
        }
        self.add_node(
            name,
            NodeKind::Sink {
                topic: topic.to_string(),
                partitioner,
            },
            parents,
        )?;
        Ok(self)
    }

    /// Adds a store and connects it to `processors` (more can be connected later).
    pub fn add_state_store(&mut self, spec: StoreSpec, processors: &[&str]) -> Result<&mut Self> {
        if self.stores.iter().any(|s| s.name == spec.name)
            || self.globals.iter().any(|g| g.spec.name == spec.name)
        {
            return Err(Error::InvalidTopology(format!(
                "store {:?} already exists",
                spec.name
            )));
        }
        let name = spec.name.clone();
        self.stores.push(spec);
        self.connect_processor_and_state_stores_inner(processors, &name)?;
        Ok(self)
    }

    pub fn connect_processor_and_state_store(
        &mut self,
        processor: &str,
        store: &str,
    ) -> Result<&mut Self> {
        if !self.stores.iter().any(|s| s.name == store) {
            return Err(Error::UnknownStore(store.to_string()));
        }
        self.connect_processor_and_state_stores_inner(&[processor], store)?;
        Ok(self)
    }

    fn connect_processor_and_state_stores_inner(
        &mut self,
        processors: &[&str],
        store: &str,
    ) -> Result<()> {
        for p in processors {
            let i = self.index(p).ok_or_else(|| {
                Error::InvalidTopology(format!("store {store}: processor {p:?} does not exist"))
            })?;
            if !matches!(self.nodes[i].kind, NodeKind::Processor { .. }) {
                return Err(Error::InvalidTopology(format!(
                    "store {store}: {p:?} is not a processor"
                )));
            }
            if !self.nodes[i].stores.iter().any(|s| s == store) {
                self.nodes[i].stores.push(store.to_string());
            }
        }
        Ok(())
    }

    /// A global store fed from every partition of `topic` by `processor` on every instance.
    /// Global stores are not changelogged: the topic is their changelog.
    pub fn add_global_store(
        &mut self,
        spec: StoreSpec,
        source_name: &str,
        topic: &str,
        processor_name: &str,
        supplier: ProcessorSupplier,
    ) -> Result<&mut Self> {
        self.add_global_store_with_reset(
            spec,
            source_name,
            topic,
            processor_name,
            supplier,
            GlobalReset::Earliest,
        )
    }

    /// [`Topology::add_global_store`], starting at `reset`.
    pub fn add_global_store_with_reset(
        &mut self,
        mut spec: StoreSpec,
        source_name: &str,
        topic: &str,
        processor_name: &str,
        supplier: ProcessorSupplier,
        reset: GlobalReset,
    ) -> Result<&mut Self> {
        self.name_is_free(source_name)?;
        self.name_is_free(processor_name)?;
        if source_name == processor_name {
            return Err(Error::InvalidTopology(
                "global source and processor need two names".into(),
            ));
        }
        if self.stores.iter().any(|s| s.name == spec.name)
            || self.globals.iter().any(|g| g.spec.name == spec.name)
        {
            return Err(Error::InvalidTopology(format!(
                "store {:?} already exists",
                spec.name
            )));
        }
        spec.logging = false;
        self.globals.push(GlobalStoreDef {
            spec,
            source_name: source_name.to_string(),
            topic: topic.to_string(),
            processor_name: processor_name.to_string(),
            supplier,
            reset,
        });
        Ok(self)
    }

    /// Marks `topic` as a repartition topic of this topology: the runtime names it
    /// `<application.id>-<topic>` and creates it.
    pub(crate) fn add_repartition_topic(&mut self, topic: &str) {
        self.internal.insert(topic.to_string());
    }

    /// The repartition topics, as named in the topology.
    pub fn repartition_topics(&self) -> Vec<String> {
        self.internal.iter().cloned().collect()
    }

    /// This topology with its repartition topics named for `application_id`
    /// (`<application.id>-<name>-repartition`, as Kafka Streams names internal topics), so two
    /// applications with the same topology never read each other's repartitioned records.
    pub(crate) fn scoped(&self, application_id: &str) -> Topology {
        let scope = |t: &str| -> String {
            if self.internal.contains(t) {
                format!("{application_id}-{t}")
            } else {
                t.to_string()
            }
        };
        let mut scoped = self.clone();
        for node in &mut scoped.nodes {
            match &mut node.kind {
                NodeKind::Source { topics } => {
                    for t in topics.iter_mut() {
                        *t = scope(t);
                    }
                }
                NodeKind::Sink { topic, .. } => *topic = scope(topic),
                NodeKind::Processor { .. } => {}
            }
        }
        scoped.internal = self.internal.iter().map(|t| scope(t)).collect();
        scoped
    }

    /// Groups of topics that must be co-partitioned: the topics of a sub-topology read by more
    /// than one source node (a join brings their records together by partition number). Topics
    /// of a single source node need not be.
    pub fn copartition_groups(&self) -> Vec<Vec<String>> {
        self.subtopologies()
            .iter()
            .filter_map(|sub| {
                let sources: Vec<&Vec<String>> = sub
                    .nodes
                    .iter()
                    .filter_map(|&i| match &self.nodes[i].kind {
                        NodeKind::Source { topics } => Some(topics),
                        _ => None,
                    })
                    .collect();
                (sources.len() > 1).then(|| sources.into_iter().flatten().cloned().collect())
            })
            .collect()
    }

    /// The sub-topology whose sinks write `topic`, if any.
    pub(crate) fn writer_of(&self, topic: &str) -> Option<Subtopology> {
        self.subtopologies().into_iter().find(|sub| {
            sub.nodes.iter().any(
                |&i| matches!(&self.nodes[i].kind, NodeKind::Sink { topic: t, .. } if t == topic),
            )
        })
    }

    /// The source node reading `topic`.
    pub(crate) fn source_of(&self, topic: &str) -> Option<usize> {
        self.nodes.iter().position(
            |n| matches!(&n.kind, NodeKind::Source { topics } if topics.iter().any(|t| t == topic)),
        )
    }

    /// Every topic read by a (non-global) source.
    pub fn source_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Source { topics } => Some(topics.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Every topic written by a sink.
    pub fn sink_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Sink { topic, .. } => Some(topic.clone()),
                _ => None,
            })
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    pub fn global_topics(&self) -> Vec<String> {
        self.globals.iter().map(|g| g.topic.clone()).collect()
    }

    pub fn store_specs(&self) -> &[StoreSpec] {
        &self.stores
    }

    pub fn global_store_names(&self) -> Vec<String> {
        self.globals.iter().map(|g| g.spec.name.clone()).collect()
    }

    /// A fresh node name with Kafka Streams' numbering (`KSTREAM-MAP-0000000003`), for the DSL.
    pub fn new_name(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}-{:010}", self.counter);
        self.counter += 1;
        name
    }

    /// The connected groups of nodes (edges and shared stores), numbered in order of their
    /// first node, as Kafka Streams numbers its sub-topologies.
    pub fn subtopologies(&self) -> Vec<Subtopology> {
        let n = self.nodes.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while p[r] != r {
                r = p[r];
            }
            let mut c = x;
            while p[c] != r {
                let next = p[c];
                p[c] = r;
                c = next;
            }
            r
        }
        let union = |p: &mut Vec<usize>, a: usize, b: usize| {
            let (ra, rb) = (find(p, a), find(p, b));
            if ra != rb {
                p[ra.max(rb)] = ra.min(rb);
            }
        };
        let mut store_owner: HashMap<&str, usize> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for &c in &node.children {
                union(&mut parent, i, c);
            }
            for s in &node.stores {
                match store_owner.get(s.as_str()) {
                    Some(&o) => union(&mut parent, i, o),
                    None => {
                        store_owner.insert(s, i);
                    }
                }
            }
        }
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for i in 0..n {
            let r = find(&mut parent, i);
            match groups.iter_mut().find(|(root, _)| *root == r) {
                Some((_, g)) => g.push(i),
                None => groups.push((r, vec![i])),
            }
        }
        groups
            .into_iter()
            .enumerate()
            .map(|(id, (_, nodes))| {
                let mut topics = BTreeSet::new();
                let mut stores = BTreeSet::new();
                for &i in &nodes {
                    if let NodeKind::Source { topics: t } = &self.nodes[i].kind {
                        topics.extend(t.iter().cloned());
                    }
                    stores.extend(self.nodes[i].stores.iter().cloned());
                }
                Subtopology {
                    id: id as u32,
                    nodes,
                    source_topics: topics.into_iter().collect(),
                    stores: stores.into_iter().collect(),
                }
            })
            .collect()
    }

    /// The topology as Kafka Streams' `Topology#describe` prints it.
    pub fn describe(&self) -> TopologyDescription {
        TopologyDescription::of(self)
    }

    /// Checks what can only be checked on the whole graph.
    pub fn validate(&self) -> Result<()> {
        for sub in self.subtopologies() {
            if sub.source_topics.is_empty() {
                return Err(Error::InvalidTopology(format!(
                    "sub-topology {} has no source",
                    sub.id
                )));
            }
        }
        for s in &self.stores {
            if !self.nodes.iter().any(|n| n.stores.contains(&s.name)) {
                return Err(Error::InvalidTopology(format!(
                    "store {:?} is connected to no processor",
                    s.name
                )));
            }
        }
        Ok(())
    }
}
