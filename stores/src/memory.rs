//! [`InMemoryKeyValueStore`]: an ordered map behind a read-write lock. Not persistent: after a
//! restart it is rebuilt from its changelog alone.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::store::{ChangelogRecord, KeyValueStore, ReadOnlyKeyValueStore, StateStore, Visitor};
use crate::{Error, Result};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

pub struct InMemoryKeyValueStore {
    name: String,
    // None once closed.
    map: RwLock<Option<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl InMemoryKeyValueStore {
    pub fn new(name: impl Into<String>) -> Self {
        InMemoryKeyValueStore {
            name: name.into(),
            map: RwLock::new(Some(BTreeMap::new())),
        }
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Option<Map>>> {
        let guard = self
            .map
            .read()
            .map_err(|_| Error::LockPoisoned(self.name.clone()))?;
        if guard.is_none() {
            return Err(Error::StoreClosed(self.name.clone()));
        }
        Ok(guard)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Option<Map>>> {
        let guard = self
            .map
            .write()
            .map_err(|_| Error::LockPoisoned(self.name.clone()))?;
        if guard.is_none() {
            return Err(Error::StoreClosed(self.name.clone()));
        }
        Ok(guard)
    }
}

/// Scans an ordered map for `[from, to]`; shared with the file store, whose entries also live in
/// a map.
pub(crate) fn scan_map(
    map: &BTreeMap<Vec<u8>, Vec<u8>>,
    from: Option<&[u8]>,
    to: Option<&[u8]>,
    visit: Visitor<'_>,
) {
    // BTreeMap::range panics on an inverted range; an inverted query is simply empty.
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return;
        }
    }
    let lower = from.map_or(Bound::Unbounded, Bound::Included);
    let upper = to.map_or(Bound::Unbounded, Bound::Included);
    for (k, v) in map.range::<[u8], _>((lower, upper)) {
        if visit(k, v).is_break() {
            break;
        }
    }
}

/// Applies changelog records to an ordered map; shared with the file store.
pub(crate) fn apply_records(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, records: &[ChangelogRecord]) {
    for (k, v) in records {
        match v {
            Some(v) => {
                map.insert(k.clone(), v.clone());
            }
            None => {
                map.remove(k.as_slice());
            }
        }
    }
}

impl StateStore for InMemoryKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        false
    }

    fn flush(&self) -> Result<()> {
        self.read().map(|_| ())
    }

    fn close(&self) -> Result<()> {
        let mut guard = self
            .map
            .write()
            .map_err(|_| Error::LockPoisoned(self.name.clone()))?;
        *guard = None;
        Ok(())
    }

    fn restore_batch(&self, records: &[ChangelogRecord]) -> Result<()> {
        let mut guard = self.write()?;
        if let Some(map) = guard.as_mut() {
            apply_records(map, records);
        }
        Ok(())
    }
}

impl ReadOnlyKeyValueStore for InMemoryKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read()?.as_ref().and_then(|m| m.get(key).cloned()))
    }

    fn scan(&self, from: Option<&[u8]>, to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        if let Some(map) = self.read()?.as_ref() {
            scan_map(map, from, to, visit);
        }
        Ok(())
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.read()?.as_ref().map_or(0, |m| m.len() as u64))
    }
}

impl KeyValueStore for InMemoryKeyValueStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if let Some(map) = self.write()?.as_mut() {
            map.insert(key.to_vec(), value.to_vec());
        }
        Ok(())
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut guard = self.write()?;
        let Some(map) = guard.as_mut() else {
            return Err(Error::StoreClosed(self.name.clone()));
        };
        if let Some(existing) = map.get(key) {
            return Ok(Some(existing.clone()));
        }
        map.insert(key.to_vec(), value.to_vec());
        Ok(None)
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.write()?.as_mut().and_then(|m| m.remove(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_inclusive_and_ordered() {
        let s = InMemoryKeyValueStore::new("s");
        for k in [b"d", b"a", b"c", b"b"] {
            s.put(k, k).unwrap();
        }
        let keys: Vec<_> = s
            .range(Some(b"b"), Some(b"c"))
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
        assert!(s.range(Some(b"z"), Some(b"a")).unwrap().is_empty());
        assert_eq!(s.all().unwrap().len(), 4);
    }

    #[test]
    fn put_if_absent_keeps_the_first_value() {
        let s = InMemoryKeyValueStore::new("s");
        assert_eq!(s.put_if_absent(b"k", b"1").unwrap(), None);
        assert_eq!(s.put_if_absent(b"k", b"2").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(b"k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.delete(b"k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.approximate_num_entries().unwrap(), 0);
    }

    #[test]
    fn closed_store_refuses_calls() {
        let s = InMemoryKeyValueStore::new("s");
        s.close().unwrap();
        s.close().unwrap();
        assert!(matches!(s.get(b"k"), Err(Error::StoreClosed(_))));
        assert!(matches!(s.put(b"k", b"v"), Err(Error::StoreClosed(_))));
    }
}
