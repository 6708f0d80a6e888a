//! Window and session stores, built over any key-value store (in-memory, RocksDB, file, or a
//! custom one), so they inherit its persistence, changelogging and restore unchanged.
//!
//! Layout of the underlying keys, which is also the changelog key, as Kafka Streams writes it:
//! - window store: `key bytes ++ window start (8 bytes, big-endian) ++ seqnum (4 bytes,
//!   big-endian)`; the seqnum is 0 unless duplicates are retained (stream–stream join buffers).
//! - session store: `key bytes ++ session end (8 bytes) ++ session start (8 bytes)`.
//!
//! Keys come first, so fetching one key over a time range is one ordered scan; a fetch by time
//! range alone scans every key. Retention: the store tracks the observed stream time (the highest
//! window start, or session end, written); writes older than `stream time - retention` are
//! dropped, reads do not return them, and every `segment interval` of stream time the expired
//! entries are removed from the inner store (not from the changelog: Kafka Streams lets the
//! changelog's own `retention.ms` expire them), so the store's size stays bounded.
//!
//! ```
//! use std::sync::Arc;
//! use ks_stores::*;
//!
//! # fn main() -> ks_stores::Result<()> {
//! let inner: Arc<dyn KeyValueStore> = Arc::new(InMemoryKeyValueStore::new("w"));
//! let store = WindowStore::new(inner.clone(), inner, WindowStoreConfig::new(60_000, false))?;
//! store.put(b"a", 0, Some(b"1"))?;
//! store.put(b"a", 10_000, Some(b"2"))?;
//! assert_eq!(store.fetch(b"a", 10_000)?, Some(b"2".to_vec()));
//! assert_eq!(store.fetch_range(b"a", 0, 5_000)?, vec![(0, b"1".to_vec())]);
//! # Ok(()) }
//! ```

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::spec::OpenedStore;
use crate::store::{KeyValueStore, ReadOnlyKeyValueStore};
use crate::{Error, Result};

/// Bytes appended to a key in the window store: start + seqnum.
pub const WINDOW_SUFFIX: usize = 12;
/// Bytes appended to a key in the session store: end + start.
pub const SESSION_SUFFIX: usize = 16;

/// The window store key `key ++ start ++ seqnum` (Kafka Streams' `WindowKeySchema`).
pub fn window_store_key(key: &[u8], start: i64, seqnum: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + WINDOW_SUFFIX);
    out.extend_from_slice(key);
    out.extend_from_slice(&start.to_be_bytes());
    out.extend_from_slice(&seqnum.to_be_bytes());
    out
}

/// Splits a window store key into key, start and seqnum; `None` if too short.
pub fn split_window_store_key(bytes: &[u8]) -> Option<(&[u8], i64, u32)> {
    let split = bytes.len().checked_sub(WINDOW_SUFFIX)?;
    let (key, suffix) = bytes.split_at(split);
    let start = i64::from_be_bytes(suffix[..8].try_into().ok()?);
    let seq = u32::from_be_bytes(suffix[8..].try_into().ok()?);
    Some((key, start, seq))
}

/// The session store key `key ++ end ++ start` (Kafka Streams' `SessionKeySchema`).
pub fn session_store_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + SESSION_SUFFIX);
    out.extend_from_slice(key);
    out.extend_from_slice(&end.to_be_bytes());
    out.extend_from_slice(&start.to_be_bytes());
    out
}

/// Splits a session store key into key, start and end; `None` if too short.
pub fn split_session_store_key(bytes: &[u8]) -> Option<(&[u8], i64, i64)> {
    let split = bytes.len().checked_sub(SESSION_SUFFIX)?;
    let (key, suffix) = bytes.split_at(split);
    let end = i64::from_be_bytes(suffix[..8].try_into().ok()?);
    let start = i64::from_be_bytes(suffix[8..].try_into().ok()?);
    Some((key, start, end))
}

/// Retention settings of a window or session store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStoreConfig {
    /// How long (in stream time) an entry is kept: Kafka Streams' window size + grace at least.
    pub retention_ms: i64,
    /// How often (in stream time) expired entries are removed: Kafka Streams' segment interval,
    /// `max(retention / 2, 60 s)` by default.
    pub segment_interval_ms: i64,
    /// Keep every put under its own seqnum instead of overwriting (join buffers).
    pub retain_duplicates: bool,
}

