//! KTable operators: `filter`, `filter_not`, `map_values`, `group_by` and the grouped table's
//! `count / reduce / aggregate`.
//!
//! A table update is Kafka Streams' `Change<V>`: the record's value is the new value (`None`
//! for a delete) and the value it replaced travels in the internal header [`OLD_HEADER`]
//! (absent when there was none). Every table node reads both: a filter maps both through the
//! predicate, `group_by` sends the old row to its old group (to be subtracted) and the new row
//! to its new group (to be added), and an aggregate subtracts then adds. `to_stream` drops the
//! header, so streams only ever see new values.
//!
//! ```
//! use ks_engine::dsl::{Materialized, StreamsBuilder};
//! use ks_engine::stores::StoreKind;
//! use ks_engine::TopologyTestDriver;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .table::<String, String>("in", Materialized::with_kind(StoreKind::InMemory))
//!     .group_by(|_, v| (v.clone(), v.clone()))
//!     .count(Materialized::with_kind(StoreKind::InMemory))
//!     .to_stream()
//!     .to("out");
//! let mut driver = TopologyTestDriver::new(&builder.build()?, 0)?;
//! driver.pipe_input("in", Some(b"k"), Some(b"x"), 1)?;
//! driver.pipe_input("in", Some(b"k"), Some(b"y"), 2)?;
//! // x: 1, then x: 0 (k left group x), then y: 1.
//! assert_eq!(driver.read_all_output("out").len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::ops::{self, decode, encode};
use super::serdes::{Codec, DslType, Materialized};
use super::stream::KStream;
use super::table::KTable;
use super::{derive, Shared};
use crate::processor::ProcessorContext;
use crate::record::Record;
use crate::Result;
use ks_stores::StoreKind;
use std::sync::Arc;

/// The header carrying a table update's old value between table nodes.
pub(crate) const OLD_HEADER: &str = "__ks.table.old";

/// The old value of a table update, `None` when the key had none.
pub(crate) fn old_of(r: &Record) -> Option<Vec<u8>> {
    r.headers
        .iter()
        .find(|(k, _)| k == OLD_HEADER)
        .map(|(_, v)| v.clone())
}

/// Sets (or with `None` removes) a table update's old value.
pub(crate) fn set_old(r: &mut Record, old: Option<Vec<u8>>) {
    r.headers.retain(|(k, _)| k != OLD_HEADER);
    if let Some(old) = old {
        r.headers.push((OLD_HEADER.to_string(), old));
    }
}

fn decode_opt<T: 'static>(
    ctx: &ProcessorContext<'_>,
    codec: &Codec<T>,
    bytes: Option<&[u8]>,
    what: &str,
) -> Result<Option<T>> {
    match bytes {
        Some(b) => decode(ctx, codec, Some(b), what).map(Some),
        None => Ok(None),
    }
}

type TablePredicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;
/// A row's value through a filter or `map_values`: `None` for no row.
type RowFn<K, V, V2> = Arc<dyn Fn(&K, Option<V>) -> Option<V2> + Send + Sync>;

