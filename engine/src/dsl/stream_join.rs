//! KStream–KStream windowed joins: [`KStream::join_stream`], [`KStream::left_join_stream`] and
//! [`KStream::outer_join_stream`] with [`JoinWindows`], as Kafka Streams 4.x runs them
//! (`KStreamKStreamJoin` with the spurious-result fix):
//! - each side's records go into that side's window store (duplicates kept, retention
//!   `before + after + grace`, so a late record still finds what the store still holds: no
//!   record is dropped for grace); a left record at `t` joins the right records in
//!   `[t - before, t + after]` and a right record at `t` the left ones in
//!   `[t - after, t + before]`, each result stamped with the later of the two timestamps;
//! - left (and, for outer joins, right) records that found no partner wait in a shared
//!   "outer" store keyed by `timestamp ++ side ++ key`; a later partner removes them. A record
//!   at the join's stream time (the highest timestamp either side has seen) first emits, in
//!   timestamp order, every waiting record whose window has closed (`t + after + grace` for
//!   left records, `t + before + grace` for right ones, below stream time) as `joiner(v, None)`
//!   (`joiner(None, v)`), stamped with its own timestamp. A record already past that point when
//!   it arrives is emitted at once. Inner joins have no outer store;
//! - records without a key or value are dropped and counted
//!   ([`StreamJoin::dropped_records`]), except that an outer side forwards a keyless record
//!   joined with nothing at once.
//!
//! Nodes and stores are named as Kafka Streams names them: `KSTREAM-WINDOWED-` ×2,
//! `KSTREAM-JOINTHIS-`/`KSTREAM-OUTERTHIS-`, `KSTREAM-JOINOTHER-`/`KSTREAM-OUTEROTHER-`,
//! `KSTREAM-MERGE-`; stores `<join node>-store` and `KSTREAM-OUTERSHARED-<n>-store` (with a
//! [`Materialized`] name: `<name>-this-join-store`, `<name>-other-join-store`,
//! `<name>-left-shared-join-store` / `-outer-shared-join-store`).
//!
//! Kafka Streams throttles the emission of waiting records to once a second of wall-clock time
//! (an internal setting its `TopologyTestDriver` sets to 0); ks checks on every record at stream
//! time, which is what the driver shows and what the goldens pin down.
//!
//! ```
//! use ks_engine::dsl::{JoinWindows, Materialized, StreamsBuilder};
//! use ks_engine::stores::StoreKind;
//! use ks_engine::TopologyTestDriver;
//! use std::time::Duration;
//!
//! let builder = StreamsBuilder::new();
//! let clicks = builder.stream::<String, String>("clicks");
//! let views = builder.stream::<String, String>("views");
//! let windows =
//!     JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(1));
//! clicks
//!     .left_join_stream(
//!         &views,
//!         |c, v| format!("{c}+{}", v.map_or("none", String::as_str)),
//!         windows,
//!         Materialized::with_kind(StoreKind::InMemory),
//!     )
//!     .to("out");
//! let mut driver = TopologyTestDriver::new(&builder.build()?, 0)?;
//! driver.pipe_input("clicks", Some(b"u"), Some(b"c1"), 1_000)?;
//! driver.pipe_input("views", Some(b"u"), Some(b"v1"), 3_000)?;
//! driver.pipe_input("clicks", Some(b"w"), Some(b"c2"), 4_000)?;
//! // w's click waits for its window to close (4000 + 5000 + 1000 < stream time).
//! driver.pipe_input("views", Some(b"x"), Some(b"v2"), 10_001)?;
//! let values: Vec<_> = driver
//!     .read_all_output("out")
//!     .into_iter()
//!     .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
//!     .collect();
//! assert_eq!(values, ["c1+v1", "c2+none"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::derive;
use super::ops::{self, decode, encode};
use super::serdes::{Codec, DslType, Materialized};
use super::stream::KStream;
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::Record;
use crate::{Error, Result};
use ks_stores::{KeyValueStore, ReadOnlyWindowStore, StoreSpec, WindowStore, WindowStoreConfig};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How far apart in time two records may be to join: a right record joins a left record at `t`
/// when its timestamp is in `[t - before, t + after]`; records are kept `grace` longer for
/// left/outer joins to wait for partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl JoinWindows {
    /// Records at most `difference` apart (either way) join; grace `grace`.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let d = millis(difference);
        JoinWindows {
            before_ms: d,
            after_ms: d,
            grace_ms: millis(grace),
        }
    }

    /// How far a right record may be *before* the left one.
    pub fn before(mut self, before: Duration) -> Self {
        self.before_ms = millis(before);
        self
    }

    /// How far a right record may be *after* the left one.
    pub fn after(mut self, after: Duration) -> Self {
        self.after_ms = millis(after);
        self
    }

    /// `before + after`.
    pub fn size_ms(&self) -> i64 {
        self.before_ms.saturating_add(self.after_ms)
    }

    fn retention_ms(&self) -> i64 {
        self.size_ms().saturating_add(self.grace_ms)
    }

    fn validate(&self) -> Result<()> {
        if self.before_ms < 0 || self.after_ms < 0 || self.grace_ms < 0 {
            return Err(Error::InvalidTopology(format!(
                "join windows need before ({} ms), after ({} ms) and grace ({} ms) >= 0",
                self.before_ms, self.after_ms, self.grace_ms
            )));
        }
        Ok(())
    }
}