impl WindowStoreConfig {
    pub fn new(retention_ms: i64, retain_duplicates: bool) -> Self {
        WindowStoreConfig {
            retention_ms,
            segment_interval_ms: (retention_ms / 2).max(60_000),
            retain_duplicates,
        }
    }

    pub fn with_segment_interval(mut self, ms: i64) -> Self {
        self.segment_interval_ms = ms;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.retention_ms < 0 || self.segment_interval_ms <= 0 {
            return Err(Error::InvalidConfig(format!(
                "window store retention {} ms must be >= 0 and segment interval {} ms > 0",
                self.retention_ms, self.segment_interval_ms
            )));
        }
        Ok(())
    }
}

// Stream time as the store observed it, and when it last expired entries.
#[derive(Debug)]
struct Clock {
    observed: i64,
    last_expiry: i64,
    seqnum: u32,
}

// What window and session stores share: the two handles and the retention clock.
struct Retained {
    // Writes go here (the changelogging layer when logged).
    store: Arc<dyn KeyValueStore>,
    // Expiry deletes go here: expired entries are not tombstoned in the changelog.
    inner: Arc<dyn KeyValueStore>,
    config: WindowStoreConfig,
    clock: Mutex<Clock>,
}

impl Retained {
    fn new(
        store: Arc<dyn KeyValueStore>,
        inner: Arc<dyn KeyValueStore>,
        config: WindowStoreConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Retained {
            store,
            inner,
            config,
            clock: Mutex::new(Clock {
                observed: i64::MIN,
                last_expiry: i64::MIN,
                seqnum: 0,
            }),
        })
    }

    fn clock(&self) -> Result<MutexGuard<'_, Clock>> {
        self.clock
            .lock()
            .map_err(|_| Error::LockPoisoned(self.store.name().to_string()))
    }

    // The oldest time still retained.
    fn earliest(&self) -> Result<i64> {
        let observed = self.clock()?.observed;
        Ok(earliest(observed, self.config.retention_ms))
    }

    /// Advances stream time to `time`; `false` if `time` is already expired (the write is
    /// dropped). Runs expiry when a segment interval has passed. `at` extracts the retained time
    /// from an underlying key.
    fn advance(&self, time: i64, at: fn(&[u8]) -> Option<i64>) -> Result<bool> {
        let expire_before = {
            let mut clock = self.clock()?;
            clock.observed = clock.observed.max(time);
            let earliest = earliest(clock.observed, self.config.retention_ms);
            if time < earliest {
                return Ok(false);
            }
            let due = clock.last_expiry == i64::MIN
                || clock.observed.saturating_sub(clock.last_expiry)
                    >= self.config.segment_interval_ms;
            if due {
                clock.last_expiry = clock.observed;
                Some(earliest)
            } else {
                None
            }
        };
        if let Some(before) = expire_before {
            self.expire(before, at)?;
        }
        Ok(true)
    }

    fn expire(&self, before: i64, at: fn(&[u8]) -> Option<i64>) -> Result<()> {
        let mut expired = Vec::new();
        self.inner.scan(None, None, &mut |k, _| {
            if at(k).is_some_and(|t| t < before) {
                expired.push(k.to_vec());
            }
            ControlFlow::Continue(())
        })?;
        for k in expired {
            self.inner.delete(&k)?;
        }
        Ok(())
    }

    fn next_seqnum(&self) -> Result<u32> {
        let mut clock = self.clock()?;
        clock.seqnum = clock.seqnum.wrapping_add(1);
        Ok(clock.seqnum)
    }
}

fn earliest(observed: i64, retention: i64) -> i64 {
    if observed == i64::MIN {
        i64::MIN
    } else {
        observed.saturating_sub(retention).saturating_add(1)
    }
}

/// One window's entry from a fetch by time range alone: key, window start, value.
pub type WindowEntry = (Vec<u8>, i64, Vec<u8>);

/// One session: key, start, end, value.
pub type SessionEntry = (Vec<u8>, i64, i64, Vec<u8>);

/// The read side of a window store, for processors and interactive queries.
pub trait ReadOnlyWindowStore: Send + Sync {
    /// The value of `key`'s window starting at `start` (the first one if duplicates are kept).
    fn fetch(&self, key: &[u8], start: i64) -> Result<Option<Vec<u8>>>;

