//! Time-windowed aggregation: `group_by_key().windowed_by(TimeWindows)` → count / reduce /
//! aggregate into a [`KTable`] keyed by [`Windowed`] keys, with Kafka Streams'
//! `KStreamWindowAggregate` semantics:
//! - a record belongs to every window `[start, start + size)` with `start` a multiple of the
//!   advance and `start <= ts` (one for tumbling windows, `size / advance` for hopping ones);
//! - the processor's observed stream time (the highest timestamp it saw) closes a window once
//!   `stream time - grace >= end`; a record for a closed window is dropped and counted
//!   ([`TimeWindowedKStream::dropped_records`]);
//! - each update is forwarded with the highest timestamp the window has seen (through the
//!   task's record cache, [`crate::cache`]: with one, at commit or eviction, the latest per
//!   window);
//! - the store is a [`ks_stores::WindowStore`] (retention = size + grace), its values the
//!   aggregate's timestamp (8 bytes) then the aggregate bytes.
//!
//! `suppress_until_window_closes` emits one final result per window once it closes.
//!
//! Windowed keys serialize as Kafka Streams' `TimeWindowedSerializer`: key bytes ++ 8-byte
//! big-endian window start ([`TimeWindowedSerde`]).
//!
//! ```
//! use ks_engine::dsl::{Materialized, StreamsBuilder, TimeWindows};
//! use ks_engine::stores::StoreKind;
//! use std::time::Duration;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("in")
//!     .group_by_key()
//!     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(5)))
//!     .count(Materialized::as_("counts", StoreKind::InMemory))
//!     .to_stream()
//!     .map(|w, n| (format!("{}@{}/{}", w.key, w.start, w.end), n.unwrap_or(0).to_string()))
//!     .to("out");
//! let topology = builder.build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::ops::{decode, encode};
use super::serdes::{Codec, DslType, Materialized};
use super::table::{KGroupedStream, KTable};
use super::table_ops::set_old;
use super::Step;
use super::{derive, Shared};
use crate::cache::{CachedEntry, RecordCache};
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::Record;
use crate::{Error, Result};
use ks_stores::{ReadOnlyWindowStore, Serde, StoreKind, StoreSpec, WindowStore, WindowStoreConfig};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A key and the window it was aggregated in, `[start, end)` in ms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Windowed<K> {
    pub key: K,
    pub start: i64,
    pub end: i64,
}

/// Tumbling (advance = size) or hopping (advance < size) time windows, with a grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl TimeWindows {
    /// Tumbling windows of `size` accepting records up to `grace` after a window's end.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        TimeWindows {
            size_ms: millis(size),
            advance_ms: millis(size),
            grace_ms: millis(grace),
        }
    }

    /// Hopping windows: a new window every `advance` (at most the size).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance_ms = millis(advance);
        self
    }

    fn validate(&self) -> Result<()> {
        if self.size_ms <= 0
            || self.advance_ms <= 0
            || self.advance_ms > self.size_ms
            || self.grace_ms < 0
        {
            return Err(Error::InvalidTopology(format!(
                "time windows need 0 < advance ({} ms) <= size ({} ms) and grace ({} ms) >= 0",
                self.advance_ms, self.size_ms, self.grace_ms
            )));
        }
        Ok(())
    }

    /// The starts of the windows holding `ts`, ascending (Kafka Streams' `windowsFor`).
    pub fn window_starts(&self, ts: i64) -> Vec<i64> {
        let mut start = (ts
            .saturating_sub(self.size_ms)
            .saturating_add(self.advance_ms))
        .max(0)
            / self.advance_ms
            * self.advance_ms;
        let mut out = Vec::new();
        while start <= ts {
            out.push(start);
            start += self.advance_ms;
        }
        out
    }
}

/// Windows whose results `suppress_until_window_closes` can hold back: how long after its end
/// a window still takes records ([`TimeWindows`] and [`super::SlidingWindows`]: the grace;
/// [`super::SessionWindows`]: gap + grace).
pub trait ClosingWindows {
    fn close_after_end_ms(&self) -> i64;
}

impl ClosingWindows for TimeWindows {
    fn close_after_end_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// Kafka Streams' `TimeWindowedSerde`: key bytes ++ 8-byte big-endian start; the end is
/// start + window size on the way back.
pub struct TimeWindowedSerde<K> {
    keys: Codec<K>,
    size_ms: i64,
}

impl<K> TimeWindowedSerde<K> {
    pub fn new(keys: Codec<K>, size_ms: i64) -> Self {
        TimeWindowedSerde { keys, size_ms }
    }
}

impl<K: 'static> Serde for TimeWindowedSerde<K> {
    type Item = Windowed<K>;