/// The kind of a stream–stream join: which sides are emitted without a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    Left,
    Outer,
}

// The joiner over both sides, either possibly missing; `None` when the join kind's user
// joiner takes no such pair (never asked for: a join emits unpaired records only of the sides
// its kind names).
type Joiner<V, VO, VR> = Arc<dyn Fn(Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync>;

/// A joined stream and the join's dropped-record count.
pub struct StreamJoin<K, VR> {
    stream: KStream<K, VR>,
    dropped: Arc<AtomicU64>,
}

impl<K: 'static, VR: 'static> StreamJoin<K, VR> {
    /// Records without key or value dropped by either side of the join.
    pub fn dropped_records(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// The joined stream.
    pub fn stream(&self) -> KStream<K, VR> {
        self.stream.clone()
    }
}

impl<K, VR> std::ops::Deref for StreamJoin<K, VR> {
    type Target = KStream<K, VR>;

    fn deref(&self) -> &KStream<K, VR> {
        &self.stream
    }
}

impl<K: 'static, V: 'static> KStream<K, V> {
    /// Joins every record with the `other` stream's records of the same key within `windows`
    /// (Kafka Streams' `join(KStream, ValueJoiner, JoinWindows, StreamJoined)`). The window
    /// stores are of `materialized`'s kind (its name, if any, is the stores' base name).
    pub fn join_stream<VO: 'static, VR: DslType>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        materialized: Materialized,
    ) -> StreamJoin<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |l, r| match (l, r) {
            (Some(l), Some(r)) => Some(joiner(l, r)),
            _ => None,
        });
        self.stream_join(other, joiner, windows, materialized, Kind::Inner)
    }

    /// Like [`join_stream`](Self::join_stream), and a left record that found no partner by the
    /// time its window closed is emitted once as `joiner(v, None)`.
    pub fn left_join_stream<VO: 'static, VR: DslType>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        materialized: Materialized,
    ) -> StreamJoin<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |l, r| l.map(|l| joiner(l, r)));
        self.stream_join(other, joiner, windows, materialized, Kind::Left)
    }

    /// Like [`left_join_stream`](Self::left_join_stream) for both sides: a record of either
    /// side without a partner is emitted once as `joiner(Some(v), None)` or
    /// `joiner(None, Some(v))`.
    pub fn outer_join_stream<VO: 'static, VR: DslType>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        materialized: Materialized,
    ) -> StreamJoin<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |l, r| Some(joiner(l, r)));
        self.stream_join(other, joiner, windows, materialized, Kind::Outer)
    }

    fn stream_join<VO: 'static, VR: DslType>(
        &self,
        other: &KStream<K, VO>,
        joiner: Joiner<V, VO, VR>,
        windows: JoinWindows,
        materialized: Materialized,
        kind: Kind,
    ) -> StreamJoin<K, VR> {
        let b = &self.b;
        // Kafka Streams repartitions each side under its own node's name.
        let left = self.repartitioned(&self.node);
        let right = other.repartitioned(&other.node);
        let this_windowed = b.new_name("KSTREAM-WINDOWED");
        let other_windowed = b.new_name("KSTREAM-WINDOWED");
        let (this_prefix, this_suffix) = match kind {
            Kind::Outer => ("KSTREAM-OUTERTHIS", "-outer-this-join"),
            _ => ("KSTREAM-JOINTHIS", "-this-join"),
        };
        let (other_prefix, other_suffix) = match kind {
            Kind::Inner => ("KSTREAM-JOINOTHER", "-other-join"),
            _ => ("KSTREAM-OUTEROTHER", "-outer-other-join"),
        };
        let join_this = b.new_name(this_prefix);
        let join_other = b.new_name(other_prefix);
        let merge = b.new_name("KSTREAM-MERGE");
        let base = materialized.name.clone();
        let store_name = |generated: &str, suffix: &str| match &base {
            Some(n) => format!("{n}{suffix}-store"),
            None => format!("{generated}-store"),
        };
        let this_store = store_name(&join_this, this_suffix);
        let other_store = store_name(&join_other, other_suffix);
        let outer_store = (kind != Kind::Inner).then(|| {
            let suffix = if kind == Kind::Outer {
                "-outer-shared-join"
            } else {
                "-left-shared-join"
            };
            let number = join_this.rsplit('-').next().unwrap_or_default();
            store_name(&format!("KSTREAM-OUTERSHARED-{number}"), suffix)
        });
        let dropped = Arc::new(AtomicU64::new(0));
        let out_values = VR::codec();
        let shared = Arc::new(JoinShared {
            windows,
            this_store: this_store.clone(),
            other_store: other_store.clone(),
            outer_store: outer_store.clone(),
            left_values: self.values.clone(),
            right_values: other.values.clone(),
            out_values: out_values.clone(),
            joiner,
            dropped: dropped.clone(),
            window_stores: PerStore::default(),
            trackers: PerStore::default(),
        });
        let windowed = |store: &str| -> ProcessorSupplier {
            let (shared, store) = (shared.clone(), store.to_string());
            Arc::new(move || {
                Box::new(JoinWindow {
                    shared: shared.clone(),
                    store_name: store.clone(),
                    store: None,
                }) as Box<dyn Processor>
            })
        };
        let side = |side: Side, outer: bool| -> ProcessorSupplier {
            let shared = shared.clone();
            Arc::new(move || {
                Box::new(JoinSide {
                    shared: shared.clone(),
                    side,
                    outer,
                    state: None,
                }) as Box<dyn Processor>
            })
        };
        let spec = |name: &str| {
            StoreSpec::new(name.to_string(), materialized.kind).with_logging(materialized.logging)
        };
        let this_supplier = windowed(&this_store);
        let other_supplier = windowed(&other_store);
        let this_join = side(Side::Left, kind != Kind::Inner);
        let other_join = side(Side::Right, kind == Kind::Outer);
        b.apply(|t| {
            windows.validate()?;
            t.add_processor(&this_windowed, this_supplier, &[&left.node])?
                .add_processor(&other_windowed, other_supplier, &[&right.node])?
                .add_processor(&join_this, this_join, &[&this_windowed])?
                .add_processor(&join_other, other_join, &[&other_windowed])?
                .add_processor(&merge, ops::pass_through(), &[&join_this, &join_other])?
                .add_state_store(spec(&this_store), &[&this_windowed, &join_other])?
                .add_state_store(spec(&other_store), &[&other_windowed, &join_this])?;
            if let Some(outer) = &outer_store {
                t.add_state_store(spec(outer), &[&join_this, &join_other])?;
            }
            Ok(())
        });
        StreamJoin {
            stream: KStream::new(b.clone(), merge, self.keys.clone(), out_values, false),
            dropped,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

impl Side {
    fn flag(self) -> u8 {
        match self {
            Side::Left => 1,
            Side::Right => 0,
        }
    }
}

/// Values kept per store instance, so that the processors of one task share them (the window
/// stores' retention clocks; the join's stream time) while other tasks and later incarnations
/// of the task (new store instances) get their own.
struct PerStore<T>(Mutex<Vec<StoreEntry<T>>>);

// A store instance (alive while its task is) and what its processors share.
type StoreEntry<T> = (Weak<dyn KeyValueStore>, Arc<T>);

impl<T> Default for PerStore<T> {
    fn default() -> Self {
        PerStore(Mutex::new(Vec::new()))
    }
}

impl<T> PerStore<T> {
    fn get(
        &self,
        store: &Arc<dyn KeyValueStore>,
        make: impl FnOnce() -> Result<T>,
    ) -> Result<Arc<T>> {
        let mut entries = self
            .0
            .lock()
            .map_err(|_| Error::processing(store.name(), "stream join state lock poisoned"))?;
        entries.retain(|(w, _)| w.strong_count() > 0);
        let found = entries
            .iter()
            .find(|(w, _)| std::ptr::addr_eq(w.as_ptr(), Arc::as_ptr(store)));
        if let Some((_, t)) = found {
            return Ok(t.clone());
        }
        let t = Arc::new(make()?);
        entries.push((Arc::downgrade(store), t.clone()));
        Ok(t)
    }
}

/// Kafka Streams' shared `TimeTracker`: the highest timestamp either side has seen, and a
/// lower bound of the outer store's timestamps (to skip scans that cannot emit anything).
struct Tracker {
    stream_time: i64,
    min_time: i64,
}

struct JoinShared<V, VO, VR> {
    windows: JoinWindows,
    this_store: String,
    other_store: String,
    outer_store: Option<String>,
    left_values: Codec<V>,
    right_values: Codec<VO>,
    out_values: Codec<VR>,
    joiner: Joiner<V, VO, VR>,
    dropped: Arc<AtomicU64>,
    window_stores: PerStore<WindowStore>,
    trackers: PerStore<Mutex<Tracker>>,
}

impl<V, VO, VR> JoinShared<V, VO, VR> {
    fn window_store(&self, kv: &Arc<dyn KeyValueStore>) -> Result<Arc<WindowStore>> {
        self.window_stores.get(kv, || {
            let config = WindowStoreConfig::new(self.windows.retention_ms(), true);
            Ok(WindowStore::new(kv.clone(), kv.clone(), config)?)
        })
    }
}

/// `KSTREAM-WINDOWED`: passes every record on and keeps the keyed ones in its side's window
/// store.
struct JoinWindow<V, VO, VR> {
    shared: Arc<JoinShared<V, VO, VR>>,
    store_name: String,
    store: Option<Arc<WindowStore>>,
}

impl<V: 'static, VO: 'static, VR: 'static> Processor for JoinWindow<V, VO, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        if let (Some(key), Some(value)) = (r.key.as_deref(), r.value.as_deref()) {
            if self.store.is_none() {
                self.store = Some(self.shared.window_store(&ctx.store(&self.store_name)?)?);
            }
            if let Some(store) = &self.store {
                // A record past the store's retention is not kept (nothing could join it).
                store.put(key, r.timestamp, Some(value))?;
            }
        }
        ctx.forward(r);
        Ok(())
    }
}

