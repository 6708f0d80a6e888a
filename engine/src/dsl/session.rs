//! Session-window aggregation: `group_by_key().windowed_by_session(SessionWindows)` → count /
//! reduce / aggregate into a [`KTable`] keyed by [`Windowed`] sessions, with Kafka Streams'
//! `KStreamSessionWindowAggregate` semantics:
//! - a session is `[first record, last record]` (both inclusive) of one key with no gap longer
//!   than the inactivity gap; a record within `gap` of sessions (before or after) merges them
//!   all into one, the merged aggregate being the sessions' aggregates combined with the
//!   session merger, then the record added;
//! - a merge removes every merged session from the store and forwards a tombstone for each
//!   (timestamp: the removed session's end), even when the new session has the same window as
//!   one removed, then forwards the new session (timestamp: its end);
//! - the processor's observed stream time closes a session once `end < stream time - gap -
//!   grace`; a record whose (merged) session would be closed is dropped and counted in
//!   [`SessionWindowedKStream::dropped_records`];
//! - the store is a [`ks_stores::SessionStore`] (retention gap + grace: its fetch hides sessions
//!   ending before the store's observed time - retention + 1, so a late record cannot merge
//!   into them), values the aggregate bytes.
//!
//! Behind the task's record cache (`cache.max.bytes.buffering` > 0) the sessions' removals and
//! puts are held per session key until the task commits, as Kafka Streams' caching session
//! store holds them: a session removed and put again within one commit interval forwards its
//! final value only, and a removal forwards a tombstone only when the store below still holds
//! the session (within its retention). Flushed sessions stay readable through the cache, so, as
//! in Kafka Streams, a record may merge into a session the store below already hides by
//! retention (`session_count_cached`). Kafka Streams keeps such clean entries until its cache
//! evicts them; ks keeps them while their end is within twice the retention of stream time.
//!
//! Session keys serialize as Kafka Streams' `SessionWindowedSerializer`: key bytes ++ 8-byte
//! big-endian end ++ 8-byte start ([`SessionWindowedSerde`]). `suppress_until_window_closes`
//! with the [`SessionWindows`] emits each final session once, at end + gap + grace, without
//! the merges' tombstones.
//!
//! ```
//! use ks_engine::dsl::{Materialized, SessionWindows, StreamsBuilder};
//! use ks_engine::stores::StoreKind;
//! use ks_engine::TopologyTestDriver;
//! use std::time::Duration;
//!
//! let sessions =
//!     SessionWindows::of_inactivity_gap_and_grace(Duration::from_secs(5), Duration::ZERO);
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("clicks")
//!     .group_by_key()
//!     .windowed_by_session(sessions)
//!     .count(Materialized::as_("sessions", StoreKind::InMemory))
//!     .to_stream()
//!     .map(|w, n| (format!("{}@{}/{}", w.key, w.start, w.end), n.map(|n| n.to_string())))
//!     .to("out");
//! let mut driver = TopologyTestDriver::new(&builder.build()?, 0)?;
//! driver.pipe_input("clicks", Some(b"u"), Some(b"x"), 1_000)?;
//! driver.pipe_input("clicks", Some(b"u"), Some(b"x"), 4_000)?;
//! let out: Vec<_> = driver
//!     .read_all_output("out")
//!     .into_iter()
//!     .map(|r| (String::from_utf8(r.key.unwrap()).unwrap(), r.value.is_some()))
//!     .collect();
//! // The first session, its tombstone once merged, the merged session.
//! assert_eq!(
//!     out,
//!     [("u@1000/1000".into(), true), ("u@1000/1000".into(), false), ("u@1000/4000".into(), true)]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::ops::{decode, encode};
use super::serdes::{Codec, DslType, Materialized};
use super::table::{KGroupedStream, KTable};
use super::table_ops::set_old;
use super::windowed::{ClosingWindows, Windowed};
use super::{derive, Shared};
use crate::cache::{CachedEntry, RecordCache};
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::Record;
use crate::{Error, Result};
use ks_stores::{
    session_store_key, split_session_store_key, ReadOnlySessionStore, Serde, SessionStore,
    WindowStoreConfig,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Session windows: records of one key at most `inactivity gap` apart form one session, which
/// accepts records until `grace` after it could last have been extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub inactivity_gap_ms: i64,
    pub grace_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SessionWindows {
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        SessionWindows {
            inactivity_gap_ms: millis(gap),
            grace_ms: millis(grace),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.inactivity_gap_ms <= 0
            || self.grace_ms < 0
            || self.inactivity_gap_ms.checked_add(self.grace_ms).is_none()
        {
            return Err(Error::InvalidTopology(format!(
                "session windows need an inactivity gap ({} ms) > 0 and grace ({} ms) >= 0",
                self.inactivity_gap_ms, self.grace_ms
            )));
        }
        Ok(())
    }
}

impl ClosingWindows for SessionWindows {
    /// A session closes `gap + grace` after its end (Kafka Streams' session grace for
    /// suppression).
    fn close_after_end_ms(&self) -> i64 {
        self.inactivity_gap_ms.saturating_add(self.grace_ms)
    }
}

/// Kafka Streams' `SessionWindowedSerde`: key bytes ++ 8-byte big-endian end ++ 8-byte start.
pub struct SessionWindowedSerde<K> {
    keys: Codec<K>,
}

impl<K> SessionWindowedSerde<K> {
    pub fn new(keys: Codec<K>) -> Self {
        SessionWindowedSerde { keys }
    }
}

impl<K: 'static> Serde for SessionWindowedSerde<K> {
    type Item = Windowed<K>;

    fn encode(&self, item: &Windowed<K>) -> ks_stores::Result<Vec<u8>> {
        let mut out = self
            .keys
            .encode(&item.key)?
            .ok_or(ks_stores::Error::Encode {
                what: "session-windowed key",
                reason: "the key encoded to nothing".into(),
            })?;
        out.extend_from_slice(&item.end.to_be_bytes());
        out.extend_from_slice(&item.start.to_be_bytes());
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> ks_stores::Result<Windowed<K>> {
        let split = bytes
            .len()
            .checked_sub(16)
            .ok_or(ks_stores::Error::Decode {
                what: "session-windowed key",
                reason: format!("{} bytes, fewer than the 16 of end and start", bytes.len()),
            })?;
        let (key, times) = bytes.split_at(split);
        let (end, start) = times.split_at(8);
        let time = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            i64::from_be_bytes(a)
        };
        Ok(Windowed {
            key: self.keys.decode(Some(key))?,
            start: time(start),
            end: time(end),
        })
    }
}

