//! The DSL: typed streams and tables compiled into a [`Topology`], Kafka Streams style.
//!
//! Every operator adds its nodes through the public [`Topology`] methods, named with
//! [`Topology::new_name`] as Kafka Streams names them (`KSTREAM-MAPVALUES-0000000001`), so a DSL
//! topology is the topology the same program written with the Processor API would build, and
//! its `describe()` reads like Kafka Streams'. Records stay bytes between nodes: each operator
//! decodes its input and encodes its output with the [`Codec`]s its stream carries.
//!
//! Layout:
//! - [`serdes`]: [`DefaultSerde`] (a type's serde), [`DslType`] (plus absent keys/values:
//!   `Option<T>`, `()`), [`Json`] / [`Proto`] wrappers, [`Consumed`], [`Materialized`].
//! - `stream`: [`KStream`] (stateless operators, split, merge, process, joins, sinks) and
//!   [`Split`].
//! - `table`: [`KTable`], [`GlobalKTable`], [`KGroupedStream`] (count, reduce, aggregate).
//! - `windowed`: [`TimeWindows`] (tumbling, hopping) → [`TimeWindowedKStream`] count, reduce,
//!   aggregate into a table keyed by [`Windowed`] keys ([`TimeWindowedSerde`] bytes).
//! - `sliding`: [`SlidingWindows`] → [`SlidingWindowedKStream`] count, reduce, aggregate.
//! - `session`: [`SessionWindows`] → [`SessionWindowedKStream`] count, reduce, aggregate
//!   (with a session merger) into a table keyed by sessions ([`SessionWindowedSerde`] bytes).
//! - `stream_join`: KStream–KStream windowed joins ([`JoinWindows`]): `join_stream`,
//!   `left_join_stream`, `outer_join_stream`.
//! - `table_ops`: [`KTable`] filter / filter_not / map_values / group_by, [`KGroupedTable`]
//!   (count, reduce, aggregate with subtractors); table updates carry their old value.
//! - `table_join`: KTable–KTable join / left_join / outer_join; `fk_join`: the foreign-key join.
//! - `cached`: key-value aggregates behind the task's record cache ([`crate::cache`]).
//! - `ops`: the generic processor the operators run on, and decode/encode error mapping.
//!
//! Failures while building (a topic read twice, a store name taken) are kept and returned by
//! [`StreamsBuilder::build`], so chains need no `?` per operator. A record that does not decode
//! is an [`crate::Error::Deserialization`], never a panic, for the
//! runtime's error handler to skip, fail on or dead-letter.
//!
//! ```
//! use ks_engine::dsl::{Materialized, StreamsBuilder};
//! use ks_engine::stores::{I64Serde, Serde, StoreKind};
//! use ks_engine::TopologyTestDriver;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<(), String>("text")
//!     .flat_map_values(|line| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
//!     .group_by(|_, word| word.clone())
//!     .count(Materialized::as_("counts", StoreKind::InMemory))
//!     .to_stream()
//!     .to("word-counts");
//! let topology = builder.build()?;
//!
//! let mut driver = TopologyTestDriver::new(&topology, 0)?;
//! driver.pipe_input("text", None, Some(b"to be or not to be"), 1)?;
//! let last = driver.read_all_output("word-counts").pop().unwrap();
//! assert_eq!(last.key.as_deref(), Some(&b"be"[..]));
//! assert_eq!(I64Serde.decode(last.value.as_deref().unwrap())?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cached;
mod fk_join;
#[cfg(test)]
pub(crate) use fk_join::tests as fk_join_tests;
mod ops;
pub mod serdes;
mod session;
mod sliding;
mod stream;
mod stream_join;
mod table;
mod table_join;
mod table_ops;
mod windowed;

pub use serdes::{Codec, Consumed, DefaultSerde, DslType, Json, Materialized, Proto};
pub use session::{SessionWindowedKStream, SessionWindowedSerde, SessionWindows};
pub use sliding::{SlidingWindowedKStream, SlidingWindows};
pub use stream::{KStream, Split};
pub use stream_join::{JoinWindows, StreamJoin};
pub use table::{GlobalKTable, KGroupedStream, KTable};
pub use table_ops::KGroupedTable;
pub use windowed::{ClosingWindows, TimeWindowedKStream, TimeWindowedSerde, TimeWindows, Windowed};

use crate::processor::ProcessorSupplier;
use crate::record::Record;
use crate::topology::Topology;
use crate::{Error, Result};
use ks_stores::{StoreKind, StoreSpec};
use std::cell::RefCell;
use std::rc::Rc;

struct Inner {
    topology: Topology,
    error: Option<Error>,
}

/// The topology under construction, shared by the builder and every stream and table made
/// from it.
#[derive(Clone)]
pub(crate) struct Shared(Rc<RefCell<Inner>>);

impl Shared {
    pub(crate) fn new_name(&self, prefix: &str) -> String {
        self.0.borrow_mut().topology.new_name(prefix)
    }

    /// Runs one change of the topology, keeping the first failure for `build`.
    pub(crate) fn apply(&self, change: impl FnOnce(&mut Topology) -> Result<()>) {
        let mut inner = self.0.borrow_mut();
        if inner.error.is_none() {
            if let Err(e) = change(&mut inner.topology) {
                inner.error = Some(e);
            }
        }
    }

    pub(crate) fn add_processor(&self, name: &str, supplier: ProcessorSupplier, parents: &[&str]) {
        self.apply(|t| t.add_processor(name, supplier, parents).map(drop));
    }

