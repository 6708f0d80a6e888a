//! The record cache (`cache.max.bytes.buffering`), Kafka Streams' `ThreadCache` and caching
//! stores: an aggregate node keeps its dirty entries (the latest value per key) in memory and
//! writes them to its store — and forwards them downstream — only when the task commits
//! ([`crate::Processor::flush`]) or when the cache is over its byte budget and evicts, so a
//! key updated many times between two commits costs one store write, one changelog record
//! and one downstream record.
//!
//! Layout:
//! - [`CacheBudget`]: the bytes one task may hold, shared by every cache of its nodes (0 turns
//!   caching off: every put comes straight back, Kafka Streams' behaviour without a cache).
//! - [`RecordCache`]: one node's dirty entries by key, in the order they were last written
//!   (the order a flush forwards them, as Kafka Streams' `NamedCache` does). A put over budget
//!   evicts this cache's oldest entries, as `ThreadCache.maybeEvict` does.
//! - [`CachedEntry`]: the bytes to store, the stored bytes they replace (what the store held
//!   before the first put since the last flush: the old value to forward), and the record
//!   context (timestamp, headers) to forward with.
//!
//! A node gets its cache from [`crate::ProcessorContext::record_cache`]; what it does with an
//! entry leaving the cache (write its store, forward new and old value) is its own business,
//! so table, windowed and session aggregates share this layer.
//!
//! ```
//! use ks_engine::cache::{CacheBudget, CachedEntry, RecordCache};
//!
//! let mut cache = RecordCache::new(CacheBudget::new(1 << 20));
//! let entry = |v: &[u8], ts| CachedEntry { value: Some(v.to_vec()), old: None, timestamp: ts, headers: vec![] };
//! assert!(cache.put(b"k".to_vec(), entry(b"1", 1)).is_empty());
//! assert!(cache.put(b"k".to_vec(), entry(b"2", 2)).is_empty());
//! let flushed = cache.drain();
//! assert_eq!(flushed.len(), 1);
//! assert_eq!(flushed[0].1.value.as_deref(), Some(&b"2"[..]));
//! ```

use crate::record::Header;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes an entry costs beyond its key, values and headers (its bookkeeping), so a cache of
/// many tiny entries is bounded too.
const ENTRY_OVERHEAD: usize = 64;

/// The bytes one task's record caches may hold together.
#[derive(Debug)]
pub struct CacheBudget {
    max: usize,
    used: AtomicUsize,
}

impl CacheBudget {
    /// A budget of `max_bytes` (0: caching off).
    pub fn new(max_bytes: usize) -> Arc<CacheBudget> {
        Arc::new(CacheBudget {
            max: max_bytes,
            used: AtomicUsize::new(0),
        })
    }

    /// No caching: Kafka Streams' `cache.max.bytes.buffering = 0`.
    pub fn disabled() -> Arc<CacheBudget> {
        CacheBudget::new(0)
    }

    /// The budget in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max
    }

    /// Bytes the caches of this budget hold now.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn over(&self) -> bool {
        self.used_bytes() > self.max
    }
}

/// One dirty entry: what the store gets, what it had, and the context to forward with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEntry {
    /// The bytes to store (`None`: delete).
    pub value: Option<Vec<u8>>,
    /// The store's bytes before this entry became dirty (`None`: the key was absent).
    pub old: Option<Vec<u8>>,
    /// The timestamp of the record to forward.
    pub timestamp: i64,
    /// The headers of the record to forward.
    pub headers: Vec<Header>,
}

impl CachedEntry {
    fn size(&self, key: &[u8]) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        key.len()
            + self.value.as_ref().map_or(0, Vec::len)
            + self.old.as_ref().map_or(0, Vec::len)
            + headers
            + ENTRY_OVERHEAD
    }
}

/// One node's dirty entries, bounded by the task's [`CacheBudget`].
#[derive(Debug)]
pub struct RecordCache {
    budget: Arc<CacheBudget>,
    // key -> (write sequence, entry); `order` maps the sequence back to the key.
    entries: HashMap<Vec<u8>, (u64, CachedEntry)>,
    order: BTreeMap<u64, Vec<u8>>,
    next: u64,
    bytes: usize,
}

impl RecordCache {
    /// An empty cache drawing on `budget`.
    pub fn new(budget: Arc<CacheBudget>) -> RecordCache {
        RecordCache {
            budget,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            bytes: 0,
        }
    }

    /// Whether puts are held at all (a budget above 0).
    pub fn enabled(&self) -> bool {
        self.budget.max > 0
    }

    /// The dirty entry of `key`, if it has one (reads go here before the store).
    pub fn get(&self, key: &[u8]) -> Option<&CachedEntry> {
        self.entries.get(key).map(|(_, e)| e)
    }

