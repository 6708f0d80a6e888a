//! The foreign-key table join: `orders.join_fk(&customers, |order| customer_id, joiner)`.
//!
//! The tables need not be co-partitioned: as in Kafka Streams, the left side sends a
//! subscription through an internal topic partitioned by the foreign key to the right table's
//! task, which answers through a second internal topic back to the left row's task.
//!
//! ```text
//!  left table ─► SUBSCRIPTION-REGISTRATION (key fk: instruction, hash of the left value,
//!                │                           the left task's partition, left key)
//!                ▼  ─────── <app>-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-…-topic ───────┐
//!  right table ─► SUBSCRIPTION-PROCESSOR ◄── subscription store `len(fk) ‖ fk ‖ left key` ◄┘
//!                │ (a right update answers every subscriber of its key; a subscription is
//!                │  answered with the right row as it is)
//!                ▼  ─────── <app>-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-…-topic (to the
//!                           partition the subscription came from) ──────────────────────┐
//!  left task:    SUBSCRIPTION-RESPONSE-RESOLVER ◄── left store (drop the answer when the ◄┘
//!                │   left value's hash changed since: a newer subscription is on its way)
//!                ▼
//!                KTABLE-MERGE (the result table, with old values)
//! ```
//!
//! The subscription topic gets the right table's partition count and the response topic the
//! left's (each is joined with those inputs in its sub-topology), so the left table may have
//! any number of partitions and any key. Subscriptions go to the partition the producer's
//! default partitioner (murmur2, Kafka's) picks for the foreign key, which is where the right
//! table's row of that key is when its topic was written by Kafka's default partitioner, as
//! Kafka Streams assumes; responses go back to the partition named in the subscription.
//!
//! Emission rules are Kafka Streams' subscription instructions for the inner join:
//! - a new left row joins if its foreign key has a right row, and is dropped if not;
//! - a changed left row joins, or deletes the result when the foreign key has no right row;
//! - a deleted left row (or one whose foreign key encodes to nothing) deletes the result;
//! - a right update re-joins (or with a delete, deletes) every left row subscribed to it.
//!
//! The value hash is Murmur3 x64 128 of the left value's bytes, as Kafka Streams'.

use super::derive;
use super::ops::{self, decode, encode};
use super::serdes::{DslType, Materialized};
use super::table::KTable;
use super::table_ops::{old_of, set_old};
use crate::processor::{ProcessorContext, StreamPartitioner};
use crate::record::Record;
use crate::Error;
use ks_stores::StoreKind;
use std::sync::Arc;

/// What a subscription asks of the right side (Kafka Streams' `SubscriptionWrapper`
/// instructions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instruction {
    /// The left row moved to another foreign key: forget it here, answer nothing.
    DeleteNoPropagate = 0,
    /// The left row was deleted (or lost its foreign key): forget it, answer so the result is
    /// deleted.
    DeleteAndPropagate = 1,
    /// A changed left row: answer even without a right row, so an old result is deleted.
    PropagateNullIfNoFkValue = 2,
    /// A new left row: answer only if the right row exists.
    PropagateOnlyIfFkValue = 3,
}

impl Instruction {
    fn from_byte(b: u8) -> Option<Instruction> {
        Some(match b {
            0 => Instruction::DeleteNoPropagate,
            1 => Instruction::DeleteAndPropagate,
            2 => Instruction::PropagateNullIfNoFkValue,
            3 => Instruction::PropagateOnlyIfFkValue,
            _ => return None,
        })
    }
}

/// The left value's hash, absent for a deleted row.
type ValueHash = Option<[u8; 16]>;

/// Wire format version of both internal topics' values.
const VERSION: u8 = 0;

/// A subscription: `VERSION, instruction, hash (flag + 16 bytes), partition (i32 BE), left key`.
#[derive(Debug, PartialEq)]
struct Subscription {
    instruction: Instruction,
    hash: ValueHash,
    partition: i32,
    left_key: Vec<u8>,
}

/// An answer: `VERSION, hash (flag + 16 bytes), partition (i32 BE), right value (flag + bytes)`.
#[derive(Debug, PartialEq)]
struct Response {
    hash: ValueHash,
    partition: i32,
    right: Option<Vec<u8>>,
}

