//! Sliding-window aggregation: `group_by_key().windowed_by_sliding(SlidingWindows)` → count /
//! reduce / aggregate into a [`KTable`] keyed by [`Windowed`] keys, with Kafka Streams'
//! `KStreamSlidingWindowAggregate` semantics:
//! - a window is `[start, start + time difference]`, both ends inclusive; each record at `t`
//!   creates its own *left* window `[t - diff, t]` and, when later records fall within `diff`
//!   of it, its *right* window `[t + 1, t + 1 + diff]`; records before `diff` share the window
//!   `[0, diff]` (no negative starts);
//! - only windows holding at least one record exist, so the output is one update per window a
//!   record enters, not one per possible window;
//! - the processor's observed stream time closes a window once `end < stream time - grace`;
//!   updates of closed windows are skipped and a record whose every window is closed is dropped,
//!   each counted in [`SlidingWindowedKStream::dropped_records`];
//! - an update carries the highest record timestamp in its window;
//! - the store is a [`ks_stores::WindowStore`] keyed by window start (retention
//!   `2 * diff + grace`, so the windows a new record needs are still there), values the
//!   window's max timestamp (8 bytes) then the aggregate bytes.
//!
//! Windowed keys serialize as Kafka Streams' `TimeWindowedSerializer` (key ++ 8-byte start),
//! the end being `start + diff` ([`TimeWindowedSerde`] with size = time difference).
//!
//! ```
//! use ks_engine::dsl::{Materialized, SlidingWindows, StreamsBuilder};
//! use ks_engine::stores::StoreKind;
//! use ks_engine::TopologyTestDriver;
//! use std::time::Duration;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("clicks")
//!     .group_by_key()
//!     .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
//!         Duration::from_secs(5),
//!         Duration::from_secs(2),
//!     ))
//!     .count(Materialized::as_("clicks-5s", StoreKind::InMemory))
//!     .to_stream()
//!     .map(|w, n| (format!("{}@{}/{}", w.key, w.start, w.end), n.unwrap_or(0).to_string()))
//!     .to("out");
//! let mut driver = TopologyTestDriver::new(&builder.build()?, 0)?;
//! driver.pipe_input("clicks", Some(b"u"), Some(b"x"), 10_000)?;
//! driver.pipe_input("clicks", Some(b"u"), Some(b"x"), 12_000)?;
//! let keys: Vec<_> = driver
//!     .read_all_output("out")
//!     .into_iter()
//!     .map(|r| String::from_utf8(r.key.unwrap()).unwrap())
//!     .collect();
//! // u@10000's window, then u@10000's right window (holding 12000) and 12000's own window.
//! assert_eq!(keys, ["u@5000/10000", "u@10001/15001", "u@7000/12000"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::ops::{decode, encode};
use super::serdes::{Codec, DslType, Materialized};
use super::table::{KGroupedStream, KTable};
use super::table_ops::set_old;
use super::windowed::{ClosingWindows, TimeWindowedSerde, Windowed};
use super::Step;
use super::{derive, Shared};
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::Record;
use crate::{Error, Result};
use ks_stores::{ReadOnlyWindowStore, WindowStore, WindowStoreConfig};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Sliding windows: a window of `time difference` (both ends inclusive) ending at every record
/// and starting right after every record, accepting records up to `grace` late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    pub time_difference_ms: i64,
    pub grace_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SlidingWindows {
    /// Windows spanning `time_difference` (inclusive), closing `grace` after their end.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        SlidingWindows {
            time_difference_ms: millis(time_difference),
            grace_ms: millis(grace),
        }
    }

    fn validate(&self) -> Result<()> {
        // The store's retention is 2 * diff + grace: keep it representable.
        let fits = self
            .time_difference_ms
            .checked_mul(2)
            .and_then(|d| d.checked_add(self.grace_ms))
            .is_some();
        if self.time_difference_ms < 0 || self.grace_ms < 0 || !fits {
            return Err(Error::InvalidTopology(format!(
                "sliding windows need time difference ({} ms) >= 0 and grace ({} ms) >= 0",
                self.time_difference_ms, self.grace_ms
            )));
        }
        Ok(())
    }
}