struct SideState {
    other: Arc<WindowStore>,
    outer: Option<Arc<dyn KeyValueStore>>,
    tracker: Arc<Mutex<Tracker>>,
}

/// `KSTREAM-JOINTHIS` / `-JOINOTHER` (`-OUTERTHIS` / `-OUTEROTHER`): joins one side's records
/// with the other side's window store.
struct JoinSide<V, VO, VR> {
    shared: Arc<JoinShared<V, VO, VR>>,
    side: Side,
    // This side's records without a partner are emitted (left side of left/outer joins, both
    // sides of outer joins).
    outer: bool,
    state: Option<SideState>,
}

/// One entry of the outer store: `timestamp ++ side flag ++ key` → the waiting values, each
/// `u32 length ++ side flag ++ value bytes` (Kafka Streams' `LeftOrRightValue` list).
fn outer_key(ts: i64, side: Side, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len());
    out.extend_from_slice(&ts.to_be_bytes());
    out.push(side.flag());
    out.extend_from_slice(key);
    out
}

fn split_outer_key(bytes: &[u8]) -> Option<(i64, Side, &[u8])> {
    let (ts, rest) = bytes.split_at_checked(8)?;
    let (&flag, key) = rest.split_first()?;
    let side = if flag == 1 { Side::Left } else { Side::Right };
    Some((i64::from_be_bytes(ts.try_into().ok()?), side, key))
}

