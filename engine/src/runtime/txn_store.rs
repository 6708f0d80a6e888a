//! Under exactly-once, a task's writes are held here until their transaction commits, then
//! applied to the store; an abort drops them. The local store therefore never holds a write
//! whose changelog record was aborted, whatever the broker does with aborted records.

use ks_stores::{
    ChangelogRecord, KeyValue, KeyValueStore, ReadOnlyKeyValueStore, StateStore, Visitor,
};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

type Pending = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

pub struct TxnBufferStore {
    inner: Arc<dyn KeyValueStore>,
    pending: Mutex<Pending>,
}

impl TxnBufferStore {
    pub fn new(inner: Arc<dyn KeyValueStore>) -> TxnBufferStore {
        TxnBufferStore {
            inner,
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    fn pending(&self) -> ks_stores::Result<MutexGuard<'_, Pending>> {
        self.pending
            .lock()
            .map_err(|_| ks_stores::Error::LockPoisoned(self.inner.name().to_string()))
    }

    /// Applies the writes of the committed transaction to the store.
    pub fn commit_pending(&self) -> ks_stores::Result<()> {
        let batch: Vec<ChangelogRecord> =
            std::mem::take(&mut *self.pending()?).into_iter().collect();
        if batch.is_empty() {
            return Ok(());
        }
        self.inner.restore_batch(&batch)
    }

    /// Drops the writes of an aborted transaction.
    pub fn discard_pending(&self) -> ks_stores::Result<()> {
        self.pending()?.clear();
        Ok(())
    }
}

impl StateStore for TxnBufferStore {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn persistent(&self) -> bool {
        self.inner.persistent()
    }
    fn flush(&self) -> ks_stores::Result<()> {
        self.inner.flush()
    }
    fn close(&self) -> ks_stores::Result<()> {
        self.inner.close()
    }
    fn restore_batch(&self, records: &[ChangelogRecord]) -> ks_stores::Result<()> {
        self.inner.restore_batch(records)
    }
}

impl ReadOnlyKeyValueStore for TxnBufferStore {
    fn get(&self, key: &[u8]) -> ks_stores::Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending()?.get(key) {
            return Ok(v.clone());
        }
        self.inner.get(key)
    }

    fn scan(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> ks_stores::Result<()> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.inner.range(from, to)?.into_iter().collect();
        for (k, v) in self.pending()?.iter() {
            let in_range =
                from.is_none_or(|f| k.as_slice() >= f) && to.is_none_or(|t| k.as_slice() <= t);
            if !in_range {
                continue;
            }
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        for (k, v) in &merged {
            if let ControlFlow::Break(()) = visit(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn approximate_num_entries(&self) -> ks_stores::Result<u64> {
        let added = self.pending()?.values().filter(|v| v.is_some()).count() as u64;
        Ok(self.inner.approximate_num_entries()? + added)
    }
}

impl KeyValueStore for TxnBufferStore {
    fn put(&self, key: &[u8], value: &[u8]) -> ks_stores::Result<()> {
        self.pending()?.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> ks_stores::Result<Option<Vec<u8>>> {
        match self.get(key)? {
            Some(existing) => Ok(Some(existing)),
            None => {
                self.put(key, value)?;
                Ok(None)
            }
        }
    }

    fn delete(&self, key: &[u8]) -> ks_stores::Result<Option<Vec<u8>>> {
        let old = self.get(key)?;
        self.pending()?.insert(key.to_vec(), None);
        Ok(old)
    }

    fn put_all(&self, entries: &[KeyValue]) -> ks_stores::Result<()> {
        let mut p = self.pending()?;
        for (k, v) in entries {
            p.insert(k.clone(), Some(v.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ks_stores::InMemoryKeyValueStore;

    #[test]
    fn writes_reach_the_store_only_on_commit() {
        let inner: Arc<dyn KeyValueStore> = Arc::new(InMemoryKeyValueStore::new("s"));
        inner.put(b"a", b"1").unwrap();
        inner.put(b"b", b"2").unwrap();
        let t = TxnBufferStore::new(inner.clone());
        t.put(b"c", b"3").unwrap();
        t.delete(b"a").unwrap();
        assert_eq!(t.get(b"a").unwrap(), None);
        assert_eq!(inner.get(b"a").unwrap(), Some(b"1".to_vec()));
        let keys: Vec<Vec<u8>> = t.all().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
        t.discard_pending().unwrap();
        assert_eq!(t.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(t.get(b"c").unwrap(), None);
        t.put(b"c", b"3").unwrap();
        t.delete(b"b").unwrap();
        t.commit_pending().unwrap();
        assert_eq!(inner.get(b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(inner.get(b"b").unwrap(), None);
    }
}
