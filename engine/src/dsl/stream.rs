use super::ops::{self, decode, encode};
use super::serdes::{Codec, DslType};
use super::table::{GlobalKTable, KGroupedStream, KTable};
use super::{derive, Shared};
use crate::processor::{ProcessorSupplier, StreamPartitioner};
use std::sync::Arc;

/// A typed stream of records: every record is an event, none replaces another.
///
/// Operators take `&self`: using one stream twice fans its records out to both.
pub struct KStream<K, V> {
    pub(crate) b: Shared,
    pub(crate) node: String,
    pub(crate) keys: Codec<K>,
    pub(crate) values: Codec<V>,
    /// The key may have changed since the source, so records with one key may sit in several
    /// partitions: grouping and joining must repartition first.
    pub(crate) repartition: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            b: self.b.clone(),
            node: self.node.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            repartition: self.repartition,
        }
    }
}

type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;
type KeyFn<K, V, K2> = Arc<dyn Fn(&K, &V) -> K2 + Send + Sync>;

impl<K: 'static, V: 'static> KStream<K, V> {
    pub(crate) fn new(
        b: Shared,
        node: String,
        keys: Codec<K>,
        values: Codec<V>,
        repartition: bool,
    ) -> Self {
        KStream {
            b,
            node,
            keys,
            values,
            repartition,
        }
    }

    /// The node this stream's records leave from (for wiring Processor API nodes to it).
    pub fn node_name(&self) -> &str {
        &self.node
    }

    pub fn key_codec(&self) -> &Codec<K> {
        &self.keys
    }

    pub fn value_codec(&self) -> &Codec<V> {
        &self.values
    }

    fn child<K2: 'static, V2: 'static>(
        &self,
        prefix: &str,
        supplier: ProcessorSupplier,
        keys: Codec<K2>,
        values: Codec<V2>,
        repartition: bool,
    ) -> KStream<K2, V2> {
        let name = self.b.new_name(prefix);
        self.b.add_processor(&name, supplier, &[&self.node]);
        KStream::new(self.b.clone(), name, keys, values, repartition)
    }

    /// The records `keep` accepts.
    pub fn filter(&self, keep: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.filter_node(Arc::new(keep), true)
    }

    /// The records `drop` rejects.
    pub fn filter_not(
        &self,
        drop: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.filter_node(Arc::new(drop), false)
    }

    fn filter_node(&self, pred: Predicate<K, V>, keep_if: bool) -> KStream<K, V> {
        let (keys, values) = (self.keys.clone(), self.values.clone());
        let supplier = ops::supplier(move |ctx, r| {
            let k = decode(ctx, &keys, r.key.as_deref(), "key")?;
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            if pred(&k, &v) == keep_if {
                ctx.forward(r);
            }
            Ok(())
        });
        // Kafka Streams names filter and filterNot alike.
        self.child(
            "KSTREAM-FILTER",
            supplier,
            self.keys.clone(),
            self.values.clone(),
            self.repartition,
        )
    }