fn push_value(list: &mut Vec<u8>, side: Side, value: &[u8]) -> Result<()> {
    let len = u32::try_from(value.len() + 1)
        .map_err(|_| Error::processing("stream join", "a waiting value exceeds 4 GiB"))?;
    list.extend_from_slice(&len.to_be_bytes());
    list.push(side.flag());
    list.extend_from_slice(value);
    Ok(())
}

fn split_values(mut list: &[u8]) -> Option<Vec<(Side, &[u8])>> {
    let mut out = Vec::new();
    while !list.is_empty() {
        let (len, rest) = list.split_at_checked(4)?;
        let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
        let (item, rest) = rest.split_at_checked(len)?;
        let (&flag, value) = item.split_first()?;
        out.push((if flag == 1 { Side::Left } else { Side::Right }, value));
        list = rest;
    }
    Some(out)
}

impl<V: 'static, VO: 'static, VR: 'static> JoinSide<V, VO, VR> {
    fn state(&mut self, ctx: &ProcessorContext<'_>) -> Result<&SideState> {
        if self.state.is_none() {
            let sh = &self.shared;
            let other_name = match self.side {
                Side::Left => &sh.other_store,
                Side::Right => &sh.this_store,
            };
            let other = sh.window_store(&ctx.store(other_name)?)?;
            let (outer, tracker) = match &sh.outer_store {
                Some(name) => {
                    let kv = ctx.store(name)?;
                    let tracker = sh.trackers.get(&kv, || {
                        Ok(Mutex::new(Tracker {
                            stream_time: i64::MIN,
                            min_time: i64::MAX,
                        }))
                    })?;
                    (Some(kv), tracker)
                }
                // An inner join's stream time serves nothing but its own side.
                None => (
                    None,
                    Arc::new(Mutex::new(Tracker {
                        stream_time: i64::MIN,
                        min_time: i64::MAX,
                    })),
                ),
            };
            self.state = Some(SideState {
                other,
                outer,
                tracker,
            });
        }
        self.state
            .as_ref()
            .ok_or_else(|| Error::processing(ctx.processor_name(), "join state missing"))
    }

    fn emit_alone(&self, ctx: &mut ProcessorContext<'_>, r: &Record, value: &[u8]) -> Result<()> {
        if let Some(joined) = self.join(ctx, self.side, Some(value), None)? {
            ctx.forward(r.with_value(joined));
        }
        Ok(())
    }

    /// `(before, after)` as this side sees the window.
    fn bounds(&self) -> (i64, i64) {
        let w = self.shared.windows;
        match self.side {
            Side::Left => (w.before_ms, w.after_ms),
            Side::Right => (w.after_ms, w.before_ms),
        }
    }

    /// The joiner on this side's value and the other side's (either may be missing).
    fn join(
        &self,
        ctx: &ProcessorContext<'_>,
        side: Side,
        this: Option<&[u8]>,
        other: Option<&[u8]>,
    ) -> Result<Option<Option<Vec<u8>>>> {
        let sh = &self.shared;
        let (left, right) = match side {
            Side::Left => (this, other),
            Side::Right => (other, this),
        };
        let left = match left {
            Some(b) => Some(decode(ctx, &sh.left_values, Some(b), "left value")?),
            None => None,
        };
        let right = match right {
            Some(b) => Some(decode(ctx, &sh.right_values, Some(b), "right value")?),
            None => None,
        };
        match (sh.joiner)(left.as_ref(), right.as_ref()) {
            Some(joined) => encode(ctx, &sh.out_values, &joined, "joined value").map(Some),
            None => Ok(None),
        }
    }

    fn tracker<'t>(&self, t: &'t Mutex<Tracker>) -> Result<std::sync::MutexGuard<'t, Tracker>> {
        t.lock()
            .map_err(|_| Error::processing("stream join", "join time tracker lock poisoned"))
    }

    /// Emits (and removes) the waiting records whose windows have closed, in the outer store's
    /// order: timestamp, then left before right... as `<ts><side flag><key>` sorts (right = 0
    /// first at equal timestamps).
    fn emit_non_joined(
        &self,
        ctx: &mut ProcessorContext<'_>,
        r: &Record,
        outer: &Arc<dyn KeyValueStore>,
        tracker: &Mutex<Tracker>,
    ) -> Result<()> {
        let w = self.shared.windows;
        let (_, after) = self.bounds();
        let mut t = self.tracker(tracker)?;
        // Kafka Streams' arithmetic, wrapping included: with min time at Long.MAX_VALUE (nothing
        // waiting since the last scan, or a fresh task over a restored store) the sum wraps
        // below stream time and the store is scanned.
        if t.min_time.wrapping_add(after).wrapping_add(w.grace_ms) >= t.stream_time {
            return Ok(());
        }
        t.min_time = i64::MAX;
        let mut entries = Vec::new();
        outer.scan(None, None, &mut |k, v| {
            entries.push((k.to_vec(), v.to_vec()));
            ControlFlow::Continue(())
        })?;
        let (mut left_open, mut right_open) = (false, false);
        for (k, list) in entries {
            let Some((ts, side, key)) = split_outer_key(&k) else {
                return Err(Error::processing(
                    ctx.processor_name(),
                    format!("outer join store key of {} bytes", k.len()),
                ));
            };
            t.min_time = ts;
            if left_open && right_open {
                break;
            }
            let lookback = match side {
                Side::Left => w.after_ms,
                Side::Right => w.before_ms,
            };
            if ts.saturating_add(lookback).saturating_add(w.grace_ms) >= t.stream_time {
                match side {
                    Side::Left => left_open = true,
                    Side::Right => right_open = true,
                }
                continue;
            }
            let values = split_values(&list).ok_or_else(|| {
                Error::processing(
                    ctx.processor_name(),
                    "outer join store value is not a list of waiting values",
                )
            })?;
            for (vside, value) in values {
                if let Some(joined) = self.join(ctx, vside, Some(value), None)? {
                    let mut out = derive(r, Some(key.to_vec()), joined);
                    out.timestamp = ts;
                    ctx.forward(out);
                }
            }
            outer.delete(&k)?;
        }
        Ok(())
    }
}