impl<K: 'static, V: 'static> KGroupedStream<K, V> {
    /// Aggregates per key and session.
    pub fn windowed_by_session(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream {
            grouped: KGroupedStream::new(self.stream.clone()),
            windows,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// A grouped stream cut into sessions, to be aggregated into a session-windowed [`KTable`].
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
    dropped: Arc<AtomicU64>,
}

// The aggregate of a session starts at `init` (`None`: Kafka Streams' null), absorbs merged
// sessions with `merge` and the record with `add`.
type Init<VA> = Arc<dyn Fn() -> Option<VA> + Send + Sync>;
type Merge<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> VA + Send + Sync>;
type Add<K, V, VA> = Arc<dyn Fn(&K, V, Option<VA>) -> VA + Send + Sync>;

impl<K: 'static, V: 'static> SessionWindowedKStream<K, V> {
    /// Records dropped because their session had closed, plus records without key or value,
    /// over every task of this topology in this process (Kafka Streams'
    /// `dropped-records-total`).
    pub fn dropped_records(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// The number of records per key and session (merged sessions add up).
    pub fn count(&self, materialized: Materialized) -> KTable<Windowed<K>, i64> {
        let init: Init<i64> = Arc::new(|| Some(0));
        let merge: Merge<K, i64> = Arc::new(|_, a, b| a.unwrap_or(0) + b);
        let add: Add<K, V, i64> = Arc::new(|_, _, n| n.unwrap_or(0) + 1);
        self.aggregate_node(
            "KSTREAM-AGGREGATE",
            materialized,
            i64::codec(),
            init,
            merge,
            add,
        )
    }

    /// Combines the values per key and session with `reducer`; merged sessions combine with
    /// it too, older session first.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, V> {
        let reducer = Arc::new(reducer);
        let r2 = reducer.clone();
        let init: Init<V> = Arc::new(|| None);
        let merge: Merge<K, V> = Arc::new(move |_, a, b| match a {
            Some(a) => r2(a, b),
            None => b,
        });
        let add: Add<K, V, V> = Arc::new(move |_, v, agg| match agg {
            Some(agg) => reducer(agg, v),
            None => v,
        });
        let values = self.grouped.stream.values.clone();
        self.aggregate_node("KSTREAM-REDUCE", materialized, values, init, merge, add)
    }

    /// Folds the values per key and session into an aggregate starting at `init()`; when a
    /// record joins sessions, `merger(key, a, b)` combines their aggregates (starting from
    /// `init()`, in session order) before the record is added.
    pub fn aggregate<VA: DslType>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, VA> {
        let init = Arc::new(init);
        let (i1, i2, i3) = (init.clone(), init.clone(), init);
        let start: Init<VA> = Arc::new(move || Some(i1()));
        let merge: Merge<K, VA> = Arc::new(move |k, a, b| merger(k, a.unwrap_or_else(|| i2()), b));
        let add: Add<K, V, VA> =
            Arc::new(move |k, v, agg| aggregator(k, v, agg.unwrap_or_else(|| i3())));
        self.aggregate_node(
            "KSTREAM-AGGREGATE",
            materialized,
            VA::codec(),
            start,
            merge,
            add,
        )
    }

    fn aggregate_node<VA: 'static>(
        &self,
        prefix: &str,
        materialized: Materialized,
        aggregates: Codec<VA>,
        init: Init<VA>,
        merge: Merge<K, VA>,
        add: Add<K, V, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let s = &self.grouped.stream;
        let b: &Shared = &s.b;
        let spec = b.store_spec(&materialized, &format!("{prefix}-STATE-STORE"));
        let name = b.new_name(prefix);
        let store = spec.name.clone();
        let input = s.repartitioned(&store);
        let windows = self.windows;
        let session_keys = Codec::required(SessionWindowedSerde::new(s.keys.clone()));
        let shared = Arc::new(SessionShared {
            store: store.clone(),
            keys: s.keys.clone(),
            values: s.values.clone(),
            aggregates: aggregates.clone(),
            session_keys: session_keys.clone(),
            init,
            merge,
            add,
            windows,
            dropped: self.dropped.clone(),
        });
        let supplier: ProcessorSupplier = Arc::new(move || {
            Box::new(SessionAggregate {
                shared: shared.clone(),
                observed: i64::MIN,
                store: None,
                cache: None,
                seen: BTreeMap::new(),
            }) as Box<dyn Processor>
        });
        b.apply(|t| {
            windows.validate()?;
            t.add_processor(&name, supplier, &[&input.node])?
                .add_state_store(spec, &[&name])
                .map(drop)
        });
        KTable::new(b.clone(), name, store, session_keys, aggregates)
    }
}

struct SessionShared<K, V, VA> {
    store: String,
    keys: Codec<K>,
    values: Codec<V>,
    aggregates: Codec<VA>,
    session_keys: Codec<Windowed<K>>,
    init: Init<VA>,
    merge: Merge<K, VA>,
    add: Add<K, V, VA>,
    windows: SessionWindows,
    dropped: Arc<AtomicU64>,
}

struct SessionAggregate<K, V, VA> {
    shared: Arc<SessionShared<K, V, VA>>,
    // The highest timestamp this task's processor has seen: it closes sessions.
    observed: i64,
    store: Option<SessionStore>,
    // Dirty sessions by session store key (`key ++ end ++ start`), values as stored.
    cache: Option<RecordCache>,
    // With the cache on: the latest value of every session key put through the cache, dirty or
    // flushed (`None`: removed), so reads see what the cache holds, without the store's
    // retention filter.
    seen: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<K: 'static, V: 'static, VA: 'static> SessionAggregate<K, V, VA> {
    fn store(&mut self, ctx: &ProcessorContext<'_>) -> Result<&SessionStore> {
        if self.store.is_none() {
            let sh = &self.shared;
            let kv = ctx.store(&sh.store)?;
            let config = WindowStoreConfig::new(sh.windows.close_after_end_ms(), false);
            self.store = Some(SessionStore::new(kv.clone(), kv, config)?);
        }
        self.store
            .as_ref()
            .ok_or_else(|| Error::UnknownStore(self.shared.store.clone()))
    }