impl<K: 'static, V: 'static> KTable<K, V> {
    /// A table node after this one, materialized in a generated store so it can be joined and
    /// queried, forwarding `(new, old)` computed by `f` from this table's `(new, old)`.
    fn derived<V2: 'static>(
        &self,
        prefix: &str,
        values2: Codec<V2>,
        f: RowFn<K, V, V2>,
    ) -> KTable<K, V2> {
        let spec = self.b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            &format!("{prefix}-STATE-STORE"),
        );
        let name = self.b.new_name(prefix);
        let store = spec.name.clone();
        let (keys, values, v2c) = (self.keys.clone(), self.values.clone(), values2.clone());
        let st = store.clone();
        let supplier = ops::supplier(move |ctx, mut r| {
            let Some(key) = r.key.clone() else {
                return Ok(());
            };
            let k = decode(ctx, &keys, Some(&key), "key")?;
            let new = decode_opt(ctx, &values, r.value.as_deref(), "value")?;
            let old = decode_opt(ctx, &values, old_of(&r).as_deref(), "old value")?;
            let new2 = match f(&k, new) {
                Some(v) => encode(ctx, &v2c, &v, "value")?,
                None => None,
            };
            let old2 = match f(&k, old) {
                Some(v) => encode(ctx, &v2c, &v, "old value")?,
                None => None,
            };
            let s = ctx.store(&st)?;
            match &new2 {
                Some(v) => s.put(&key, v)?,
                None => {
                    s.delete(&key)?;
                }
            }
            // Kafka Streams forwards a filtered-out update as a delete even when the key was
            // never in the result, unless a downstream asked for old values (which ks always
            // carries) — a join or aggregate ignores a (None, None) update anyway.
            r.value = new2;
            set_old(&mut r, old2);
            ctx.forward(r);
            Ok(())
        });
        self.b.apply(|t| {
            t.add_processor(&name, supplier, &[&self.node])?
                .add_state_store(spec, &[&name])
                .map(drop)
        });
        KTable::new(self.b.clone(), name, store, self.keys.clone(), values2)
    }

    fn filter_table(&self, pred: TablePredicate<K, V>, keep_if: bool) -> KTable<K, V> {
        self.derived(
            "KTABLE-FILTER",
            self.values.clone(),
            Arc::new(move |k, v| v.filter(|v| pred(k, v) == keep_if)),
        )
    }

    /// The rows `keep` accepts; an update `keep` rejects deletes the key downstream.
    pub fn filter(&self, keep: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        self.filter_table(Arc::new(keep), true)
    }

    /// The rows `drop` rejects.
    pub fn filter_not(
        &self,
        drop: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        self.filter_table(Arc::new(drop), false)
    }

    /// A new value for every row; deletes stay deletes.
    pub fn map_values<V2: DslType>(
        &self,
        f: impl Fn(&V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        self.derived(
            "KTABLE-MAPVALUES",
            V2::codec(),
            Arc::new(move |_, v| v.map(|v| f(&v))),
        )
    }

    /// Regroups the rows by `f(key, value) = (group, value)`, for `count / reduce / aggregate`
    /// with a subtractor: a row that changes removes its old value from its old group and adds
    /// its new value to its new group.
    pub fn group_by<K2: DslType, V2: DslType>(
        &self,
        f: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KGroupedTable<K2, V2> {
        let name = self.b.new_name("KTABLE-SELECT");
        let (keys, values) = (self.keys.clone(), self.values.clone());
        let (k2c, v2c) = (K2::codec(), V2::codec());
        let supplier = ops::supplier(move |ctx, r| {
            let Some(key) = r.key.as_deref() else {
                return Ok(());
            };
            let k = decode(ctx, &keys, Some(key), "key")?;
            let new = decode_opt(ctx, &values, r.value.as_deref(), "value")?;
            let old = decode_opt(ctx, &values, old_of(&r).as_deref(), "old value")?;
            let pair = |v: Option<V>, what: &str| -> Result<Option<(Vec<u8>, Vec<u8>)>> {
                let Some(v) = v else { return Ok(None) };
                let (k2, v2) = f(&k, &v);
                let (Some(k2), Some(v2)) =
                    (encode(ctx, &k2c, &k2, what)?, encode(ctx, &v2c, &v2, what)?)
                else {
                    return Ok(None);
                };
                Ok(Some((k2, v2)))
            };
            let new = pair(new, "new group")?;
            let old = pair(old, "old group")?;
            match (old, new) {
                // Same group: one update, subtract and add at once (Kafka Streams sends the
                // whole change when the key did not move).
                (Some((ko, vo)), Some((kn, vn))) if ko == kn => {
                    let mut out = derive(&r, Some(kn), Some(vn));
                    set_old(&mut out, Some(vo));
                    ctx.forward(out);
                }
                (old, new) => {
                    if let Some((ko, vo)) = old {
                        let mut out = derive(&r, Some(ko), None);
                        set_old(&mut out, Some(vo));
                        ctx.forward(out);
                    }
                    if let Some((kn, vn)) = new {
                        let mut out = derive(&r, Some(kn), Some(vn));
                        set_old(&mut out, None);
                        ctx.forward(out);
                    }
                }
            }
            Ok(())
        });
        self.b.add_processor(&name, supplier, &[&self.node]);
        KGroupedTable {
            b: self.b.clone(),
            node: name,
            keys: K2::codec(),
            values: V2::codec(),
        }
    }
}

/// A table regrouped by [`KTable::group_by`], to be aggregated with an adder and a subtractor.
pub struct KGroupedTable<K, V> {
    b: Shared,
    node: String,
    keys: Codec<K>,
    values: Codec<V>,
}

/// One step of a table aggregate: (key, current aggregate, old value to remove, new value to
/// add) → the next aggregate.
type TableStep<K, V, VA> =
    Arc<dyn Fn(&K, Option<VA>, Option<V>, Option<V>) -> Option<VA> + Send + Sync>;

impl<K: 'static, V: 'static> KGroupedTable<K, V> {
    /// The number of rows per group.
    pub fn count(&self, materialized: Materialized) -> KTable<K, i64> {
        let step: TableStep<K, V, i64> = Arc::new(|_, agg, old, new| {
            let mut n = agg.unwrap_or(0);
            if old.is_some() {
                n -= 1;
            }
            if new.is_some() {
                n += 1;
            }
            Some(n)
        });
        self.aggregate_node("KTABLE-AGGREGATE", materialized, i64::codec(), step)
    }

    /// Combines the values per group: `adder` for a row joining, `subtractor` for a row
    /// leaving; the first value is the aggregate as it is.
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<K, V> {
        let step: TableStep<K, V, V> = Arc::new(move |_, agg, old, new| {
            // Kafka Streams' KTableReduce: subtract only from an existing aggregate, then add
            // (or start from the new value).
            let mid = match (agg, old) {
                (Some(agg), Some(old)) => Some(subtractor(agg, old)),
                (agg, _) => agg,
            };
            match (mid, new) {
                (Some(mid), Some(new)) => Some(adder(mid, new)),
                (None, Some(new)) => Some(new),
                (mid, None) => mid,
            }
        });
        let values = self.values.clone();
        self.aggregate_node("KTABLE-REDUCE", materialized, values, step)
    }

    /// Folds the rows per group into an aggregate starting at `init()`.
    pub fn aggregate<VA: DslType>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<K, VA> {
        let step: TableStep<K, V, VA> = Arc::new(move |k, agg, old, new| {
            let mut agg = agg.unwrap_or_else(&init);
            if let Some(old) = old {
                agg = subtractor(k, old, agg);
            }
            if let Some(new) = new {
                agg = adder(k, new, agg);
            }
            Some(agg)
        });
        self.aggregate_node("KTABLE-AGGREGATE", materialized, VA::codec(), step)
    }

    fn aggregate_node<VA: 'static>(
        &self,
        prefix: &str,
        materialized: Materialized,
        aggregates: Codec<VA>,
        step: TableStep<K, V, VA>,
    ) -> KTable<K, VA> {
        let spec = self
            .b
            .store_spec(&materialized, &format!("{prefix}-STATE-STORE"));
        let name = self.b.new_name(prefix);
        let store = spec.name.clone();
        // Every group's rows meet in one partition: through `<store>-repartition`, as
        // Kafka Streams' groupBy does (in the test driver, fed back in-process).
        let select = KStream::new(
            self.b.clone(),
            self.node.clone(),
            self.keys.clone(),
            self.values.clone(),
            true,
        );
        let input = select.repartitioned(&store);
        let (keys, values, ac) = (self.keys.clone(), self.values.clone(), aggregates.clone());
        let supplier = super::cached::cached_supplier(store.clone(), move |ctx, r, kv| {
            let Some(key) = r.key.clone() else {
                return Ok(());
            };
            let old = old_of(&r);
            if old.is_none() && r.value.is_none() {
                return Ok(());
            }
            let k = decode(ctx, &keys, Some(&key), "key")?;
            let new = decode_opt(ctx, &values, r.value.as_deref(), "value")?;
            let old = decode_opt(ctx, &values, old.as_deref(), "old value")?;
            let prev_bytes = kv.get(ctx, &key)?;
            let prev = decode_opt(ctx, &ac, prev_bytes.as_deref(), "stored aggregate")?;
            let next = match step(&k, prev, old, new) {
                Some(a) => encode(ctx, &ac, &a, "aggregate")?,
                None => None,
            };
            kv.put(ctx, key, next, prev_bytes, r.timestamp, r.headers)
        });
        self.b.apply(|t| {
            t.add_processor(&name, supplier, &[&input.node])?
                .add_state_store(spec, &[&name])
                .map(drop)
        });
        KTable::new(self.b.clone(), name, store, self.keys.clone(), aggregates)
    }
}