    /// `key`'s windows with `from <= start <= to`, by start (duplicates in insertion order).
    fn fetch_range(&self, key: &[u8], from: i64, to: i64) -> Result<Vec<(i64, Vec<u8>)>>;

    /// Every key's windows with `from <= start <= to`, in key then start order.
    fn fetch_all(&self, from: i64, to: i64) -> Result<Vec<WindowEntry>>;
}

/// A window store: values per key and window start, with retention.
pub struct WindowStore {
    base: Retained,
}

impl WindowStore {
    /// `store` takes the writes (the changelogging layer, if any), `inner` is the store beneath
    /// it, where expiry deletes; both the same store when not logged.
    pub fn new(
        store: Arc<dyn KeyValueStore>,
        inner: Arc<dyn KeyValueStore>,
        config: WindowStoreConfig,
    ) -> Result<Self> {
        Ok(WindowStore {
            base: Retained::new(store, inner, config)?,
        })
    }

    pub fn config(&self) -> WindowStoreConfig {
        self.base.config
    }

    pub fn name(&self) -> &str {
        self.base.store.name()
    }

    /// The key-value store beneath (for flush, close and restore).
    pub fn store(&self) -> &Arc<dyn KeyValueStore> {
        &self.base.store
    }

    /// Writes `key`'s window at `start`; `None` removes it (without duplicates). Returns `false`
    /// when the window is already past retention and the write was dropped.
    pub fn put(&self, key: &[u8], start: i64, value: Option<&[u8]>) -> Result<bool> {
        if !self.base.advance(start, window_time)? {
            return Ok(false);
        }
        match value {
            Some(v) => {
                let seq = if self.base.config.retain_duplicates {
                    self.base.next_seqnum()?
                } else {
                    0
                };
                self.base.store.put(&window_store_key(key, start, seq), v)?;
            }
            // Kafka Streams ignores deletes in a store with duplicates.
            None if self.base.config.retain_duplicates => {}
            None => {
                self.base.store.delete(&window_store_key(key, start, 0))?;
            }
        }
        Ok(true)
    }

    /// The observed stream time (highest window start written), `None` before any write.
    pub fn observed_stream_time(&self) -> Result<Option<i64>> {
        let t = self.base.clock()?.observed;
        Ok((t != i64::MIN).then_some(t))
    }
}

fn window_time(k: &[u8]) -> Option<i64> {
    split_window_store_key(k).map(|(_, start, _)| start)
}