fn put_hash(out: &mut Vec<u8>, hash: &ValueHash) {
    match hash {
        Some(h) => {
            out.push(1);
            out.extend_from_slice(h);
        }
        None => out.push(0),
    }
}

/// Reads a hash and a partition from `b`, returning the rest.
fn take_hash_and_partition(b: &[u8]) -> Option<(ValueHash, i32, &[u8])> {
    let (&flag, rest) = b.split_first()?;
    let (hash, rest) = match flag {
        0 => (None, rest),
        1 => {
            let (h, rest) = rest.split_first_chunk::<16>()?;
            (Some(*h), rest)
        }
        _ => return None,
    };
    let (p, rest) = rest.split_first_chunk::<4>()?;
    Some((hash, i32::from_be_bytes(*p), rest))
}

impl Subscription {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, self.instruction as u8];
        put_hash(&mut out, &self.hash);
        out.extend_from_slice(&self.partition.to_be_bytes());
        out.extend_from_slice(&self.left_key);
        out
    }

    fn decode(b: &[u8]) -> Option<Subscription> {
        let [VERSION, instruction, rest @ ..] = b else {
            return None;
        };
        let (hash, partition, left_key) = take_hash_and_partition(rest)?;
        Some(Subscription {
            instruction: Instruction::from_byte(*instruction)?,
            hash,
            partition,
            left_key: left_key.to_vec(),
        })
    }
}

impl Response {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        put_hash(&mut out, &self.hash);
        out.extend_from_slice(&self.partition.to_be_bytes());
        match &self.right {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(v);
            }
            None => out.push(0),
        }
        out
    }

    fn decode(b: &[u8]) -> Option<Response> {
        let [VERSION, rest @ ..] = b else {
            return None;
        };
        let (hash, partition, rest) = take_hash_and_partition(rest)?;
        let right = match rest.split_first()? {
            (0, []) => None,
            (1, v) => Some(v.to_vec()),
            _ => return None,
        };
        Some(Response {
            hash,
            partition,
            right,
        })
    }

    /// The partition named in an encoded response, for the response topic's partitioner.
    fn partition_of(b: &[u8]) -> Option<i32> {
        let [VERSION, rest @ ..] = b else {
            return None;
        };
        take_hash_and_partition(rest).map(|(_, p, _)| p)
    }
}

/// Murmur3 x64 128 (seed 0), the bytes of `h1` then `h2` little-endian (Kafka Streams'
/// `Murmur3.hash128` of the serialized left value).
fn murmur3_128(data: &[u8]) -> [u8; 16] {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    fn fmix(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    let mix1 = |k: u64| k.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mix2 = |k: u64| k.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let (a, b) = block.split_at(8);
        let k1 = a.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
        let k2 = b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
        h1 ^= mix1(k1);
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= mix2(k2);
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, &x) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= u64::from(x) << (8 * i);
        } else {
            k2 |= u64::from(x) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= mix2(k2);
    }
    if !tail.is_empty() {
        h1 ^= mix1(k1);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&h1.to_le_bytes());
    out[8..].copy_from_slice(&h2.to_le_bytes());
    out
}

fn hash_of(value: Option<&[u8]>) -> ValueHash {
    value.map(murmur3_128)
}

/// The key and decoded value of a record on one of the join's internal topics; `None` for a
/// keyless one (skipped). A value that does not decode is a deserialization error for the
/// runtime's handler, never a panic.
fn read_internal<T>(
    ctx: &ProcessorContext<'_>,
    r: &Record,
    decode: fn(&[u8]) -> Option<T>,
    what: &str,
) -> std::result::Result<Option<(Vec<u8>, T)>, Error> {
    let Some(key) = r.key.clone() else {
        return Ok(None);
    };
    match r.value.as_deref().and_then(decode) {
        Some(v) => Ok(Some((key, v))),
        None => Err(ops::undecodable(
            ctx,
            format_args!("could not read the {what}"),
        )),
    }
}