    fn encode(&self, item: &Windowed<K>) -> ks_stores::Result<Vec<u8>> {
        let mut out = self
            .keys
            .encode(&item.key)?
            .ok_or(ks_stores::Error::Encode {
                what: "windowed key",
                reason: "the key encoded to nothing".into(),
            })?;
        out.extend_from_slice(&item.start.to_be_bytes());
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> ks_stores::Result<Windowed<K>> {
        let split = bytes.len().checked_sub(8).ok_or(ks_stores::Error::Decode {
            what: "windowed key",
            reason: format!("{} bytes, fewer than the 8 of a window start", bytes.len()),
        })?;
        let (key, start) = bytes.split_at(split);
        let mut b = [0u8; 8];
        b.copy_from_slice(start);
        let start = i64::from_be_bytes(b);
        Ok(Windowed {
            key: self.keys.decode(Some(key))?,
            start,
            end: start.saturating_add(self.size_ms),
        })
    }
}

impl<K: 'static, V: 'static> KGroupedStream<K, V> {
    /// Aggregates per key and time window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            grouped: KGroupedStream::new(self.stream.clone()),
            windows,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// A grouped stream cut into time windows, to be aggregated into a windowed [`KTable`].
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
    dropped: Arc<AtomicU64>,
}

impl<K: 'static, V: 'static> TimeWindowedKStream<K, V> {
    /// Records dropped because their windows had closed (Kafka Streams'
    /// `dropped-records-total`), over every task of this topology in this process.
    pub fn dropped_records(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// The number of records per key and window.
    pub fn count(&self, materialized: Materialized) -> KTable<Windowed<K>, i64> {
        let step: Step<K, V, i64> = Arc::new(|_, _, n| n.unwrap_or(0) + 1);
        self.aggregate_node("KSTREAM-AGGREGATE", materialized, i64::codec(), step)
    }

    /// Combines the values per key and window, the first value as it is.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, V> {
        let step: Step<K, V, V> = Arc::new(move |_, v, agg| match agg {
            Some(agg) => reducer(agg, v),
            None => v,
        });
        let values = self.grouped.stream.values.clone();
        self.aggregate_node("KSTREAM-REDUCE", materialized, values, step)
    }

    /// Folds the values per key and window into an aggregate starting at `init()`.
    pub fn aggregate<VA: DslType>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, VA> {
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
    ) -> KTable<Windowed<K>, VA> {
        let s = &self.grouped.stream;
        let b: &Shared = &s.b;
        let spec = b.store_spec(&materialized, &format!("{prefix}-STATE-STORE"));
        let name = b.new_name(prefix);
        let store = spec.name.clone();
        let input = s.repartitioned(&store);
        let windows = self.windows;
        let shared = Arc::new(WindowAggregateShared {
            store: store.clone(),
            keys: s.keys.clone(),
            values: s.values.clone(),
            aggregates: aggregates.clone(),
            windowed_keys: Codec::required(TimeWindowedSerde::new(s.keys.clone(), windows.size_ms)),
            step,
            windows,
            dropped: self.dropped.clone(),
        });
        let supplier: ProcessorSupplier = Arc::new(move || {
            Box::new(WindowAggregate {
                shared: shared.clone(),
                observed: i64::MIN,
                store: None,
                cache: None,
            }) as Box<dyn Processor>
        });
        b.apply(|t| {
            windows.validate()?;
            t.add_processor(&name, supplier, &[&input.node])?
                .add_state_store(spec, &[&name])
                .map(drop)
        });
        let keys = Codec::required(TimeWindowedSerde::new(s.keys.clone(), windows.size_ms));
        KTable::new(b.clone(), name, store, keys, aggregates)
    }
}

// What every task's processor of one windowed aggregation shares.
struct WindowAggregateShared<K, V, VA> {
    store: String,
    keys: Codec<K>,
    values: Codec<V>,
    aggregates: Codec<VA>,
    windowed_keys: Codec<Windowed<K>>,
    step: Step<K, V, VA>,
    windows: TimeWindows,
    dropped: Arc<AtomicU64>,
}

struct WindowAggregate<K, V, VA> {
    shared: Arc<WindowAggregateShared<K, V, VA>>,
    // The highest timestamp this task's processor has seen: it closes windows.
    observed: i64,
    store: Option<WindowStore>,
    // Dirty windows by `key ++ window start (8 bytes, big-endian)`, values as stored.
    cache: Option<RecordCache>,
}

impl<K: 'static, V: 'static, VA: 'static> WindowAggregate<K, V, VA> {
    fn store(&mut self, ctx: &ProcessorContext<'_>) -> Result<&WindowStore> {
        if self.store.is_none() {
            let sh = &self.shared;
            let kv = ctx.store(&sh.store)?;
            let config = WindowStoreConfig::new(
                sh.windows.size_ms.saturating_add(sh.windows.grace_ms),
                false,
            );
            self.store = Some(WindowStore::new(kv.clone(), kv, config)?);
        }
        self.store
            .as_ref()
            .ok_or_else(|| Error::UnknownStore(self.shared.store.clone()))
    }