impl ReadOnlyWindowStore for WindowStore {
    fn fetch(&self, key: &[u8], start: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .fetch_range(key, start, start)?
            .into_iter()
            .next()
            .map(|(_, v)| v))
    }

    fn fetch_range(&self, key: &[u8], from: i64, to: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        // Timestamps are non-negative (big-endian order breaks below 0).
        let from = from.max(self.base.earliest()?).max(0);
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let lo = window_store_key(key, from, 0);
        let hi = window_store_key(key, to, u32::MAX);
        self.base.store.scan(Some(&lo), Some(&hi), &mut |k, v| {
            // Longer keys sharing the prefix can fall inside the byte range: keep exact ones.
            if let Some((kk, start, _)) = split_window_store_key(k) {
                if kk == key && (from..=to).contains(&start) {
                    out.push((start, v.to_vec()));
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    fn fetch_all(&self, from: i64, to: i64) -> Result<Vec<WindowEntry>> {
        let from = from.max(self.base.earliest()?);
        let mut out = Vec::new();
        self.base.store.scan(None, None, &mut |k, v| {
            if let Some((kk, start, _)) = split_window_store_key(k) {
                if (from..=to).contains(&start) {
                    out.push((kk.to_vec(), start, v.to_vec()));
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}

/// The read side of a session store, for processors and interactive queries.
pub trait ReadOnlySessionStore: Send + Sync {
    /// `key`'s sessions with `end >= earliest_end` and `start <= latest_start` (the sessions a
    /// record at that time range overlaps or touches), by end then start.
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<SessionEntry>>;

    /// Every key's sessions with `end >= earliest_end` and `start <= latest_start`.
    fn find_all_sessions(&self, earliest_end: i64, latest_start: i64) -> Result<Vec<SessionEntry>>;

    /// The value of exactly the session `[start, end]` of `key`.
    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>>;
}

/// A session store: values per key and session `[start, end]`, with retention by session end.
pub struct SessionStore {
    base: Retained,
}

impl SessionStore {
    pub fn new(
        store: Arc<dyn KeyValueStore>,
        inner: Arc<dyn KeyValueStore>,
        config: WindowStoreConfig,
    ) -> Result<Self> {
        Ok(SessionStore {
            base: Retained::new(store, inner, config)?,
        })
    }

    pub fn name(&self) -> &str {
        self.base.store.name()
    }

    pub fn store(&self) -> &Arc<dyn KeyValueStore> {
        &self.base.store
    }

    /// Writes the session; returns `false` if its end is past retention (dropped).
    pub fn put(&self, key: &[u8], start: i64, end: i64, value: &[u8]) -> Result<bool> {
        if end < start {
            return Err(Error::InvalidConfig(format!(
                "session end {end} before its start {start}"
            )));
        }
        if !self.base.advance(end, session_time)? {
            return Ok(false);
        }
        self.base
            .store
            .put(&session_store_key(key, start, end), value)?;
        Ok(true)
    }

    /// Removes the session (a merge replaces it by a larger one).
    pub fn remove(&self, key: &[u8], start: i64, end: i64) -> Result<()> {
        self.base
            .store
            .delete(&session_store_key(key, start, end))
            .map(|_| ())
    }
}

fn session_time(k: &[u8]) -> Option<i64> {
    split_session_store_key(k).map(|(_, _, end)| end)
}

impl ReadOnlySessionStore for SessionStore {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<SessionEntry>> {
        let earliest_end = earliest_end.max(self.base.earliest()?);
        find_sessions_in(self.base.store.as_ref(), key, earliest_end, latest_start)
    }

    fn find_all_sessions(&self, earliest_end: i64, latest_start: i64) -> Result<Vec<SessionEntry>> {
        let earliest_end = earliest_end.max(self.base.earliest()?);
        find_all_sessions_in(self.base.store.as_ref(), earliest_end, latest_start)
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>> {
        if end < self.base.earliest()? {
            return Ok(None);
        }
        self.base.store.get(&session_store_key(key, start, end))
    }
}

/// `key`'s sessions in `kv` (a session store's underlying keys) with `end >= earliest_end` and
/// `start <= latest_start`, by end then start; no retention applied (the caller's bound).
pub fn find_sessions_in<S: ReadOnlyKeyValueStore + ?Sized>(
    kv: &S,
    key: &[u8],
    earliest_end: i64,
    latest_start: i64,
) -> Result<Vec<SessionEntry>> {
    // Session times are never negative (big-endian order breaks below 0).
    let earliest_end = earliest_end.max(0);
    let lo = session_store_key(key, 0, earliest_end);
    let hi = session_store_key(key, i64::MAX, i64::MAX);
    let mut out = Vec::new();
    kv.scan(Some(&lo), Some(&hi), &mut |k, v| {
        // Longer keys sharing the prefix fall inside the byte range too: exact keys only.
        if let Some((kk, start, end)) = split_session_store_key(k) {
            if kk == key && end >= earliest_end && start <= latest_start {
                out.push((kk.to_vec(), start, end, v.to_vec()));
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Every key's sessions in `kv` with `end >= earliest_end` and `start <= latest_start`.
pub fn find_all_sessions_in<S: ReadOnlyKeyValueStore + ?Sized>(
    kv: &S,
    earliest_end: i64,
    latest_start: i64,
) -> Result<Vec<SessionEntry>> {
    let mut out = Vec::new();
    kv.scan(None, None, &mut |k, v| {
        if let Some((kk, start, end)) = split_session_store_key(k) {
            if end >= earliest_end && start <= latest_start {
                out.push((kk.to_vec(), start, end, v.to_vec()));
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

impl OpenedStore {
    /// This store as a window store: writes through the changelogging layer, expiry beneath it.
    pub fn window_store(&self, config: WindowStoreConfig) -> Result<WindowStore> {
        WindowStore::new(self.store.clone(), self.inner.clone(), config)
    }

    /// This store as a session store.
    pub fn session_store(&self, config: WindowStoreConfig) -> Result<SessionStore> {
        SessionStore::new(self.store.clone(), self.inner.clone(), config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::InMemoryKeyValueStore;

    fn window(retention: i64, dups: bool) -> (WindowStore, Arc<dyn KeyValueStore>) {
        let inner: Arc<dyn KeyValueStore> = Arc::new(InMemoryKeyValueStore::new("w"));
        let config = WindowStoreConfig::new(retention, dups).with_segment_interval(retention);
        (
            WindowStore::new(inner.clone(), inner.clone(), config).unwrap(),
            inner,
        )
    }

    #[test]
    fn keys_lay_out_as_kafka_streams() {
        assert_eq!(
            window_store_key(b"a", 1000, 0),
            [b'a', 0, 0, 0, 0, 0, 0, 3, 0xe8, 0, 0, 0, 0]
        );
        assert_eq!(
            split_window_store_key(&window_store_key(b"ab", 7, 3)),
            Some((&b"ab"[..], 7, 3))
        );
        let s = session_store_key(b"k", 5, 9);
        assert_eq!(&s[1..9], &9i64.to_be_bytes());
        assert_eq!(split_session_store_key(&s), Some((&b"k"[..], 5, 9)));
        assert_eq!(split_window_store_key(b"short"), None);
    }

    #[test]
    fn fetch_keeps_to_the_exact_key() {
        let (s, _) = window(1_000_000, false);
        s.put(b"a", 10, Some(b"1")).unwrap();
        // "a" followed by bytes that sort inside a's range.
        s.put(b"a\0\0\0\0\0\0\0\0\x0a", 10, Some(b"x")).unwrap();
        s.put(b"a", 20, Some(b"2")).unwrap();
        assert_eq!(
            s.fetch_range(b"a", 0, 100).unwrap(),
            vec![(10, b"1".to_vec()), (20, b"2".to_vec())]
        );
        assert_eq!(s.fetch_all(15, 25).unwrap().len(), 1);
        s.put(b"a", 10, None).unwrap();
        assert_eq!(s.fetch(b"a", 10).unwrap(), None);
    }

    #[test]
    fn duplicates_get_their_own_seqnum() {
        let (s, _) = window(1_000, true);
        s.put(b"k", 5, Some(b"1")).unwrap();
        s.put(b"k", 5, Some(b"2")).unwrap();
        assert_eq!(
            s.fetch_range(b"k", 5, 5).unwrap(),
            vec![(5, b"1".to_vec()), (5, b"2".to_vec())]
        );
    }

    #[test]
    fn expired_windows_are_dropped_and_removed() {
        let (s, inner) = window(100, false);
        assert!(s.put(b"k", 0, Some(b"0")).unwrap());
        assert!(s.put(b"k", 50, Some(b"1")).unwrap());
        assert!(s.put(b"k", 150, Some(b"2")).unwrap());
        // Retained: starts > 150 - 100.
        assert!(!s.put(b"k", 20, Some(b"late")).unwrap());
        assert_eq!(s.fetch_range(b"k", 0, 200).unwrap().len(), 1);
        assert!(s.put(b"k", 300, Some(b"3")).unwrap());
        assert_eq!(inner.approximate_num_entries().unwrap(), 1);
    }

    #[test]
    fn sessions_are_found_by_overlap() {
        let inner: Arc<dyn KeyValueStore> = Arc::new(InMemoryKeyValueStore::new("s"));
        let s =
            SessionStore::new(inner.clone(), inner, WindowStoreConfig::new(10_000, false)).unwrap();
        s.put(b"k", 0, 10, b"a").unwrap();
        s.put(b"k", 100, 120, b"b").unwrap();
        s.put(b"j", 0, 200, b"c").unwrap();
        let found = s.find_sessions(b"k", 5, 110).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(s.find_sessions(b"k", 11, 99).unwrap(), vec![]);
        assert_eq!(s.find_all_sessions(150, 300).unwrap().len(), 1);
        s.remove(b"k", 0, 10).unwrap();
        assert_eq!(s.fetch_session(b"k", 0, 10).unwrap(), None);
        assert_eq!(
            s.fetch_session(b"k", 100, 120).unwrap(),
            Some(b"b".to_vec())
        );
        assert!(s.put(b"k", 10, 5, b"x").is_err());
    }
}