    /// Makes `entry` the latest of `key`. A key already dirty keeps the `old` it had (the store
    /// still holds that). Returns the entries the caller must write and forward now, oldest
    /// first: those evicted to stay in budget (with caching off, `entry` itself).
    pub fn put(&mut self, key: Vec<u8>, mut entry: CachedEntry) -> Vec<(Vec<u8>, CachedEntry)> {
        if !self.enabled() {
            return vec![(key, entry)];
        }
        if let Some((seq, prev)) = self.entries.remove(&key) {
            self.order.remove(&seq);
            self.release(prev.size(&key));
            entry.old = prev.old;
        }
        let size = entry.size(&key);
        let seq = self.next;
        self.next += 1;
        self.order.insert(seq, key.clone());
        self.entries.insert(key, (seq, entry));
        self.bytes += size;
        self.budget.used.fetch_add(size, Ordering::Relaxed);
        let mut evicted = Vec::new();
        while self.budget.over() {
            match self.pop_oldest() {
                Some(e) => evicted.push(e),
                None => break,
            }
        }
        evicted
    }

    /// Every dirty entry, in the order of their last writes; the cache is empty after.
    pub fn drain(&mut self) -> Vec<(Vec<u8>, CachedEntry)> {
        let mut out = Vec::with_capacity(self.entries.len());
        while let Some(e) = self.pop_oldest() {
            out.push(e);
        }
        out
    }

    /// Dirty entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is dirty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes this cache holds.
    pub fn size_bytes(&self) -> usize {
        self.bytes
    }

    fn pop_oldest(&mut self) -> Option<(Vec<u8>, CachedEntry)> {
        let (_, key) = self.order.pop_first()?;
        let (_, entry) = self.entries.remove(&key)?;
        self.release(entry.size(&key));
        Some((key, entry))
    }

    fn release(&mut self, size: usize) {
        self.bytes -= size;
        self.budget.used.fetch_sub(size, Ordering::Relaxed);
    }
}

impl Drop for RecordCache {
    // A cache dropped with dirty entries (a task closed dirty) gives its bytes back.
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: &[u8], old: Option<&[u8]>, ts: i64) -> CachedEntry {
        CachedEntry {
            value: Some(v.to_vec()),
            old: old.map(<[u8]>::to_vec),
            timestamp: ts,
            headers: vec![],
        }
    }

    #[test]
    fn a_disabled_cache_hands_every_put_back() {
        let mut cache = RecordCache::new(CacheBudget::disabled());
        let back = cache.put(b"k".to_vec(), entry(b"1", None, 1));
        assert_eq!(back, vec![(b"k".to_vec(), entry(b"1", None, 1))]);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_latest_value_per_key_flushes_in_last_write_order_with_the_first_old() {
        let mut cache = RecordCache::new(CacheBudget::new(1 << 20));
        assert!(cache
            .put(b"a".to_vec(), entry(b"1", Some(b"0"), 1))
            .is_empty());
        assert!(cache.put(b"b".to_vec(), entry(b"1", None, 2)).is_empty());
        // The second put of a: its old is still what the store holds, "0".
        assert!(cache
            .put(b"a".to_vec(), entry(b"2", Some(b"1"), 3))
            .is_empty());
        assert_eq!(cache.get(b"a").unwrap().value.as_deref(), Some(&b"2"[..]));
        let out = cache.drain();
        assert_eq!(
            out,
            vec![
                (b"b".to_vec(), entry(b"1", None, 2)),
                (b"a".to_vec(), entry(b"2", Some(b"0"), 3)),
            ]
        );
        assert_eq!(cache.size_bytes(), 0);
    }

    #[test]
    fn over_budget_the_oldest_entries_of_the_putting_cache_are_evicted() {
        let one = entry(b"1", None, 0).size(b"a");
        let budget = CacheBudget::new(2 * one);
        let mut first = RecordCache::new(budget.clone());
        let mut second = RecordCache::new(budget.clone());
        assert!(first.put(b"a".to_vec(), entry(b"1", None, 0)).is_empty());
        assert!(first.put(b"b".to_vec(), entry(b"1", None, 1)).is_empty());
        assert_eq!(budget.used_bytes(), 2 * one);
        // The budget is full: `second` evicts from itself only, so its own entry goes at once.
        let out = second.put(b"c".to_vec(), entry(b"1", None, 2));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, b"c");
        let out = first.put(b"d".to_vec(), entry(b"1", None, 3));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, b"a");
        assert_eq!(budget.used_bytes(), 2 * one);
        drop(first);
        assert_eq!(budget.used_bytes(), 0);
    }
}