    /// A new key and value for every record.
    pub fn map<K2: DslType, V2: DslType>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let (keys, values) = (self.keys.clone(), self.values.clone());
        let (keys2, values2) = (K2::codec(), V2::codec());
        let (k2c, v2c) = (keys2.clone(), values2.clone());
        let supplier = ops::supplier(move |ctx, r| {
            let k = decode(ctx, &keys, r.key.as_deref(), "key")?;
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            let (k2, v2) = f(k, v);
            let out = derive(
                &r,
                encode(ctx, &k2c, &k2, "key")?,
                encode(ctx, &v2c, &v2, "value")?,
            );
            ctx.forward(out);
            Ok(())
        });
        self.child("KSTREAM-MAP", supplier, keys2, values2, true)
    }

    /// A new value for every record; the key (and so the partitioning) stays.
    pub fn map_values<V2: DslType>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let values = self.values.clone();
        let values2 = V2::codec();
        let v2c = values2.clone();
        let supplier = ops::supplier(move |ctx, r| {
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            let out = r.with_value(encode(ctx, &v2c, &f(v), "value")?);
            ctx.forward(out);
            Ok(())
        });
        self.child(
            "KSTREAM-MAPVALUES",
            supplier,
            self.keys.clone(),
            values2,
            self.repartition,
        )
    }

    /// A new key for every record.
    pub fn select_key<K2: DslType>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let supplier = self.key_selector(Arc::new(f), K2::codec());
        self.child(
            "KSTREAM-KEY-SELECT",
            supplier,
            K2::codec(),
            self.values.clone(),
            true,
        )
    }

    fn key_selector<K2: 'static>(&self, f: KeyFn<K, V, K2>, keys2: Codec<K2>) -> ProcessorSupplier {
        let (keys, values) = (self.keys.clone(), self.values.clone());
        ops::supplier(move |ctx, r| {
            let k = decode(ctx, &keys, r.key.as_deref(), "key")?;
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            let k2 = encode(ctx, &keys2, &f(&k, &v), "key")?;
            let out = derive(&r, k2, r.value.clone());
            ctx.forward(out);
            Ok(())
        })
    }

    /// Zero or more records for every record.
    pub fn flat_map<K2, V2, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        K2: DslType,
        V2: DslType,
        I: IntoIterator<Item = (K2, V2)>,
    {
        let (keys, values) = (self.keys.clone(), self.values.clone());
        let (keys2, values2) = (K2::codec(), V2::codec());
        let (k2c, v2c) = (keys2.clone(), values2.clone());
        let supplier = ops::supplier(move |ctx, r| {
            let k = decode(ctx, &keys, r.key.as_deref(), "key")?;
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            for (k2, v2) in f(k, v) {
                let out = derive(
                    &r,
                    encode(ctx, &k2c, &k2, "key")?,
                    encode(ctx, &v2c, &v2, "value")?,
                );
                ctx.forward(out);
            }
            Ok(())
        });
        self.child("KSTREAM-FLATMAP", supplier, keys2, values2, true)
    }

    /// Zero or more values for every record, each with the record's key.
    pub fn flat_map_values<V2, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        V2: DslType,
        I: IntoIterator<Item = V2>,
    {
        let values = self.values.clone();
        let values2 = V2::codec();
        let v2c = values2.clone();
        let supplier = ops::supplier(move |ctx, r| {
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            for v2 in f(v) {
                let out = r.with_value(encode(ctx, &v2c, &v2, "value")?);
                ctx.forward(out);
            }
            Ok(())
        });
        self.child(
            "KSTREAM-FLATMAPVALUES",
            supplier,
            self.keys.clone(),
            values2,
            self.repartition,
        )
    }

    /// Looks at every record (logging, metrics) and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let (keys, values) = (self.keys.clone(), self.values.clone());
        let supplier = ops::supplier(move |ctx, r| {
            let k = decode(ctx, &keys, r.key.as_deref(), "key")?;
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            f(&k, &v);
            ctx.forward(r);
            Ok(())
        });
        self.child(
            "KSTREAM-PEEK",
            supplier,
            self.keys.clone(),
            self.values.clone(),
            self.repartition,
        )
    }

    /// Routes each record to the first branch whose predicate accepts it.
    pub fn split(&self) -> Split<K, V> {
        Split {
            name: self.b.new_name("KSTREAM-BRANCH"),
            stream: self.clone(),
            branches: Vec::new(),
        }
    }

    /// The records of both streams.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let name = self.b.new_name("KSTREAM-MERGE");
        self.b
            .add_processor(&name, ops::pass_through(), &[&self.node, &other.node]);
        KStream::new(
            self.b.clone(),
            name,
            self.keys.clone(),
            self.values.clone(),
            self.repartition || other.repartition,
        )
    }

    /// Runs a Processor API processor on this stream, connected to `stores` (added with
    /// [`StreamsBuilder::add_state_store`](super::StreamsBuilder::add_state_store)). What it
    /// forwards is read as `K2`/`V2`. Its keys may differ from its input's, so grouping or
    /// joining its output repartitions first, as in Kafka Streams.
    pub fn process<K2: DslType, V2: DslType>(
        &self,
        supplier: ProcessorSupplier,
        stores: &[&str],
    ) -> KStream<K2, V2> {
        let out = self.child(
            "KSTREAM-PROCESSOR",
            supplier,
            K2::codec(),
            V2::codec(),
            true,
        );
        for store in stores {
            self.b.apply(|t| {
                t.connect_processor_and_state_store(&out.node, store)
                    .map(drop)
            });
        }
        out
    }

    /// Writes the stream to `topic`; the producer partitions by key.
    pub fn to(&self, topic: &str) {
        self.to_sink(topic, None);
    }

    /// Writes the stream to `topic`, partitioned by `partitioner`.
    pub fn to_with_partitioner(&self, topic: &str, partitioner: impl StreamPartitioner + 'static) {
        self.to_sink(topic, Some(Arc::new(partitioner)));
    }

    fn to_sink(&self, topic: &str, partitioner: Option<Arc<dyn StreamPartitioner>>) {
        let name = self.b.new_name("KSTREAM-SINK");
        self.b.apply(|t| {
            t.add_sink_with_partitioner(&name, topic, partitioner, &[&self.node])
                .map(drop)
        });
    }

    /// Groups by the current key, for an aggregation.
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        KGroupedStream::new(self.clone())
    }

    /// Groups by a new key (always repartitioned by it before the aggregation).
    pub fn group_by<K2: DslType>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KGroupedStream<K2, V> {
        KGroupedStream::new(self.select_key(f))
    }

    /// This stream through a topic partitioned by its current key, if its key changed since
    /// the source; as Kafka Streams does it (`<prefix>-repartition`, with a filter dropping
    /// keyless records, a sink and a source).
    pub(crate) fn repartitioned(&self, prefix: &str) -> KStream<K, V> {
        if !self.repartition {
            return self.clone();
        }
        let topic = format!("{prefix}-repartition");
        let filter = format!("{topic}-filter");
        let sink = format!("{topic}-sink");
        let source = format!("{topic}-source");
        let drop_keyless = ops::supplier(|ctx, r| {
            if r.key.is_some() {
                ctx.forward(r);
            }
            Ok(())
        });
        self.b.apply(|t| {
            t.add_repartition_topic(&topic);
            t.add_processor(&filter, drop_keyless, &[&self.node])?
                .add_sink(&sink, &topic, &[&filter])?
                .add_source(&source, &[&topic])
                .map(drop)
        });
        KStream::new(
            self.b.clone(),
            source,
            self.keys.clone(),
            self.values.clone(),
            false,
        )
    }

    /// Joins each record with the table's current value for its key; records whose key is not
    /// in the table (or that have no key or value) are dropped.
    pub fn join<VT: 'static, VR: DslType>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(joiner);
        self.table_join(table, "KSTREAM-JOIN", move |v, tv| {
            tv.map(|tv| joiner(v, tv))
        })
    }

    /// Joins each record with the table's current value for its key, `None` when absent.
    pub fn left_join<VT: 'static, VR: DslType>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.table_join(table, "KSTREAM-LEFTJOIN", move |v, tv| Some(joiner(v, tv)))
    }

    fn table_join<VT: 'static, VR: DslType>(
        &self,
        table: &KTable<K, VT>,
        prefix: &str,
        joiner: impl Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let left = self.repartitioned(&self.node);
        let name = self.b.new_name(prefix);
        let store = table.store.clone();
        let (values, table_values, out_values) =
            (self.values.clone(), table.values.clone(), VR::codec());
        let vrc = out_values.clone();
        let supplier = ops::supplier(move |ctx, r| {
            // Kafka Streams drops these too: no key finds nothing, no value has nothing to join.
            let (Some(key), Some(_)) = (r.key.as_deref(), r.value.as_deref()) else {
                return Ok(());
            };
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            let found = ctx.store(&store)?.get(key)?;
            let tv = match found {
                Some(bytes) => Some(decode(ctx, &table_values, Some(&bytes), "table value")?),
                None => None,
            };
            if let Some(vr) = joiner(&v, tv.as_ref()) {
                let out = r.with_value(encode(ctx, &vrc, &vr, "value")?);
                ctx.forward(out);
            }
            Ok(())
        });
        self.b.add_processor(&name, supplier, &[&left.node]);
        self.b.apply(|t| {
            t.connect_processor_and_state_store(&name, &table.store)
                .map(drop)
        });
        KStream::new(self.b.clone(), name, self.keys.clone(), out_values, false)
    }

    /// Joins each record with the global table's value for `key_of(key, value)`; records with
    /// no match are dropped. No co-partitioning needed: every instance holds the whole table.
    pub fn join_global<GK: 'static, GV: 'static, VR: DslType>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_of: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, &GV) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(joiner);
        self.global_join(table, "KSTREAM-JOIN", key_of, move |v, gv| {
            gv.map(|gv| joiner(v, gv))
        })
    }

    /// Like [`join_global`](Self::join_global), with `None` for records with no match.
    pub fn left_join_global<GK: 'static, GV: 'static, VR: DslType>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_of: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.global_join(table, "KSTREAM-LEFTJOIN", key_of, move |v, gv| {
            Some(joiner(v, gv))
        })
    }

    fn global_join<GK: 'static, GV: 'static, VR: DslType>(
        &self,
        table: &GlobalKTable<GK, GV>,
        prefix: &str,
        key_of: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> Option<VR> + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let store = table.store.clone();
        let (keys, values) = (self.keys.clone(), self.values.clone());
        let (global_keys, global_values) = (table.keys.clone(), table.values.clone());
        let out_values = VR::codec();
        let vrc = out_values.clone();
        let supplier = ops::supplier(move |ctx, r| {
            if r.value.is_none() {
                return Ok(());
            }
            let k = decode(ctx, &keys, r.key.as_deref(), "key")?;
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            let gk = encode(ctx, &global_keys, &key_of(&k, &v), "global table key")?;
            let found = match gk {
                Some(gk) => ctx.global_store(&store)?.get(&gk)?,
                None => None,
            };
            let gv = match found {
                Some(bytes) => Some(decode(
                    ctx,
                    &global_values,
                    Some(&bytes),
                    "global table value",
                )?),
                None => None,
            };
            if let Some(vr) = joiner(&v, gv.as_ref()) {
                let out = r.with_value(encode(ctx, &vrc, &vr, "value")?);
                ctx.forward(out);
            }
            Ok(())
        });
        self.child(
            prefix,
            supplier,
            self.keys.clone(),
            out_values,
            self.repartition,
        )
    }
}