/// Forwards `value` keyed by `key`, with `template`'s timestamp and no old value (internal
/// topic records carry no table change).
fn forward(
    ctx: &mut ProcessorContext<'_>,
    template: &Record,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
) {
    let mut o = derive(template, Some(key), value);
    set_old(&mut o, None);
    ctx.forward(o);
}

fn subscription_key(fk: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut k = prefix(fk);
    k.extend_from_slice(pk);
    k
}

fn prefix(fk: &[u8]) -> Vec<u8> {
    let mut k = (fk.len() as u32).to_be_bytes().to_vec();
    k.extend_from_slice(fk);
    k
}

/// What the subscription store keeps per subscriber: its hash and partition.
fn subscriber(hash: &ValueHash, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(21);
    put_hash(&mut out, hash);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

impl<K: 'static, V: 'static> KTable<K, V> {
    /// Joins each row with the row of `other` whose key `extract(value)` gives (inner join);
    /// the result is keyed by this table's key. The tables need not be co-partitioned (see the
    /// module doc).
    pub fn join_fk<KO: DslType, VO: 'static, VR: DslType>(
        &self,
        other: &KTable<KO, VO>,
        extract: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let b = &self.b;
        let register = b.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION");
        let subscription_topic = format!("{register}-topic");
        let register_sink = b.new_name("KTABLE-SINK");
        let register_source = b.new_name("KTABLE-SOURCE");
        let subs = b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE",
        );
        let subscribe = b.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR");
        let right_update = b.new_name("KTABLE-FK-JOIN-FOREIGN-TABLE-PROCESSOR");
        let response_topic = format!(
            "{}-topic",
            b.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE")
        );
        let response_sink = b.new_name("KTABLE-SINK");
        let response_source = b.new_name("KTABLE-SOURCE");
        let resolve = b.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR");
        let spec = b.store_spec(
            &Materialized::with_kind(StoreKind::InMemory),
            "KTABLE-FK-JOIN-OUTPUT-STATE-STORE",
        );
        let merge = b.new_name("KTABLE-MERGE");
        let store = spec.name.clone();

        // Left task: a changed row (re)subscribes to its foreign key.
        let (values, fkc, ex) = (self.values.clone(), KO::codec(), Arc::new(extract));
        let register_side = ops::supplier(move |ctx, r| {
            let Some(pk) = r.key.clone() else {
                return Ok(());
            };
            let fk_of = |ctx: &ProcessorContext<'_>, bytes: Option<&[u8]>, what: &str| match bytes {
                Some(b) => {
                    let v = decode(ctx, &values, Some(b), what)?;
                    encode(ctx, &fkc, &ex(&v), "foreign key")
                }
                None => Ok(None),
            };
            let old = old_of(&r);
            let new_fk = fk_of(&*ctx, r.value.as_deref(), "value")?;
            let old_fk = fk_of(&*ctx, old.as_deref(), "old value")?;
            let partition = ctx.partition().unwrap_or(-1);
            let hash = hash_of(r.value.as_deref());
            let send = |ctx: &mut ProcessorContext<'_>, fk: &[u8], instruction| {
                let s = Subscription {
                    instruction,
                    hash,
                    partition,
                    left_key: pk.clone(),
                };
                forward(ctx, &r, fk.to_vec(), Some(s.encode()));
            };
            match (&new_fk, &old_fk) {
                (None, Some(ofk)) => send(ctx, ofk, Instruction::DeleteAndPropagate),
                (None, None) => {}
                (Some(nfk), _) => {
                    if let Some(ofk) = old_fk.as_ref().filter(|o| *o != nfk) {
                        send(ctx, ofk, Instruction::DeleteNoPropagate);
                    }
                    let instruction = if old.is_some() {
                        Instruction::PropagateNullIfNoFkValue
                    } else {
                        Instruction::PropagateOnlyIfFkValue
                    };
                    send(ctx, nfk, instruction);
                }
            }
            Ok(())
        });

        // Right task: keep the subscription, answer it with the right row as it is.
        let (right_store, subs_store) = (other.store.clone(), subs.name.clone());
        let subscribe_side = ops::supplier(move |ctx, r| {
            let what = "foreign-key join subscription";
            let Some((fk, s)) = read_internal(ctx, &r, Subscription::decode, what)? else {
                return Ok(());
            };
            let key = subscription_key(&fk, &s.left_key);
            let store = ctx.store(&subs_store)?;
            let respond_with = match s.instruction {
                Instruction::DeleteNoPropagate => {
                    store.delete(&key)?;
                    return Ok(());
                }
                Instruction::DeleteAndPropagate => {
                    store.delete(&key)?;
                    None
                }
                Instruction::PropagateNullIfNoFkValue | Instruction::PropagateOnlyIfFkValue => {
                    store.put(&key, &subscriber(&s.hash, s.partition))?;
                    let right = ctx.store(&right_store)?.get(&fk)?;
                    if right.is_none() && s.instruction == Instruction::PropagateOnlyIfFkValue {
                        return Ok(());
                    }
                    right
                }
            };
            let response = Response {
                hash: s.hash,
                partition: s.partition,
                right: respond_with,
            };
            forward(ctx, &r, s.left_key, Some(response.encode()));
            Ok(())
        });

        // Right task: a right update answers every subscriber of its key.
        let subs_store = subs.name.clone();
        let right_side = ops::supplier(move |ctx, r| {
            let Some(fk) = r.key.clone() else {
                return Ok(());
            };
            // Nothing was there and nothing is: no result can change.
            if r.value.is_none() && old_of(&r).is_none() {
                return Ok(());
            }
            let p = prefix(&fk);
            let subscribers = ctx.store(&subs_store)?.range(Some(&p), None)?;
            for (key, stored) in subscribers
                .into_iter()
                .take_while(|(k, _)| k.starts_with(&p))
            {
                let (hash, partition, _) = take_hash_and_partition(&stored).ok_or_else(|| {
                    ops::undecodable(
                        ctx,
                        format_args!("could not read a foreign-key join subscription"),
                    )
                })?;
                let response = Response {
                    hash,
                    partition,
                    right: r.value.clone(),
                };
                forward(ctx, &r, key[p.len()..].to_vec(), Some(response.encode()));
            }
            Ok(())
        });

        // Left task: join an answer still about the row as it is now.
        let (values, right_values, out) = (self.values.clone(), other.values.clone(), VR::codec());
        let (left_store, jo) = (self.store.clone(), Arc::new(joiner));
        let resolve_side = ops::supplier(move |ctx, r| {
            let what = "foreign-key join response";
            let Some((pk, response)) = read_internal(ctx, &r, Response::decode, what)? else {
                return Ok(());
            };
            let left = ctx.store(&left_store)?.get(&pk)?;
            if hash_of(left.as_deref()) != response.hash {
                // The row changed since it subscribed; its newer subscription answers.
                return Ok(());
            }
            let value = match (&left, &response.right) {
                (Some(l), Some(rv)) => {
                    let l = decode(ctx, &values, Some(l), "left value")?;
                    let rv = decode(ctx, &right_values, Some(rv), "right value")?;
                    encode(ctx, &out, &jo(&l, &rv), "join result")?
                }
                _ => None,
            };
            forward(ctx, &r, pk, value);
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
        // Answers go back to the partition the subscription came from (the left row's task).
        let to_subscriber: Arc<dyn StreamPartitioner> =
            Arc::new(|_: &str, r: &Record, partitions: i32| {
                let p = r.value.as_deref().and_then(Response::partition_of)?;
                (0..partitions).contains(&p).then_some(p)
            });
        b.apply(|t| {
            t.add_repartition_topic(&subscription_topic);
            t.add_repartition_topic(&response_topic);
            t.add_processor(&register, register_side, &[&self.node])?
                .add_sink(&register_sink, &subscription_topic, &[&register])?
                .add_source(&register_source, &[&subscription_topic])?
                .add_processor(&subscribe, subscribe_side, &[&register_source])?
                .add_processor(&right_update, right_side, &[&other.node])?
                .add_state_store(subs, &[&subscribe, &right_update])?
                .connect_processor_and_state_store(&subscribe, &other.store)?
                .add_sink_with_partitioner(
                    &response_sink,
                    &response_topic,
                    Some(to_subscriber),
                    &[&subscribe, &right_update],
                )?
                .add_source(&response_source, &[&response_topic])?
                .add_processor(&resolve, resolve_side, &[&response_source])?
                .connect_processor_and_state_store(&resolve, &self.store)?
                .add_processor(&merge, keep, &[&resolve])?
                .add_state_store(spec, &[&merge])?;
            Ok(())
        });
        KTable::new(self.b.clone(), merge, store, self.keys.clone(), VR::codec())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn murmur3_matches_the_reference() {
        // Values from the reference implementation (Python's mmh3.hash_bytes, x64, seed 0).
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(murmur3_128(b"")), "00000000000000000000000000000000");
        assert_eq!(
            hex(murmur3_128(b"hello")),
            "029bbd41b3a7d8cb191dae486a901e5b"
        );
        assert_eq!(
            hex(murmur3_128(b"c1:10")),
            "678c7f5ad39b4d58dd9e620a43047b29"
        );
        assert_eq!(
            hex(murmur3_128(b"The quick brown fox jumps over the lazy dog")),
            "6c1b07bc7bbc4be347939ac4a93c437a"
        );
    }

    /// `orders` (values: the customer id) joined to `customers` by foreign key, into `out`.
    pub(crate) fn orders_join_customers() -> crate::Topology {
        use crate::dsl::{Materialized, StreamsBuilder};
        let b = StreamsBuilder::new();
        let orders =
            b.table::<String, String>("orders", Materialized::with_kind(StoreKind::InMemory));
        let customers =
            b.table::<String, String>("customers", Materialized::with_kind(StoreKind::InMemory));
        orders
            .join_fk(
                &customers,
                |o: &String| o.clone(),
                |o, c| format!("{o}/{c}"),
            )
            .to_stream()
            .to("out");
        b.build().unwrap()
    }

    #[test]
    fn garbage_on_the_internal_topics_is_a_deserialization_error() {
        let t = orders_join_customers();
        let internal = t.repartition_topics();
        assert_eq!(internal.len(), 2, "{internal:?}");
        let mut driver = crate::TopologyTestDriver::new(&t, 0).unwrap();
        for topic in &internal {
            let e = driver
                .pipe_input(topic, Some(b"k"), Some(b"\x07garbage"), 1)
                .unwrap_err();
            assert!(
                matches!(&e, Error::Deserialization { reason, .. } if reason.contains("foreign-key join")),
                "{topic}: {e}"
            );
            // A keyless record is skipped, as Kafka Streams skips them.
            driver.pipe_input(topic, None, Some(b"x"), 2).unwrap();
        }
    }

    #[test]
    fn subscriptions_and_responses_round_trip_and_reject_garbage() {
        let s = Subscription {
            instruction: Instruction::PropagateNullIfNoFkValue,
            hash: hash_of(Some(b"v")),
            partition: 3,
            left_key: b"o1".to_vec(),
        };
        assert_eq!(Subscription::decode(&s.encode()), Some(s));
        let s = Subscription {
            instruction: Instruction::DeleteAndPropagate,
            hash: None,
            partition: -1,
            left_key: Vec::new(),
        };
        assert_eq!(Subscription::decode(&s.encode()), Some(s));
        for r in [
            Response {
                hash: hash_of(Some(b"v")),
                partition: 7,
                right: Some(b"alice".to_vec()),
            },
            Response {
                hash: None,
                partition: 0,
                right: None,
            },
        ] {
            let bytes = r.encode();
            assert_eq!(Response::partition_of(&bytes), Some(r.partition));
            assert_eq!(Response::decode(&bytes), Some(r));
        }
        for garbage in [
            &b""[..],
            b"\x00",
            b"\x01\x00",
            b"\x00\x09\x00\x00\x00\x00\x01",
            b"\x00\x02\x01abc",
        ] {
            assert_eq!(Subscription::decode(garbage), None, "{garbage:?}");
            assert_eq!(Response::decode(garbage), None, "{garbage:?}");
        }
        // A response with trailing bytes after an absent value is malformed.
        let mut bytes = Response {
            hash: None,
            partition: 0,
            right: None,
        }
        .encode();
        bytes.push(9);
        assert_eq!(Response::decode(&bytes), None);
    }
}
