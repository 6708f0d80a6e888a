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
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::Record;
use crate::{Error, Result};
use ks_stores::{ReadOnlySessionStore, Serde, SessionStore, WindowStoreConfig};
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
}

impl<K: 'static, V: 'static, VA: 'static> SessionAggregate<K, V, VA> {
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
        // Kafka Streams stamps session updates with the session's end.
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
        if self.store.is_none() {
            let kv = ctx.store(&sh.store)?;
            let config = WindowStoreConfig::new(sh.windows.close_after_end_ms(), false);
            self.store = Some(SessionStore::new(kv.clone(), kv, config)?);
        }
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let found = store.find_sessions(key, ts.saturating_sub(gap), ts.saturating_add(gap))?;
        let mut agg = (sh.init)();
        let (mut start, mut end) = (ts, ts);
        for (_, s, e, bytes) in &found {
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
            for (_, s, e, bytes) in found {
                store.remove(key, s, e)?;
                Self::forward(ctx, &sh, &r, key, (s, e), None, Some(bytes))?;
            }
        }
        let new = encode(ctx, &sh.aggregates, &(sh.add)(&k, v, agg), "aggregate")?;
        match &new {
            Some(bytes) => {
                store.put(key, start, end, bytes)?;
            }
            // An aggregate that encodes to nothing is no session (Kafka Streams' null).
            None => store.remove(key, start, end)?,
        }
        Self::forward(ctx, &sh, &r, key, (start, end), new, None)
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