impl ClosingWindows for SlidingWindows {
    fn close_after_end_ms(&self) -> i64 {
        self.grace_ms
    }
}

impl<K: 'static, V: 'static> KGroupedStream<K, V> {
    /// Aggregates per key over sliding windows.
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream {
            grouped: KGroupedStream::new(self.stream.clone()),
            windows,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// A grouped stream over sliding windows, to be aggregated into a windowed [`KTable`].
pub struct SlidingWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SlidingWindows,
    dropped: Arc<AtomicU64>,
}

impl<K: 'static, V: 'static> SlidingWindowedKStream<K, V> {
    /// Records (and window updates) skipped because their windows had closed, plus records
    /// without key or value (Kafka Streams' `dropped-records-total`), over every task of this
    /// topology in this process.
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
        let windowed_keys = Codec::required(TimeWindowedSerde::new(
            s.keys.clone(),
            windows.time_difference_ms,
        ));
        let shared = Arc::new(SlidingShared {
            store: store.clone(),
            keys: s.keys.clone(),
            values: s.values.clone(),
            aggregates: aggregates.clone(),
            windowed_keys: windowed_keys.clone(),
            step,
            windows,
            dropped: self.dropped.clone(),
        });
        let supplier: ProcessorSupplier = Arc::new(move || {
            Box::new(SlidingAggregate {
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
        KTable::new(b.clone(), name, store, windowed_keys, aggregates)
    }
}

struct SlidingShared<K, V, VA> {
    store: String,
    keys: Codec<K>,
    values: Codec<V>,
    aggregates: Codec<VA>,
    windowed_keys: Codec<Windowed<K>>,
    step: Step<K, V, VA>,
    windows: SlidingWindows,
    dropped: Arc<AtomicU64>,
}

struct SlidingAggregate<K, V, VA> {
    shared: Arc<SlidingShared<K, V, VA>>,
    // The highest timestamp this task's processor has seen: it closes windows.
    observed: i64,
    store: Option<WindowStore>,
}

/// A window as stored: the highest record timestamp in it and the aggregate's bytes (Kafka
/// Streams' `ValueAndTimestamp`).
#[derive(Clone)]
struct Stored {
    ts: i64,
    agg: Vec<u8>,
}

impl Stored {
    fn parse(bytes: &[u8]) -> Option<Stored> {
        let (t, agg) = bytes.split_at_checked(8)?;
        Some(Stored {
            ts: i64::from_be_bytes(t.try_into().ok()?),
            agg: agg.to_vec(),
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.ts.to_be_bytes().to_vec();
        out.extend_from_slice(&self.agg);
        out
    }
}

// What one record's processing needs, borrowed for its duration.
struct Step1<'p, 'c, 'x, K, V, VA> {
    sh: &'p SlidingShared<K, V, VA>,
    ctx: &'p mut ProcessorContext<'c>,
    store: &'x WindowStore,
    record: &'p Record,
    key: &'p [u8],
    close: i64,
}

impl<K: 'static, V: 'static, VA: 'static> Step1<'_, '_, '_, K, V, VA> {
    fn diff(&self) -> i64 {
        self.sh.windows.time_difference_ms
    }

    fn fetch(&self, from: i64, to: i64) -> Result<Vec<(i64, Stored)>> {
        let mut out = Vec::new();
        for (start, bytes) in self.store.fetch_range(self.key, from, to)? {
            let stored = Stored::parse(&bytes).ok_or_else(|| {
                Error::processing(
                    self.ctx.processor_name(),
                    format!(
                        "window at {start} in store {} holds {} bytes, fewer than its timestamp",
                        self.sh.store,
                        bytes.len()
                    ),
                )
            })?;
            out.push((start, stored));
        }
        Ok(out)
    }

    fn skip(&self, start: i64) {
        self.sh.dropped.fetch_add(1, Ordering::Relaxed);
        log::debug!(
            "{}: record at {} skipped for window [{start},{}], closed at {}",
            self.ctx.processor_name(),
            self.record.timestamp,
            start.saturating_add(self.diff()),
            self.close
        );
    }

    fn forward(
        &mut self,
        start: i64,
        new: Option<Vec<u8>>,
        old: Option<Vec<u8>>,
        ts: i64,
    ) -> Result<()> {
        let sh = self.sh;
        let wkey = Windowed {
            key: decode(self.ctx, &sh.keys, Some(self.key), "key")?,
            start,
            end: start.saturating_add(self.diff()),
        };
        let key = encode(self.ctx, &sh.windowed_keys, &wkey, "windowed key")?;
        let mut out = derive(self.record, key, new);
        set_old(&mut out, old);
        out.timestamp = ts;
        self.ctx.forward(out);
        Ok(())
    }

    /// Adds the record to the window at `start` holding `current` (`None`: a new window with
    /// the initial aggregate), unless the window has closed. Kafka Streams'
    /// `updateWindowAndForward`.
    fn update(&mut self, start: i64, current: Option<&Stored>) -> Result<()> {
        let end = start.saturating_add(self.diff());
        if end < self.close {
            self.skip(start);
            return Ok(());
        }
        let sh = self.sh;
        let old = match current {
            Some(c) => Some(decode(
                self.ctx,
                &sh.aggregates,
                Some(&c.agg),
                "stored aggregate",
            )?),
            None => None,
        };
        let v = decode(self.ctx, &sh.values, self.record.value.as_deref(), "value")?;
        let k = decode(self.ctx, &sh.keys, Some(self.key), "key")?;
        let new = encode(
            self.ctx,
            &sh.aggregates,
            &(sh.step)(&k, v, old),
            "aggregate",
        )?;
        let ts = current.map_or(self.record.timestamp, |c| c.ts.max(self.record.timestamp));
        match &new {
            Some(agg) => {
                let stored = Stored {
                    ts,
                    agg: agg.clone(),
                };
                self.store.put(self.key, start, Some(&stored.bytes()))?;
            }
            None => {
                self.store.put(self.key, start, None)?;
            }
        }
        self.forward(start, new, current.map(|c| c.agg.clone()), ts)
    }

    /// The record's right window `[t + 1, t + 1 + diff]`, holding what `right` holds (the
    /// record itself is not in it).
    fn create_right_window(&mut self, right: &Stored) -> Result<()> {
        let start = self.record.timestamp.saturating_add(1);
        self.store.put(self.key, start, Some(&right.bytes()))?;
        self.forward(start, Some(right.agg.clone()), None, right.ts)
    }

    /// Records at or after the time difference: the windows are found latest start first
    /// (Kafka Streams' `processReverse`, what its stores take).
    fn process_late_enough(&mut self) -> Result<()> {
        let ts = self.record.timestamp;
        let diff = self.diff();
        let mut starts = HashSet::new();
        let mut left_agg: Option<Stored> = None;
        let mut right_agg: Option<Stored> = None;
        let mut left_created = false;
        let mut right_created = false;
        let mut previous: Option<i64> = None;
        let windows = self.fetch(
            ts.saturating_sub(diff.saturating_mul(2)).max(0),
            ts.saturating_add(1),
        )?;
        for (start, stored) in windows.iter().rev() {
            let start = *start;
            starts.insert(start);
            let end = start.saturating_add(diff);
            if start == ts.saturating_add(1) {
                right_created = true;
            } else if end > ts {
                if right_agg.is_none() {
                    right_agg = Some(stored.clone());
                }
                self.update(start, Some(stored))?;
            } else if end == ts {
                left_created = true;
                self.update(start, Some(stored))?;
                if stored.ts < ts {
                    previous = Some(stored.ts);
                } else {
                    // A record at this very timestamp already made every window needed.
                    return Ok(());
                }
            } else {
                left_agg = Some(stored.clone());
                previous = Some(stored.ts);
                break;
            }
        }
        // The previous record's right window, if this record is the first one in it.
        if let Some(p) = previous {
            let start = p.saturating_add(1);
            if !starts.contains(&start) && start.saturating_add(diff) >= ts {
                self.update(start, None)?;
            }
        }
        if !left_created {
            // The left window holds the records of the previous left window still within
            // diff, which is every one of them when the previous record is.
            let start = ts.saturating_sub(diff);
            let seed = match (&left_agg, previous) {
                (Some(l), Some(p)) if start <= p => Some(Stored {
                    ts,
                    agg: l.agg.clone(),
                }),
                _ => None,
            };
            self.update(start, seed.as_ref())?;
        }
        if !right_created {
            if let Some(right) = right_agg.filter(|r| r.ts > ts) {
                self.create_right_window(&right)?;
            }
        }
        Ok(())
    }

    /// Records before the time difference all share the window `[0, diff]` (Kafka Streams'
    /// `processEarly`).
    fn process_early(&mut self) -> Result<()> {
        let ts = self.record.timestamp;
        let mut combined: Option<Stored> = None;
        let mut right_agg: Option<Stored> = None;
        let mut right_created = false;
        let mut starts = HashSet::new();
        let mut previous: Option<i64> = None;
        for (start, stored) in self.fetch(0, ts.saturating_add(1))? {
            starts.insert(start);
            if start == 0 {
                if stored.ts < ts {
                    previous = Some(stored.ts);
                }
                combined = Some(stored);
            } else if start <= ts {
                self.update(start, Some(&stored))?;
                right_agg = Some(stored);
            } else {
                right_created = true;
            }
        }
        // Without a right window found, the combined window holds only records after this
        // one if it holds any after it at all.
        if right_agg.is_none() {
            right_agg = combined.clone().filter(|c| c.ts > ts);
        }
        if !right_created {
            if let Some(right) = right_agg.filter(|r| r.ts > ts) {
                self.create_right_window(&right)?;
            }
        }
        if let Some(p) = previous {
            let start = p.saturating_add(1);
            if !starts.contains(&start) {
                self.update(start, None)?;
            }
        }
        self.update(0, combined.as_ref())
    }
}

impl<K: 'static, V: 'static, VA: 'static> Processor for SlidingAggregate<K, V, VA> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let sh = self.shared.clone();
        // Kafka Streams skips these: no key has no group, no value has nothing to add.
        let (Some(key), Some(_)) = (r.key.as_deref(), r.value.as_deref()) else {
            sh.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        decode(ctx, &sh.keys, Some(key), "key")?;
        let ts = r.timestamp;
        let diff = sh.windows.time_difference_ms;
        if ts < 0 {
            sh.dropped.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "{}: record with negative timestamp {ts} skipped",
                ctx.processor_name()
            );
            return Ok(());
        }
        self.observed = self.observed.max(ts);
        let close = self.observed.saturating_sub(sh.windows.grace_ms);
        if ts.saturating_add(diff) < close {
            sh.dropped.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "{}: record at {ts} dropped, its windows closed at stream time {}",
                ctx.processor_name(),
                self.observed
            );
            return Ok(());
        }
        if self.store.is_none() {
            let kv = ctx.store(&sh.store)?;
            let retention = diff.saturating_mul(2).saturating_add(sh.windows.grace_ms);
            self.store = Some(WindowStore::new(
                kv.clone(),
                kv,
                WindowStoreConfig::new(retention, false),
            )?);
        }
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let mut step = Step1 {
            sh: &sh,
            ctx,
            store,
            record: &r,
            key,
            close,
        };
        if ts < diff {
            step.process_early()
        } else {
            step.process_late_enough()
        }
    }
}
