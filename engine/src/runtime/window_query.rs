//! Interactive queries over window and session stores: [`WindowStoreView`] reads any key-value view of a
//! window store's underlying keys (`key ++ start ++ seqnum`, see [`ks_stores::window`]) as a
//! [`ReadOnlyWindowStore`] — one key over a time range, or every key over a time range — so
//! [`crate::KafkaStreams::window_store`] answers over every local task of a store, whatever its
//! backend (in-memory, RocksDB, the file store).
//!
//! [`SessionStoreView`] does the same for session stores (`key ++ end ++ start`): a key's
//! sessions overlapping a time range, every key's, or one exact session
//! ([`crate::KafkaStreams::session_store`]).
//!
//! Windows past retention stay readable until the store's next expiry pass removes them (at
//! most one segment interval of stream time later): the view has no stream time of its own.
//!
//! ```
//! use std::sync::Arc;
//! use ks_engine::runtime::WindowStoreView;
//! use ks_engine::stores::{self, InMemoryKeyValueStore, KeyValueStore, ReadOnlyWindowStore, WindowStore, WindowStoreConfig};
//!
//! let inner: Arc<dyn KeyValueStore> = Arc::new(InMemoryKeyValueStore::new("w"));
//! let store = WindowStore::new(inner.clone(), inner.clone(), WindowStoreConfig::new(60_000, false))?;
//! store.put(b"a", 0, Some(b"1"))?;
//! store.put(b"b", 10_000, Some(b"2"))?;
//! let view = WindowStoreView::new(stores::read_only(inner));
//! assert_eq!(view.fetch_range(b"a", 0, 60_000)?, vec![(0, b"1".to_vec())]);
//! assert_eq!(view.fetch_all(5_000, 60_000)?, vec![(b"b".to_vec(), 10_000, b"2".to_vec())]);
//! # Ok::<(), ks_engine::stores::Error>(())
//! ```

use ks_stores::{
    find_all_sessions_in, find_sessions_in, session_store_key, split_window_store_key,
    window_store_key, ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore,
    SessionEntry, WindowEntry,
};
use std::ops::ControlFlow;
use std::sync::Arc;

/// A read-only window store over a key-value view of its underlying keys.
pub struct WindowStoreView {
    kv: Arc<dyn ReadOnlyKeyValueStore>,
}

impl WindowStoreView {
    /// Reads `kv`, a window store's key-value store (or a view over several tasks' ones).
    pub fn new(kv: Arc<dyn ReadOnlyKeyValueStore>) -> WindowStoreView {
        WindowStoreView { kv }
    }
}

impl ReadOnlyWindowStore for WindowStoreView {
    fn fetch(&self, key: &[u8], start: i64) -> ks_stores::Result<Option<Vec<u8>>> {
        Ok(self
            .fetch_range(key, start, start)?
            .into_iter()
            .next()
            .map(|(_, v)| v))
    }

    fn fetch_range(
        &self,
        key: &[u8],
        from: i64,
        to: i64,
    ) -> ks_stores::Result<Vec<(i64, Vec<u8>)>> {
        // Window starts are never negative (big-endian order breaks below 0).
        let from = from.max(0);
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let lo = window_store_key(key, from, 0);
        let hi = window_store_key(key, to, u32::MAX);
        self.kv.scan(Some(&lo), Some(&hi), &mut |k, v| {
            // Longer keys sharing the prefix fall inside the byte range too: exact keys only.
            if let Some((kk, start, _)) = split_window_store_key(k) {
                if kk == key && (from..=to).contains(&start) {
                    out.push((start, v.to_vec()));
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    fn fetch_all(&self, from: i64, to: i64) -> ks_stores::Result<Vec<WindowEntry>> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        self.kv.scan(None, None, &mut |k, v| {
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

/// A read-only session store over a key-value view of its underlying keys.
pub struct SessionStoreView {
    kv: Arc<dyn ReadOnlyKeyValueStore>,
}

impl SessionStoreView {
    /// Reads `kv`, a session store's key-value store (or a view over several tasks' ones).
    pub fn new(kv: Arc<dyn ReadOnlyKeyValueStore>) -> SessionStoreView {
        SessionStoreView { kv }
    }
}

impl ReadOnlySessionStore for SessionStoreView {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_end: i64,
        latest_start: i64,
    ) -> ks_stores::Result<Vec<SessionEntry>> {
        find_sessions_in(self.kv.as_ref(), key, earliest_end, latest_start)
    }

    fn find_all_sessions(
        &self,
        earliest_end: i64,
        latest_start: i64,
    ) -> ks_stores::Result<Vec<SessionEntry>> {
        find_all_sessions_in(self.kv.as_ref(), earliest_end, latest_start)
    }

    fn fetch_session(
        &self,
        key: &[u8],
        start: i64,
        end: i64,
    ) -> ks_stores::Result<Option<Vec<u8>>> {
        self.kv.get(&session_store_key(key, start, end))
    }
}
