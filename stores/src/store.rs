//! The store traits, at the bytes level so that they stay object-safe: the engine hands stores
//! around as `Arc<dyn KeyValueStore>` and readers (interactive queries) as
//! `Arc<dyn ReadOnlyKeyValueStore>`. Typed access lives in [`crate::serde`].

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::Result;

/// What a scan calls for each entry, in key order, until it breaks.
pub type Visitor<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> ControlFlow<()>;

/// One entry: key and value bytes.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One changelog record as restore applies it: `None` is a tombstone (a delete).
pub type ChangelogRecord = (Vec<u8>, Option<Vec<u8>>);

/// What every store is, whatever it holds. All methods take `&self`: a stream task writes while
/// other threads read, so implementations lock internally.
pub trait StateStore: Send + Sync {
    fn name(&self) -> &str;

    /// Whether the contents survive a restart (and so whether a checkpoint means anything).
    fn persistent(&self) -> bool;

    /// Makes every write so far durable locally. The engine writes the checkpoint only after this
    /// and after the changelog writes are acked.
    fn flush(&self) -> Result<()>;

    /// Flushes and releases the store's resources (files, locks). Later calls fail with
    /// [`crate::Error::StoreClosed`]; closing twice is fine.
    fn close(&self) -> Result<()>;

    /// Applies changelog records in order, bypassing any changelogging layer (they came from the
    /// changelog). Re-applying records already applied is harmless.
    fn restore_batch(&self, records: &[ChangelogRecord]) -> Result<()>;
}

/// The read side shared by every implementation, so queries are written once.
pub trait ReadOnlyKeyValueStore: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Visits the entries with `from <= key <= to` (both inclusive, either open) in key order
    /// until `visit` breaks. Implementations may hold a read lock while visiting: a visitor must
    /// not write to the same store.
    fn scan(&self, from: Option<&[u8]>, to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()>;

    /// An estimate: exact for the in-memory and file stores, RocksDB's `estimate-num-keys`.
    fn approximate_num_entries(&self) -> Result<u64>;

    /// The entries with `from <= key <= to`, in key order.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        let mut out = Vec::new();
        self.scan(from, to, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Every entry, in key order.
    fn all(&self) -> Result<Vec<KeyValue>> {
        self.range(None, None)
    }
}

/// A writable key-value store.
pub trait KeyValueStore: StateStore + ReadOnlyKeyValueStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Writes only if the key is absent; returns the value already there, if any.
    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Removes the key; returns the value it had.
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    fn put_all(&self, entries: &[KeyValue]) -> Result<()> {
        for (k, v) in entries {
            self.put(k, v)?;
        }
        Ok(())
    }
}

/// The read-only view of a writable store, for handing to query threads: they cannot write
/// through it (no downcast back) and it works with any implementation.
pub fn read_only(store: Arc<dyn KeyValueStore>) -> Arc<dyn ReadOnlyKeyValueStore> {
    Arc::new(ReadOnlyView(store))
}

struct ReadOnlyView(Arc<dyn KeyValueStore>);

impl ReadOnlyKeyValueStore for ReadOnlyView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(key)
    }

    fn scan(&self, from: Option<&[u8]>, to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        self.0.scan(from, to, visit)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.0.approximate_num_entries()
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.0.range(from, to)
    }
}

/// Whether `key` lies in `[from, to]`; shared by the stores that scan ordered maps.
pub(crate) fn past_end(key: &[u8], to: Option<&[u8]>) -> bool {
    matches!(to, Some(to) if key > to)
}