    /// Writes dirty windows to the store and forwards them: the aggregate's timestamp as the
    /// record's, the store's previous aggregate as the old value.
    fn emit(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        entries: Vec<(Vec<u8>, CachedEntry)>,
        cached: bool,
    ) -> Result<()> {
        let sh = self.shared.clone();
        for (ckey, e) in entries {
            let Some(split) = ckey.len().checked_sub(8) else {
                continue;
            };
            let (key, start) = ckey.split_at(split);
            let mut sb = [0u8; 8];
            sb.copy_from_slice(start);
            let start = i64::from_be_bytes(sb);
            self.store(ctx)?.put(key, start, e.value.as_deref())?;
            if cached && e.value.is_none() && e.old.is_none() {
                continue;
            }
            let wkey = Windowed {
                key: decode(ctx, &sh.keys, Some(key), "key")?,
                start,
                end: start.saturating_add(sh.windows.size_ms),
            };
            let aggregate =
                |stored: Option<Vec<u8>>| stored.filter(|b| b.len() >= 8).map(|b| b[8..].to_vec());
            let template = Record {
                key: None,
                value: None,
                timestamp: e.timestamp,
                headers: e.headers,
            };
            let mut out = derive(
                &template,
                encode(ctx, &sh.windowed_keys, &wkey, "windowed key")?,
                aggregate(e.value),
            );
            set_old(&mut out, aggregate(e.old));
            ctx.forward(out);
        }
        Ok(())
    }

    fn flush_cache(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        let Some(cache) = self.cache.as_mut() else {
            return Ok(());
        };
        if cache.is_empty() {
            return Ok(());
        }
        let out = cache.drain();
        self.emit(ctx, out, true)
    }
}

impl<K: 'static, V: 'static, VA: 'static> Processor for WindowAggregate<K, V, VA> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let sh = self.shared.clone();
        // Kafka Streams skips these: no key has no group, no value has nothing to add.
        let (Some(key), Some(_)) = (r.key.as_deref(), r.value.as_deref()) else {
            return Ok(());
        };
        let k = decode(ctx, &sh.keys, Some(key), "key")?;
        let ts = r.timestamp;
        self.observed = self.observed.max(ts);
        let close = self.observed.saturating_sub(sh.windows.grace_ms);
        for start in sh.windows.window_starts(ts) {
            let end = start.saturating_add(sh.windows.size_ms);
            if end <= close {
                sh.dropped.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "{}: record at {ts} dropped, window [{start},{end}) closed at stream time {}",
                    ctx.processor_name(),
                    self.observed
                );
                continue;
            }
            let mut ckey = key.to_vec();
            ckey.extend_from_slice(&start.to_be_bytes());
            let cache = self.cache.get_or_insert_with(|| ctx.record_cache());
            let prior = match cache.get(&ckey) {
                Some(e) => e.value.clone(),
                None => self.store(ctx)?.fetch(key, start)?,
            };
            let (old, old_ts) = match prior.as_deref() {
                Some(bytes) if bytes.len() >= 8 => {
                    let (t, agg) = bytes.split_at(8);
                    let mut tb = [0u8; 8];
                    tb.copy_from_slice(t);
                    let agg = decode(ctx, &sh.aggregates, Some(agg), "stored aggregate")?;
                    (Some(agg), i64::from_be_bytes(tb))
                }
                _ => (None, i64::MIN),
            };
            let v = decode(ctx, &sh.values, r.value.as_deref(), "value")?;
            let new_ts = ts.max(old_ts);
            let new = encode(ctx, &sh.aggregates, &(sh.step)(&k, v, old), "aggregate")?;
            let stored = new.map(|agg| {
                let mut stored = new_ts.to_be_bytes().to_vec();
                stored.extend_from_slice(&agg);
                stored
            });
            let entry = CachedEntry {
                value: stored,
                old: prior,
                timestamp: new_ts,
                headers: r.headers.clone(),
            };
            let cache = self.cache.get_or_insert_with(|| ctx.record_cache());
            let cached = cache.enabled();
            let out = cache.put(ckey, entry);
            self.emit(ctx, out, cached)?;
        }
        Ok(())
    }

    fn flush(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.flush_cache(ctx)
    }

    fn close(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.flush_cache(ctx)
    }
}

