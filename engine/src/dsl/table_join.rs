//! KTable–KTable joins: `join`, `left_join`, `outer_join` on the key, both sides materialized.
//!
//! As in Kafka Streams (`KTableKTableJoin` / `LeftJoin` / `RightJoin` / `OuterJoin`), each side
//! gets a processor that, on an update of its side, looks the key up in the other side's store
//! and joins both the new and the old value with it; the two feed a merge node that keeps the
//! result in its own store. Which updates produce a result:
//! - inner: only while the other side has the key;
//! - left: every left update; a right update only while the left side has the key;
//! - outer: every update (a delete when neither side has the key any more).

use super::ops::{self, decode, encode};
use super::serdes::{Codec, DslType, Materialized};
use super::table::KTable;
use super::table_ops::{old_of, set_old};
use crate::processor::ProcessorSupplier;
use ks_stores::StoreKind;
use std::sync::Arc;

/// What one side's update (`this`, the other side's current value) joins to: `None` skips the
/// update, `Some(None)` is a delete, `Some(Some(v))` a result.
type Rule<A, B, VR> = Arc<dyn Fn(Option<&A>, Option<&B>) -> Option<Option<VR>> + Send + Sync>;

/// The stores one side reads and writes: the other side's rows, and the row timestamps of both
/// sides (Kafka Streams' timestamped stores: a result is stamped with the later of the two).
struct SideStores {
    other: String,
    own_times: String,
    other_times: String,
}

fn side<A: 'static, B: 'static, VR: 'static>(
    this_values: Codec<A>,
    stores: SideStores,
    other_values: Codec<B>,
    out: Codec<VR>,
    rule: Rule<A, B, VR>,
) -> ProcessorSupplier {
    ops::supplier(move |ctx, mut r| {
        let Some(key) = r.key.clone() else {
            return Ok(());
        };
        // Keep this side's row timestamp for the other side's lookups.
        let own_times = ctx.store(&stores.own_times)?;
        match r.value {
            Some(_) => own_times.put(&key, &r.timestamp.to_be_bytes())?,
            None => {
                own_times.delete(&key)?;
            }
        }
        let other_time = match ctx.store(&stores.other_times)?.get(&key)? {
            Some(b) => <[u8; 8]>::try_from(b.as_slice())
                .map(i64::from_be_bytes)
                .ok(),
            None => None,
        };
        let other = match ctx.store(&stores.other)?.get(&key)? {
            Some(b) => Some(decode(ctx, &other_values, Some(&b), "other side's value")?),
            None => None,
        };
        let new = match r.value.as_deref() {
            Some(b) => Some(decode(ctx, &this_values, Some(b), "value")?),
            None => None,
        };
        let old = match old_of(&r) {
            Some(b) => Some(decode(ctx, &this_values, Some(&b), "old value")?),
            None => None,
        };
        // An update of nothing to nothing (a delete of an absent key) joins to nothing.
        if new.is_none() && old.is_none() {
            return Ok(());
        }
        let Some(new) = rule(new.as_ref(), other.as_ref()) else {
            return Ok(());
        };
        if let Some(t) = other_time {
            r.timestamp = r.timestamp.max(t);
        }
        let old = old.and_then(|o| rule(Some(&o), other.as_ref()).flatten());
        r.value = match new {
            Some(v) => encode(ctx, &out, &v, "join result")?,
            None => None,
        };
        let old = match old {
            Some(v) => encode(ctx, &out, &v, "old join result")?,
            None => None,
        };
        set_old(&mut r, old);
        ctx.forward(r);
        Ok(())
    })
}