impl<V: 'static, VO: 'static, VR: 'static> Processor for JoinSide<V, VO, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let ts = r.timestamp;
        let (other, outer, tracker) = {
            let st = self.state(ctx)?;
            (st.other.clone(), st.outer.clone(), st.tracker.clone())
        };
        {
            let mut t = self.tracker(&tracker)?;
            t.stream_time = t.stream_time.max(ts);
        }
        let Some(value) = r.value.as_deref() else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let Some(key) = r.key.as_deref() else {
            if self.outer {
                // Nothing can join a keyless record: an outer side emits it at once.
                if let Some(joined) = self.join(ctx, self.side, Some(value), None)? {
                    ctx.forward(r.with_value(joined));
                }
            } else {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        };
        let at_stream_time = ts == self.tracker(&tracker)?.stream_time;
        if at_stream_time {
            if let Some(outer) = &outer {
                self.emit_non_joined(ctx, &r, outer, &tracker)?;
            }
        }
        let (before, after) = self.bounds();
        let from = ts.saturating_sub(before).max(0);
        let to = ts.saturating_add(after).max(0);
        let partners = other.fetch_range(key, from, to)?;
        let other_side = match self.side {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        };
        for (ots, ov) in &partners {
            if let Some(outer) = &outer {
                // The partner no longer waits to be emitted alone.
                let waiting = outer_key(*ots, other_side, key);
                if outer.get(&waiting)?.is_some() {
                    outer.delete(&waiting)?;
                }
            }
            if let Some(joined) = self.join(ctx, self.side, Some(value), Some(ov))? {
                let mut out = r.with_value(joined);
                out.timestamp = ts.max(*ots);
                ctx.forward(out);
            }
        }
        if self.outer && partners.is_empty() {
            let stream_time = self.tracker(&tracker)?.stream_time;
            match &outer {
                // Its window has closed already (or there is no store to wait in).
                Some(_) if to < stream_time => self.emit_alone(ctx, &r, value)?,
                None => self.emit_alone(ctx, &r, value)?,
                Some(outer) => {
                    {
                        let mut t = self.tracker(&tracker)?;
                        t.min_time = t.min_time.min(ts);
                    }
                    let k = outer_key(ts, self.side, key);
                    let mut list = outer.get(&k)?.unwrap_or_default();
                    push_value(&mut list, self.side, value)?;
                    outer.put(&k, &list)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_store_layout_round_trips() {
        let k = outer_key(4_000, Side::Right, b"b");
        assert_eq!(split_outer_key(&k), Some((4_000, Side::Right, &b"b"[..])));
        // At equal timestamps right entries (flag 0) sort before left ones.
        assert!(outer_key(4_000, Side::Right, b"z") < outer_key(4_000, Side::Left, b"a"));
        let mut list = Vec::new();
        push_value(&mut list, Side::Left, b"L1").unwrap();
        push_value(&mut list, Side::Left, b"").unwrap();
        assert_eq!(
            split_values(&list).unwrap(),
            vec![(Side::Left, &b"L1"[..]), (Side::Left, &b""[..])]
        );
        assert_eq!(split_values(&list[..3]), None);
    }

    #[test]
    fn join_windows_bounds() {
        let w = JoinWindows::of_time_difference_and_grace(
            Duration::from_secs(5),
            Duration::from_secs(2),
        )
        .before(Duration::from_secs(1));
        assert_eq!((w.before_ms, w.after_ms, w.grace_ms), (1_000, 5_000, 2_000));
        assert_eq!(w.size_ms(), 6_000);
        assert_eq!(w.retention_ms(), 8_000);
        assert!(w.validate().is_ok());
    }
}
