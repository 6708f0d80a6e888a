//! The foreign-key table join: `orders.join_fk(&customers, |order| customer_id, joiner)`.
//!
//! Kafka Streams sends a subscription (left key, foreign key, hash of the left value) through a
//! repartition topic to the right side's partition, which answers through a second topic; the
//! hash drops answers about a left value that has changed since. ks runs both sides of the join
//! in one task (the test driver's single partition, and any co-partitioned deployment), so the
//! same output records come from a direct design: the left side keeps a subscription store
//! `len(fk) ‖ fk ‖ left key` and looks the right table up itself; a right update scans the
//! subscriptions of its key in left-key order (the order Kafka Streams' subscription store
//! prefix scan gives). No answer can be stale, so no hash is needed. Emission rules follow
//! Kafka Streams' subscription instructions for the inner join:
//! - a new left row joins if its foreign key has a right row, and is dropped if not;
//! - a changed left row joins, or deletes the result when the foreign key has no right row;
//! - a deleted left row deletes the result (if there was a row);
//! - a right update re-joins (or with a delete, deletes) every left row subscribed to it.
//!
//! On inputs of more than one partition this is right only when the left table's records are
//! partitioned by the foreign key (as the right table's are by its key); the runtime warns at
//! start when the inputs have several partitions.

use super::derive;
use super::ops::{self, decode, encode};
use super::serdes::{DslType, Materialized};
use super::table::KTable;
use super::table_ops::{old_of, set_old};
use ks_stores::StoreKind;
use std::sync::Arc;

fn subscription(fk: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut k = prefix(fk);
    k.extend_from_slice(pk);
    k
}

fn prefix(fk: &[u8]) -> Vec<u8> {
    let mut k = (fk.len() as u32).to_be_bytes().to_vec();
    k.extend_from_slice(fk);
    k
}

impl<K: 'static, V: 'static> KTable<K, V> {
    /// Joins each row with the row of `other` whose key `extract(value)` gives (inner join);
    /// the result is keyed by this table's key.
    pub fn join_fk<KO: DslType, VO: 'static, VR: DslType>(
        &self,
        other: &KTable<KO, VO>,
        extract: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let (extract, joiner) = (Arc::new(extract), Arc::new(joiner));
        let subs = self.b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE",
        );
        let left_name = self.b.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR");
        let right_name = self.b.new_name("KTABLE-FK-JOIN-RESPONSE-PROCESSOR");
        let spec = self.b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            "KTABLE-FK-JOIN-OUTPUT-STATE-STORE",
        );
        let merge = self.b.new_name("KTABLE-MERGE");
        let store = spec.name.clone();
        let subs_name = subs.name.clone();

        let (values, right_values, fkc, out) = (
            self.values.clone(),
            other.values.clone(),
            KO::codec(),
            VR::codec(),
        );
        let (right_store, subs_store) = (other.store.clone(), subs_name.clone());
        let (ex, jo) = (extract.clone(), joiner.clone());
        let left_side = ops::supplier(move |ctx, r| {
            let Some(pk) = r.key.clone() else {
                return Ok(());
            };
            let new = match r.value.as_deref() {
                Some(b) => Some(decode(ctx, &values, Some(b), "value")?),
                None => None,
            };
            let old = match old_of(&r) {
                Some(b) => Some(decode(ctx, &values, Some(&b), "old value")?),
                None => None,
            };
            let new_fk = match &new {
                Some(v) => encode(ctx, &fkc, &ex(v), "foreign key")?,
                None => None,
            };
            let old_fk = match &old {
                Some(v) => encode(ctx, &fkc, &ex(v), "old foreign key")?,
                None => None,
            };
            let s = ctx.store(&subs_store)?;
            if let Some(ofk) = &old_fk {
                if new_fk.as_ref() != Some(ofk) {
                    s.delete(&subscription(ofk, &pk))?;
                }
            }
            if let Some(nfk) = &new_fk {
                s.put(&subscription(nfk, &pk), &[])?;
            }
            let right = match &new_fk {
                Some(fk) => match ctx.store(&right_store)?.get(fk)? {
                    Some(b) => Some(decode(ctx, &right_values, Some(&b), "right value")?),
                    None => None,
                },
                None => None,
            };
            let value = match (&new, &right) {
                (Some(v), Some(rv)) => encode(ctx, &out, &jo(v, rv), "join result")?,
                // A new row with no right row yet has no result to delete.
                _ if old.is_none() => return Ok(()),
                _ => None,
            };
            let mut o = derive(&r, Some(pk), value);
            set_old(&mut o, None);
            ctx.forward(o);
            Ok(())
        });

        let (values, right_values, out) = (self.values.clone(), other.values.clone(), VR::codec());
        let (left_store, subs_store) = (self.store.clone(), subs_name.clone());
        let fkc = KO::codec();
        let right_side = ops::supplier(move |ctx, r| {
            let Some(fk) = r.key.clone() else {
                return Ok(());
            };
            let right = match r.value.as_deref() {
                Some(b) => Some(decode(ctx, &right_values, Some(b), "value")?),
                None => None,
            };
            let p = prefix(&fk);
            let subscribers = ctx.store(&subs_store)?.range(Some(&p), None)?;
            for (key, _) in subscribers
                .into_iter()
                .take_while(|(k, _)| k.starts_with(&p))
            {
                let pk = key[p.len()..].to_vec();
                let Some(lb) = ctx.store(&left_store)?.get(&pk)? else {
                    continue;
                };
                let lv = decode(ctx, &values, Some(&lb), "left value")?;
                // Only a row whose current foreign key is this one (the subscription store
                // follows the left table, so this is a check, not a filter).
                if encode(ctx, &fkc, &extract(&lv), "foreign key")?.as_deref() != Some(&fk[..]) {
                    continue;
                }
                let value = match &right {
                    Some(rv) => encode(ctx, &out, &joiner(&lv, rv), "join result")?,
                    None => None,
                };
                let mut o = derive(&r, Some(pk), value);
                set_old(&mut o, None);
                ctx.forward(o);
            }
            Ok(())
        });

        let st = store.clone();
        let keep = ops::supplier(move |ctx, mut r| {
            if let Some(key) = r.key.as_deref() {
                let s = ctx.store(&st)?;
                let old = match r.value.as_deref() {
                    Some(v) => {
                        let old = s.get(key)?;
                        s.put(key, v)?;
                        old
                    }
                    None => s.delete(key)?,
                };
                set_old(&mut r, old);
            }
            ctx.forward(r);
            Ok(())
        });
        self.b.apply(|t| {
            t.add_processor(&left_name, left_side, &[&self.node])?
                .add_processor(&right_name, right_side, &[&other.node])?
                .add_state_store(subs, &[&left_name, &right_name])?
                .connect_processor_and_state_store(&left_name, &other.store)?
                .connect_processor_and_state_store(&right_name, &self.store)?
                .add_processor(&merge, keep, &[&left_name, &right_name])?
                .add_state_store(spec, &[&merge])?;
            t.mark_partition_local_join(&left_name);
            Ok(())
        });
        KTable::new(self.b.clone(), merge, store, self.keys.clone(), VR::codec())
    }
}