impl<K: 'static, V: 'static> KTable<Windowed<K>, V> {
    /// Kafka Streams' `suppress(untilWindowCloses(unbounded()))`: holds each window's latest
    /// update and emits it once, when stream time (the highest timestamp of the updates this
    /// node has seen) reaches the window's end + `windows`' grace (sessions: gap + grace);
    /// windows closing together go out in windowed-key byte order, and a window whose latest
    /// update is a tombstone (a session merged away) is not emitted. The buffer is held in
    /// memory and mirrored in an in-memory store (`KTABLE-SUPPRESS-STATE-STORE-…`), changelogged
    /// as Kafka Streams' suppression buffer is: a restarted or moved task gets back the windows
    /// it was holding and its stream time, so every final result is emitted once.
    pub fn suppress_until_window_closes(
        &self,
        windows: impl ClosingWindows,
    ) -> KTable<Windowed<K>, V> {
        let name = self.b.new_name("KTABLE-SUPPRESS");
        let store = self.b.new_name("KTABLE-SUPPRESS-STATE-STORE");
        let keys = self.keys.clone();
        let grace = windows.close_after_end_ms();
        let buffer_store = store.clone();
        let supplier: ProcessorSupplier = Arc::new(move || {
            Box::new(Suppress {
                keys: keys.clone(),
                grace,
                observed: i64::MIN,
                buffer: BTreeMap::new(),
                store: buffer_store.clone(),
            }) as Box<dyn Processor>
        });
        let parent = self.node.clone();
        self.b.apply(|t| {
            t.add_processor(&name, supplier, &[&parent])?
                .add_state_store(StoreSpec::new(store, StoreKind::InMemory), &[&name])
                .map(drop)
        });
        KTable::new(
            self.b.clone(),
            name,
            self.store.clone(),
            self.keys.clone(),
            self.values.clone(),
        )
    }
}

struct Suppress<K> {
    keys: Codec<Windowed<K>>,
    grace: i64,
    observed: i64,
    // (window end, windowed key bytes) -> the window's latest update.
    buffer: BTreeMap<(i64, Vec<u8>), Record>,
    // The changelogged mirror of `buffer` (windowed key -> buffered record) and, under the
    // empty key, the stream time.
    store: String,
}

/// The buffer store's key of the node's stream time (windowed keys are never empty).
const STREAM_TIME_KEY: &[u8] = b"";

/// A buffered record as stored: window end, timestamp, value (flag, length, bytes), headers
/// (count, then length-prefixed name and value each); lengths and times big-endian.
fn encode_buffered(end: i64, r: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + r.value.as_ref().map_or(0, Vec::len));
    out.extend_from_slice(&end.to_be_bytes());
    out.extend_from_slice(&r.timestamp.to_be_bytes());
    let put = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    };
    match &r.value {
        Some(v) => {
            out.push(1);
            put(&mut out, v);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(r.headers.len() as u32).to_be_bytes());
    for (k, v) in &r.headers {
        put(&mut out, k.as_bytes());
        put(&mut out, v);
    }
    out
}

/// The inverse of [`encode_buffered`]; `None` on bytes it did not write.
fn decode_buffered(key: &[u8], bytes: &[u8]) -> Option<(i64, Record)> {
    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Some(head)
        }
        fn i64(&mut self) -> Option<i64> {
            Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
        }
        fn u32(&mut self) -> Option<usize> {
            Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize)
        }
        fn bytes(&mut self) -> Option<Vec<u8>> {
            let n = self.u32()?;
            Some(self.take(n)?.to_vec())
        }
    }
    let mut r = Reader(bytes);
    let end = r.i64()?;
    let timestamp = r.i64()?;
    let value = match r.take(1)? {
        [1] => Some(r.bytes()?),
        [0] => None,
        _ => return None,
    };
    let n = r.u32()?;
    let mut headers = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let k = String::from_utf8(r.bytes()?).ok()?;
        headers.push((k, r.bytes()?));
    }
    Some((
        end,
        Record {
            key: Some(key.to_vec()),
            value,
            timestamp,
            headers,
        },
    ))
}