impl<K: 'static, V: 'static> KTable<K, V> {
    /// A row per key both tables have, `joiner(left, right)`.
    pub fn join<VO: 'static, VR: DslType>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let j = Arc::new(joiner);
        let j2 = j.clone();
        self.join_node(
            other,
            "KTABLE-JOINTHIS",
            "KTABLE-JOINOTHER",
            Arc::new(move |n, o| {
                let o = o?;
                Some(n.map(|n| j(n, o)))
            }),
            Arc::new(move |n, l| {
                let l = l?;
                Some(n.map(|n| j2(l, n)))
            }),
        )
    }

    /// A row per key of this table, `joiner(left, right-or-None)`.
    pub fn left_join<VO: 'static, VR: DslType>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let j = Arc::new(joiner);
        let j2 = j.clone();
        self.join_node(
            other,
            "KTABLE-LEFTTHIS",
            "KTABLE-LEFTOTHER",
            Arc::new(move |n, o| Some(n.map(|n| j(n, o)))),
            Arc::new(move |n, l| {
                let l = l?;
                Some(Some(j2(l, n)))
            }),
        )
    }

    /// A row per key of either table, `joiner(left-or-None, right-or-None)`.
    pub fn outer_join<VO: 'static, VR: DslType>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let j = Arc::new(joiner);
        let j2 = j.clone();
        self.join_node(
            other,
            "KTABLE-OUTERTHIS",
            "KTABLE-OUTEROTHER",
            Arc::new(move |n, o| {
                Some(if n.is_none() && o.is_none() {
                    None
                } else {
                    Some(j(n, o))
                })
            }),
            Arc::new(move |n, l| {
                Some(if n.is_none() && l.is_none() {
                    None
                } else {
                    Some(j2(l, n))
                })
            }),
        )
    }

    fn join_node<VO: 'static, VR: DslType>(
        &self,
        other: &KTable<K, VO>,
        this_prefix: &str,
        other_prefix: &str,
        this_rule: Rule<V, VO, VR>,
        other_rule: Rule<VO, V, VR>,
    ) -> KTable<K, VR> {
        let this_name = self.b.new_name(this_prefix);
        let other_name = self.b.new_name(other_prefix);
        let spec = self.b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            "KTABLE-MERGE-STATE-STORE",
        );
        let merge = self.b.new_name("KTABLE-MERGE");
        let store = spec.name.clone();
        let this_times = self.b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            &format!("{this_name}-TIMESTAMPS"),
        );
        let other_times = self.b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            &format!("{other_name}-TIMESTAMPS"),
        );
        let this_side = side(
            self.values.clone(),
            SideStores {
                other: other.store.clone(),
                own_times: this_times.name.clone(),
                other_times: other_times.name.clone(),
            },
            other.values.clone(),
            VR::codec(),
            this_rule,
        );
        let other_side = side(
            other.values.clone(),
            SideStores {
                other: self.store.clone(),
                own_times: other_times.name.clone(),
                other_times: this_times.name.clone(),
            },
            self.values.clone(),
            VR::codec(),
            other_rule,
        );
        let (this_times_name, other_times_name) =
            (this_times.name.clone(), other_times.name.clone());
        let st = store.clone();
        let keep = ops::supplier(move |ctx, r| {
            if let Some(key) = r.key.as_deref() {
                let s = ctx.store(&st)?;
                match r.value.as_deref() {
                    Some(v) => s.put(key, v)?,
                    None => {
                        s.delete(key)?;
                    }
                }
            }
            ctx.forward(r);
            Ok(())
        });
        self.b.apply(|t| {
            t.add_processor(&this_name, this_side, &[&self.node])?
                .add_processor(&other_name, other_side, &[&other.node])?
                .connect_processor_and_state_store(&this_name, &other.store)?
                .connect_processor_and_state_store(&other_name, &self.store)?
                .add_state_store(this_times, &[&this_name])?
                .add_state_store(other_times, &[&other_name])?
                .connect_processor_and_state_store(&this_name, &other_times_name)?
                .connect_processor_and_state_store(&other_name, &this_times_name)?
                .add_processor(&merge, keep, &[&this_name, &other_name])?
                .add_state_store(spec, &[&merge])
                .map(drop)
        });
        KTable::new(self.b.clone(), merge, store, self.keys.clone(), VR::codec())
    }
}