/// A stream being split into branches; finish with [`default_branch`](Split::default_branch)
/// or [`no_default_branch`](Split::no_default_branch).
#[must_use = "the branches exist only once default_branch or no_default_branch is called"]
pub struct Split<K, V> {
    name: String,
    stream: KStream<K, V>,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K: 'static, V: 'static> Split<K, V> {
    /// A branch for the records `pred` accepts (and no earlier branch took), named as Kafka
    /// Streams names it: the split node's name and the branch's number from 1.
    pub fn branch(mut self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let child = format!("{}{}", self.name, self.branches.len() + 1);
        self.branches.push((child, Arc::new(pred)));
        self
    }

    /// A branch named `<split node><suffix>`.
    pub fn branch_as(
        mut self,
        suffix: &str,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        let child = format!("{}{suffix}", self.name);
        self.branches.push((child, Arc::new(pred)));
        self
    }

    /// The branches in order, then one for the records no branch took.
    pub fn default_branch(self) -> Vec<KStream<K, V>> {
        let child = format!("{}{}", self.name, self.branches.len() + 1);
        self.finish(Some(child))
    }

    /// The branches in order; records no branch takes are dropped.
    pub fn no_default_branch(self) -> Vec<KStream<K, V>> {
        self.finish(None)
    }

    fn finish(self, default: Option<String>) -> Vec<KStream<K, V>> {
        let s = &self.stream;
        let (keys, values) = (s.keys.clone(), s.values.clone());
        let branches = self.branches;
        let routes: Vec<(String, Predicate<K, V>)> = branches.clone();
        let fallback = default.clone();
        let supplier = ops::supplier(move |ctx, r| {
            let k = decode(ctx, &keys, r.key.as_deref(), "key")?;
            let v = decode(ctx, &values, r.value.as_deref(), "value")?;
            let target = routes
                .iter()
                .find(|(_, pred)| pred(&k, &v))
                .map(|(child, _)| child)
                .or(fallback.as_ref());
            if let Some(child) = target {
                ctx.forward_to(child, r)?;
            }
            Ok(())
        });
        s.b.add_processor(&self.name, supplier, &[&s.node]);
        branches
            .into_iter()
            .map(|(child, _)| child)
            .chain(default)
            .map(|child| {
                s.b.add_processor(&child, ops::pass_through(), &[&self.name]);
                KStream::new(
                    s.b.clone(),
                    child,
                    s.keys.clone(),
                    s.values.clone(),
                    s.repartition,
                )
            })
            .collect()
    }
}