    /// `key`'s sessions with `end >= earliest_end` and `start <= latest_start`, by end then
    /// start: the store's, overlaid by what the cache holds.
    fn find_sessions(
        &mut self,
        ctx: &ProcessorContext<'_>,
        key: &[u8],
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<(i64, i64, Vec<u8>)>> {
        let mut found: BTreeMap<(i64, i64), Vec<u8>> = self
            .store(ctx)?
            .find_sessions(key, earliest_end, latest_start)?
            .into_iter()
            .map(|(_, s, e, v)| ((e, s), v))
            .collect();
        let lo = session_store_key(key, 0, earliest_end.max(0));
        let hi = session_store_key(key, i64::MAX, i64::MAX);
        for (k, v) in self.seen.range(lo..=hi) {
            let Some((kk, s, e)) = split_session_store_key(k) else {
                continue;
            };
            if kk != key || e < earliest_end || s > latest_start {
                continue;
            }
            match v {
                Some(v) => found.insert((e, s), v.clone()),
                None => found.remove(&(e, s)),
            };
        }
        Ok(found.into_iter().map(|((e, s), v)| (s, e, v)).collect())
    }

    /// Makes `value` session `[start, end]`'s (`None` removes it; `stored`: what the read
    /// found), written and forwarded now without a cache, at the next flush with one.
    fn put(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        key: &[u8],
        (start, end): (i64, i64),
        value: Option<Vec<u8>>,
        stored: Option<Vec<u8>>,
        r: &Record,
    ) -> Result<()> {
        let skey = session_store_key(key, start, end);
        let cache = self.cache.get_or_insert_with(|| ctx.record_cache());
        let cached = cache.enabled();
        if cached {
            self.seen.insert(skey.clone(), value.clone());
        }
        let entry = CachedEntry {
            value,
            old: stored,
            // Kafka Streams stamps session updates with the session's end.
            timestamp: end,
            headers: r.headers.clone(),
        };
        let out = cache.put(skey, entry);
        self.emit(ctx, out, cached)
    }

    /// Writes sessions leaving the cache (or every update, without one) and forwards them.
    fn emit(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        entries: Vec<(Vec<u8>, CachedEntry)>,
        cached: bool,
    ) -> Result<()> {
        let sh = self.shared.clone();
        for (skey, e) in entries {
            let Some((key, start, end)) = split_session_store_key(&skey) else {
                continue;
            };
            let store = self.store(ctx)?;
            // Kafka Streams' caching store forwards as old value what the store below returns
            // now (nothing once the session is past its retention); without a cache, what the
            // update replaced.
            let old = if cached {
                store.fetch_session(key, start, end)?
            } else {
                e.old
            };
            match &e.value {
                Some(bytes) => {
                    store.put(key, start, end, bytes)?;
                }
                None => store.remove(key, start, end)?,
            }
            if cached && e.value.is_none() && old.is_none() {
                continue;
            }
            let template = Record {
                key: None,
                value: None,
                timestamp: e.timestamp,
                headers: e.headers,
            };
            Self::forward(ctx, &sh, &template, key, (start, end), e.value, old)?;
        }
        Ok(())
    }

    fn flush_cache(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        let Some(cache) = self.cache.as_mut() else {
            return Ok(());
        };
        let out = cache.drain();
        self.emit(ctx, out, true)?;
        // Clean entries far behind stream time are left to the store (see the module doc).
        let keep_after = self
            .observed
            .saturating_sub(self.shared.windows.close_after_end_ms().saturating_mul(2));
        self.seen
            .retain(|k, _| split_session_store_key(k).is_some_and(|(_, _, end)| end >= keep_after));
        Ok(())
    }

    fn forward(
        ctx: &mut ProcessorContext<'_>,
        sh: &SessionShared<K, V, VA>,
        r: &Record,
        key: &[u8],
        (start, end): (i64, i64),
        new: Option<Vec<u8>>,
        old: Option<Vec<u8>>,
    ) -> Result<()> {
        let wkey = Windowed {
            key: decode(ctx, &sh.keys, Some(key), "key")?,
            start,
            end,
        };
        let mut out = derive(r, encode(ctx, &sh.session_keys, &wkey, "session key")?, new);
        set_old(&mut out, old);
        out.timestamp = end;
        ctx.forward(out);
        Ok(())
    }
}

impl<K: 'static, V: 'static, VA: 'static> Processor for SessionAggregate<K, V, VA> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let sh = self.shared.clone();
        // No key has no session; a typed value that is absent has nothing to add.
        let (Some(key), Some(_)) = (r.key.as_deref(), r.value.as_deref()) else {
            sh.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let k = decode(ctx, &sh.keys, Some(key), "key")?;
        let v = decode(ctx, &sh.values, r.value.as_deref(), "value")?;
        let ts = r.timestamp;
        let gap = sh.windows.inactivity_gap_ms;
        self.observed = self.observed.max(ts);
        let close = self
            .observed
            .saturating_sub(sh.windows.grace_ms)
            .saturating_sub(gap);
        let found = self.find_sessions(ctx, key, ts.saturating_sub(gap), ts.saturating_add(gap))?;
        let mut agg = (sh.init)();
        let (mut start, mut end) = (ts, ts);
        for (s, e, bytes) in &found {
            let merged = decode(ctx, &sh.aggregates, Some(bytes), "stored aggregate")?;
            agg = Some((sh.merge)(&k, agg, merged));
            start = start.min(*s);
            end = end.max(*e);
        }
        if end < close {
            sh.dropped.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "{}: record at {ts} dropped, session [{start},{end}] closed at stream time {}",
                ctx.processor_name(),
                self.observed
            );
            return Ok(());
        }
        if (start, end) != (ts, ts) {
            for (s, e, bytes) in found {
                self.put(ctx, key, (s, e), None, Some(bytes), &r)?;
            }
        }
        // An aggregate that encodes to nothing is no session (Kafka Streams' null).
        let new = encode(ctx, &sh.aggregates, &(sh.add)(&k, v, agg), "aggregate")?;
        self.put(ctx, key, (start, end), new, None, &r)
    }

    fn flush(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.flush_cache(ctx)
    }

    fn close(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.flush_cache(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_are_key_then_end_then_start() {
        let serde = SessionWindowedSerde::new(String::codec());
        let w = Windowed {
            key: "a".to_string(),
            start: 1_000,
            end: 4_000,
        };
        let bytes = serde.encode(&w).unwrap();
        let mut expected = vec![b'a'];
        expected.extend_from_slice(&4_000i64.to_be_bytes());
        expected.extend_from_slice(&1_000i64.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(serde.decode(&bytes).unwrap(), w);
        assert!(serde.decode(&bytes[..15]).is_err());
    }

    #[test]
    fn session_windows_are_validated() {
        let ok = SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(5),
            Duration::from_secs(2),
        );
        assert!(ok.validate().is_ok());
        assert_eq!(ok.close_after_end_ms(), 7_000);
        let zero = SessionWindows::of_inactivity_gap_and_grace(Duration::ZERO, Duration::ZERO);
        assert!(zero.validate().is_err());
    }
}