    /// A store for `processor`, named as Kafka Streams would when `materialized` names none.
    pub(crate) fn store_spec(
        &self,
        materialized: &Materialized,
        generated_prefix: &str,
    ) -> StoreSpec {
        let name = match &materialized.name {
            Some(n) => n.clone(),
            None => self.new_name(generated_prefix),
        };
        StoreSpec::new(name, materialized.kind).with_logging(materialized.logging)
    }
}

/// Builds a [`Topology`] from typed streams and tables.
pub struct StreamsBuilder {
    shared: Shared,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        StreamsBuilder::new()
    }
}

impl StreamsBuilder {
    pub fn new() -> StreamsBuilder {
        StreamsBuilder {
            shared: Shared(Rc::new(RefCell::new(Inner {
                topology: Topology::new(),
                error: None,
            }))),
        }
    }

    /// A stream of `topic` with the default serdes of `K` and `V`.
    pub fn stream<K: DslType, V: DslType>(&self, topic: &str) -> KStream<K, V> {
        self.stream_with(topic, Consumed::default())
    }

    pub fn stream_with<K: 'static, V: 'static>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
    ) -> KStream<K, V> {
        let name = self.shared.new_name("KSTREAM-SOURCE");
        self.shared
            .apply(|t| t.add_source(&name, &[topic]).map(drop));
        KStream::new(
            self.shared.clone(),
            name,
            consumed.keys,
            consumed.values,
            false,
        )
    }

    /// A table of `topic`: the latest value per key, kept in the store `materialized` describes
    /// (changelogged unless disabled). A record without a value deletes its key.
    pub fn table<K: DslType, V: DslType>(
        &self,
        topic: &str,
        materialized: Materialized,
    ) -> KTable<K, V> {
        self.table_with(topic, Consumed::default(), materialized)
    }

    /// What a table and a global table both start with: the store, the source and the
    /// table-source processor writing the store. Kafka Streams numbers the generated store
    /// before the two nodes.
    fn table_source_nodes<K: 'static, V: 'static>(
        &self,
        topic: &str,
        consumed: &Consumed<K, V>,
        materialized: &Materialized,
    ) -> (StoreSpec, String, String, ProcessorSupplier) {
        let spec = self
            .shared
            .store_spec(materialized, &format!("{topic}-STATE-STORE"));
        let source = self.shared.new_name("KSTREAM-SOURCE");
        let node = self.shared.new_name("KTABLE-SOURCE");
        let supplier = table::table_source(
            spec.name.clone(),
            consumed.keys.clone(),
            consumed.values.clone(),
        );
        (spec, source, node, supplier)
    }

    pub fn table_with<K: 'static, V: 'static>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized,
    ) -> KTable<K, V> {
        let (spec, source, node, supplier) =
            self.table_source_nodes(topic, &consumed, &materialized);
        let store = spec.name.clone();
        self.shared.apply(|t| {
            t.add_source(&source, &[topic])?
                .add_processor(&node, supplier, &[&source])?
                .add_state_store(spec, &[&node])
                .map(drop)
        });
        KTable::new(
            self.shared.clone(),
            node,
            store,
            consumed.keys,
            consumed.values,
        )
    }

    /// A table every instance holds whole: it reads all partitions of `topic` into a local
    /// store (a global store: not changelogged, the topic is its changelog).
    pub fn global_table<K: DslType, V: DslType>(
        &self,
        topic: &str,
        materialized: Materialized,
    ) -> GlobalKTable<K, V> {
        self.global_table_with(topic, Consumed::default(), materialized)
    }

    pub fn global_table_with<K: 'static, V: 'static>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized,
    ) -> GlobalKTable<K, V> {
        let (spec, source, node, supplier) =
            self.table_source_nodes(topic, &consumed, &materialized);
        let store = spec.name.clone();
        self.shared.apply(|t| {
            t.add_global_store(spec, &source, topic, &node, supplier)
                .map(drop)
        });
        GlobalKTable::new(store, consumed.keys, consumed.values)
    }

    /// A store for processors added with [`KStream::process`], which connects them to it.
    pub fn add_state_store(&self, spec: StoreSpec) -> &Self {
        self.shared
            .apply(|t| t.add_state_store(spec, &[]).map(drop));
        self
    }

    /// A store of a built-in kind, changelogged.
    pub fn add_store(&self, name: &str, kind: StoreKind) -> &Self {
        self.add_state_store(StoreSpec::new(name, kind))
    }

    /// The topology, or the first error met while building it.
    pub fn build(self) -> Result<Topology> {
        let mut inner = self.shared.0.borrow_mut();
        if let Some(e) = inner.error.take() {
            return Err(e);
        }
        let topology = std::mem::take(&mut inner.topology);
        topology.validate()?;
        Ok(topology)
    }
}

/// A record like `template` (timestamp, headers) with a new key and value.
pub(crate) fn derive(template: &Record, key: Option<Vec<u8>>, value: Option<Vec<u8>>) -> Record {
    Record {
        key,
        value,
        timestamp: template.timestamp,
        headers: template.headers.clone(),
    }
}

/// An aggregation step: the key, the new value and the aggregate so far (none yet for a new
/// key or window) give the new aggregate. Shared by the grouped and windowed aggregates.
pub(crate) type Step<K, V, VA> = std::sync::Arc<dyn Fn(&K, V, Option<VA>) -> VA + Send + Sync>;
