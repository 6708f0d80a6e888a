use super::ops::{self, decode, encode};
use super::serdes::{Codec, DslType, Materialized};
use super::stream::KStream;
use super::Shared;
use super::Step;
use crate::processor::ProcessorSupplier;
use std::sync::Arc;

/// The processor that keeps a table's store: the latest value per key, deleted by a record
/// without a value. Keys and values are decoded only to reject bad bytes where they enter.
pub(crate) fn table_source<K: 'static, V: 'static>(
    store: String,
    keys: Codec<K>,
    values: Codec<V>,
) -> ProcessorSupplier {
    ops::supplier(move |ctx, r| {
        // A table row needs a key; Kafka Streams drops keyless records too.
        let Some(key) = r.key.as_deref() else {
            return Ok(());
        };
        decode(ctx, &keys, Some(key), "key")?;
        let s = ctx.store(&store)?;
        let old = match r.value.as_deref() {
            Some(value) => {
                decode(ctx, &values, Some(value), "value")?;
                let old = s.get(key)?;
                s.put(key, value)?;
                old
            }
            None => s.delete(key)?,
        };
        // The update carries the value it replaces (Kafka Streams' `Change`), for downstream
        // aggregates' subtractors and joins' old results.
        let mut r = r;
        super::table_ops::set_old(&mut r, old);
        ctx.forward(r);
        Ok(())
    })
}

/// A table: the latest value per key, in a store. Updates flow downstream as records; a
/// record without a value is a delete.
pub struct KTable<K, V> {
    pub(crate) b: Shared,
    pub(crate) node: String,
    pub(crate) store: String,
    pub(crate) keys: Codec<K>,
    pub(crate) values: Codec<V>,
}

impl<K: 'static, V: 'static> KTable<K, V> {
    pub(crate) fn new(
        b: Shared,
        node: String,
        store: String,
        keys: Codec<K>,
        values: Codec<V>,
    ) -> Self {
        KTable {
            b,
            node,
            store,
            keys,
            values,
        }
    }

    /// The store holding the table (for `driver.store(..)` and interactive queries).
    pub fn store_name(&self) -> &str {
        &self.store
    }

    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// Every update of the table as a record; deletes arrive as `None`.
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        let name = self.b.new_name("KTABLE-TOSTREAM");
        // The old value is internal to tables: a stream sees only the new one.
        let strip = ops::supplier(|ctx, mut r| {
            super::table_ops::set_old(&mut r, None);
            ctx.forward(r);
            Ok(())
        });
        self.b.add_processor(&name, strip, &[&self.node]);
        KStream::new(
            self.b.clone(),
            name,
            self.keys.clone(),
            Codec::nullable(self.values.clone()),
            false,
        )
    }
}

/// A table every instance holds whole, joined with [`KStream::join_global`].
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    pub(crate) keys: Codec<K>,
    pub(crate) values: Codec<V>,
}

impl<K, V> GlobalKTable<K, V> {
    pub(crate) fn new(store: String, keys: Codec<K>, values: Codec<V>) -> Self {
        GlobalKTable {
            store,
            keys,
            values,
        }
    }

    /// The global store holding the table (`driver.global_store(..)`).
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

/// A stream grouped by key, to be aggregated into a [`KTable`].
pub struct KGroupedStream<K, V> {
    pub(super) stream: KStream<K, V>,
}

impl<K: 'static, V: 'static> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>) -> Self {
        KGroupedStream { stream }
    }

    /// The number of records per key.
    pub fn count(&self, materialized: Materialized) -> KTable<K, i64> {
        let step: Step<K, V, i64> = Arc::new(|_, _, count| count.unwrap_or(0) + 1);
        self.aggregate_node("KSTREAM-AGGREGATE", materialized, i64::codec(), step)
    }

    /// Combines the values per key, the first value as it is.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<K, V> {
        let step: Step<K, V, V> = Arc::new(move |_, v, agg| match agg {
            Some(agg) => reducer(agg, v),
            None => v,
        });
        let values = self.stream.values.clone();
        self.aggregate_node("KSTREAM-REDUCE", materialized, values, step)
    }

    /// Folds the values per key into an aggregate starting at `init()`.
    pub fn aggregate<VA: DslType>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<K, VA> {
        let step: Step<K, V, VA> =
            Arc::new(move |k, v, agg| aggregator(k, v, agg.unwrap_or_else(&init)));
        self.aggregate_node("KSTREAM-AGGREGATE", materialized, VA::codec(), step)
    }

    fn aggregate_node<VA: 'static>(
        &self,
        prefix: &str,
        materialized: Materialized,
        aggregates: Codec<VA>,
        step: Step<K, V, VA>,
    ) -> KTable<K, VA> {
        let s = &self.stream;
        // Kafka Streams' order: the generated store name, then the node, then the repartition
        // (named after the store).
        let spec =
            s.b.store_spec(&materialized, &format!("{prefix}-STATE-STORE"));
        let name = s.b.new_name(prefix);
        let store = spec.name.clone();
        let input = s.repartitioned(&store);
        let supplier = aggregate_supplier(
            store.clone(),
            s.keys.clone(),
            s.values.clone(),
            aggregates.clone(),
            step,
        );
        s.b.apply(|t| {
            t.add_processor(&name, supplier, &[&input.node])?
                .add_state_store(spec, &[&name])
                .map(drop)
        });
        KTable::new(s.b.clone(), name, store, s.keys.clone(), aggregates)
    }
}

fn aggregate_supplier<K: 'static, V: 'static, VA: 'static>(
    store: String,
    keys: Codec<K>,
    values: Codec<V>,
    aggregates: Codec<VA>,
    step: Step<K, V, VA>,
) -> ProcessorSupplier {
    super::cached::cached_supplier(store, move |ctx, r, kv| {
        // Kafka Streams skips these: no key has no group, no value has nothing to add.
        let (Some(key), Some(_)) = (r.key.as_deref(), r.value.as_deref()) else {
            return Ok(());
        };
        let k = decode(ctx, &keys, Some(key), "key")?;
        let v = decode(ctx, &values, r.value.as_deref(), "value")?;
        let prior = kv.get(ctx, key)?;
        let old = match &prior {
            Some(bytes) => Some(decode(ctx, &aggregates, Some(bytes), "stored aggregate")?),
            None => None,
        };
        let new = encode(ctx, &aggregates, &step(&k, v, old), "aggregate")?;
        let key = key.to_vec();
        kv.put(ctx, key, new, prior, r.timestamp, r.headers)
    })
}