impl<K: 'static> Processor for Suppress<K> {
    /// Takes back what the buffer store holds (restored from its changelog).
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        let store = ctx.store(&self.store)?;
        let mut bad = 0usize;
        let (buffer, observed) = (&mut self.buffer, &mut self.observed);
        store.scan(None, None, &mut |k, v| {
            if k == STREAM_TIME_KEY {
                match <[u8; 8]>::try_from(v) {
                    Ok(t) => *observed = (*observed).max(i64::from_be_bytes(t)),
                    Err(_) => bad += 1,
                }
            } else {
                match decode_buffered(k, v) {
                    Some((end, r)) => {
                        buffer.insert((end, k.to_vec()), r);
                    }
                    None => bad += 1,
                }
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if bad > 0 {
            log::warn!(
                "{}: {bad} unreadable entries in suppression buffer {} skipped",
                ctx.processor_name(),
                self.store
            );
        }
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let Some(key) = r.key.clone() else {
            return Ok(());
        };
        let end = decode(ctx, &self.keys, Some(&key), "windowed key")?.end;
        let store = ctx.store(&self.store)?;
        if r.timestamp > self.observed {
            self.observed = r.timestamp;
            store.put(STREAM_TIME_KEY, &self.observed.to_be_bytes())?;
        }
        store.put(&key, &encode_buffered(end, &r))?;
        self.buffer.insert((end, key), r);
        let close = self.observed.saturating_sub(self.grace);
        while let Some(entry) = self.buffer.first_entry() {
            if entry.key().0 > close {
                break;
            }
            let ((_, key), r) = entry.remove_entry();
            store.delete(&key)?;
            // Final results only: Kafka Streams drops buffered tombstones.
            if r.value.is_some() {
                ctx.forward(r);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_for_a_timestamp_match_kafka_streams() {
        let tumbling = TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::ZERO);
        assert_eq!(tumbling.window_starts(9_999), vec![0]);
        assert_eq!(tumbling.window_starts(10_000), vec![10_000]);
        let hopping = tumbling.advance_by(Duration::from_secs(5));
        assert_eq!(hopping.window_starts(12_000), vec![5_000, 10_000]);
        assert_eq!(hopping.window_starts(3_000), vec![0]);
        assert!(hopping
            .advance_by(Duration::from_secs(11))
            .validate()
            .is_err());
    }

    #[test]
    fn buffered_records_round_trip_and_garbage_is_refused() {
        let r = Record {
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            timestamp: 42,
            headers: vec![("h".into(), b"1".to_vec())],
        };
        let bytes = encode_buffered(10_000, &r);
        let (end, back) = decode_buffered(b"k", &bytes).unwrap();
        assert_eq!(end, 10_000);
        assert_eq!(
            (back.key, back.value, back.timestamp, back.headers),
            (r.key, r.value, r.timestamp, r.headers)
        );
        let tomb = Record {
            value: None,
            headers: vec![],
            ..back_template()
        };
        assert!(decode_buffered(b"k", &encode_buffered(0, &tomb))
            .unwrap()
            .1
            .value
            .is_none());
        for n in 0..bytes.len() {
            assert!(decode_buffered(b"k", &bytes[..n]).is_none(), "{n} bytes");
        }
        let mut bad = bytes.clone();
        bad[16] = 7;
        assert!(decode_buffered(b"k", &bad).is_none());
    }

    fn back_template() -> Record {
        Record {
            key: Some(b"k".to_vec()),
            value: None,
            timestamp: 1,
            headers: vec![],
        }
    }

    #[test]
    fn windowed_keys_are_key_then_start() {
        let serde = TimeWindowedSerde::new(String::codec(), 10_000);
        let w = Windowed {
            key: "a".to_string(),
            start: 10_000,
            end: 20_000,
        };
        let bytes = serde.encode(&w).unwrap();
        assert_eq!(bytes, [b'a', 0, 0, 0, 0, 0, 0, 0x27, 0x10]);
        assert_eq!(serde.decode(&bytes).unwrap(), w);
        assert!(serde.decode(b"short").is_err());
    }
}
