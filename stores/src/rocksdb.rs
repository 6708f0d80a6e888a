//! [`RocksDbKeyValueStore`]: one RocksDB per task and store, under
//! `<state.dir>/<application.id>/<task>/rocksdb/<store>`.
//!
//! Memory is bounded process-wide by a [`RocksDbShared`]: one LRU block cache shared by every
//! store, and a memtable budget divided across the stores that are open. rocksdb 0.21 (linked
//! against Debian's RocksDB 7.8) has no `WriteBufferManager` binding, so the budget is enforced
//! by re-dividing it with `SetOptions(write_buffer_size)` on every open DB whenever a store opens
//! or closes: each store may hold at most `max_write_buffer_number` memtables of
//! `budget / (open stores × max_write_buffer_number)` bytes. See stores/README.md.
//!
//! Writes skip RocksDB's WAL, as in Kafka Streams: the changelog is the log. [`StateStore::flush`]
//! flushes the memtables to SST files, and the engine checkpoints only after it, so a crash loses
//! at most what the changelog tail replays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use ::rocksdb::{
    BlockBasedOptions, Cache, Direction, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

use crate::store::{
    past_end, ChangelogRecord, KeyValueStore, ReadOnlyKeyValueStore, StateStore, Visitor,
};
use crate::{Error, LocalState, Result};

/// Process-wide RocksDB memory settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RocksDbConfig {
    /// Capacity of the one LRU block cache shared by every store (data, index and filter blocks).
    pub block_cache_bytes: usize,
    /// Memtable memory for all open stores together.
    pub memtable_budget_bytes: usize,
    /// Memtables per store (one active, the rest waiting to be flushed).
    pub max_write_buffer_number: i32,
    /// Floor of a store's memtable size: below it RocksDB flushes tiny SST files constantly, so
    /// with very many stores the budget is exceeded rather than thrashing (logged as a warning).
    pub min_write_buffer_bytes: usize,
    pub bloom_bits_per_key: f64,
}

impl Default for RocksDbConfig {
    fn default() -> Self {
        RocksDbConfig {
            block_cache_bytes: 64 << 20,
            memtable_budget_bytes: 64 << 20,
            max_write_buffer_number: 2,
            min_write_buffer_bytes: 256 << 10,
            bloom_bits_per_key: 10.0,
        }
    }
}

/// What the shared RocksDB resources use now, as RocksDB reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RocksDbMemoryUsage {
    pub open_stores: usize,
    pub memtable_bytes: u64,
    pub block_cache_bytes: u64,
    /// The memtable size each store is given now.
    pub write_buffer_size: usize,
}

/// The resources every RocksDB store of the process shares: cheap to clone.
#[derive(Clone)]
pub struct RocksDbShared {
    inner: Arc<Shared>,
}

struct Shared {
    config: RocksDbConfig,
    cache: Cache,
    // Open DBs, to re-divide the memtable budget. Weak so that a store dropped without close
    // does not stay open.
    open: Mutex<Vec<Weak<DB>>>,
}

impl RocksDbShared {
    pub fn new(config: RocksDbConfig) -> Result<Self> {
        if config.max_write_buffer_number < 1 {
            return Err(Error::InvalidConfig(format!(
                "max_write_buffer_number must be at least 1, not {}",
                config.max_write_buffer_number
            )));
        }
        if config.memtable_budget_bytes == 0 {
            return Err(Error::InvalidConfig(
                "memtable_budget_bytes must be positive".into(),
            ));
        }
        Ok(RocksDbShared {
            inner: Arc::new(Shared {
                cache: Cache::new_lru_cache(config.block_cache_bytes),
                config,
                open: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The process-wide default ([`RocksDbConfig::default`]), for stores opened without one.
    pub fn global() -> RocksDbShared {
        static GLOBAL: OnceLock<RocksDbShared> = OnceLock::new();
        GLOBAL
            .get_or_init(|| RocksDbShared {
                inner: Arc::new(Shared {
                    cache: Cache::new_lru_cache(RocksDbConfig::default().block_cache_bytes),
                    config: RocksDbConfig::default(),
                    open: Mutex::new(Vec::new()),
                }),
            })
            .clone()
    }

    pub fn config(&self) -> &RocksDbConfig {
        &self.inner.config
    }

    fn write_buffer_size_for(&self, stores: usize) -> usize {
        let c = &self.inner.config;
        let slots = stores.max(1) * c.max_write_buffer_number as usize;
        (c.memtable_budget_bytes / slots).max(c.min_write_buffer_bytes)
    }

    /// The options a store is opened with; public so the raw-rocksdb baseline of the benchmarks
    /// runs with exactly the same settings.
    pub fn options(&self, write_buffer_size: usize) -> Options {
        let c = &self.inner.config;
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.inner.cache);
        table.set_bloom_filter(c.bloom_bits_per_key, false);
        // Index and filter blocks count against the shared cache too, or they would grow
        // unbounded with the data.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_size(write_buffer_size);
        opts.set_max_write_buffer_number(c.max_write_buffer_number);
        opts
    }

    /// The write options of every store write: no WAL, the changelog is the log.
    pub fn write_options() -> WriteOptions {
        let mut w = WriteOptions::default();
        w.disable_wal(true);
        w
    }

    fn live(open: &mut Vec<Weak<DB>>) -> Vec<Arc<DB>> {
        open.retain(|w| w.strong_count() > 0);
        open.iter().filter_map(Weak::upgrade).collect()
    }

    /// Registers a newly opened DB and shrinks everyone's share of the budget.
    fn register(&self, db: &Arc<DB>) -> Result<()> {
        let mut open = self.lock_open()?;
        open.push(Arc::downgrade(db));
        self.rebalance(&mut open)
    }

    fn unregister(&self, db: &Arc<DB>) -> Result<()> {
        let mut open = self.lock_open()?;
        open.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(db)));
        self.rebalance(&mut open)
    }

    fn lock_open(&self) -> Result<std::sync::MutexGuard<'_, Vec<Weak<DB>>>> {
        self.inner
            .open
            .lock()
            .map_err(|_| Error::LockPoisoned("rocksdb shared resources".into()))
    }

    // Called with the registry locked, and every upgraded Arc is dropped before it is unlocked:
    // a store closing concurrently is then always the one that drops (and so unlocks) its DB.
    fn rebalance(&self, open: &mut Vec<Weak<DB>>) -> Result<()> {
        let dbs = Self::live(open);
        let size = self.write_buffer_size_for(dbs.len());
        let c = &self.inner.config;
        if size * dbs.len().max(1) * c.max_write_buffer_number as usize > c.memtable_budget_bytes {
            log::warn!(
                "{} RocksDB stores at the minimum memtable size {} B exceed the memtable budget {} B",
                dbs.len(),
                size,
                c.memtable_budget_bytes
            );
        }
        let value = size.to_string();
        for db in &dbs {
            db.set_options(&[("write_buffer_size", value.as_str())])
                .map_err(|source| Error::RocksDb {
                    store: db.path().display().to_string(),
                    source,
                })?;
        }
        Ok(())
    }

    /// What RocksDB reports for the stores open now and the shared cache.
    pub fn memory_usage(&self) -> Result<RocksDbMemoryUsage> {
        let mut open = self.lock_open()?;
        let dbs = Self::live(&mut open);
        let refs: Vec<&DB> = dbs.iter().map(Arc::as_ref).collect();
        let stats =
            ::rocksdb::perf::get_memory_usage_stats(Some(&refs), Some(&[&self.inner.cache]))
                .map_err(|source| Error::RocksDb {
                    store: "memory usage".into(),
                    source,
                })?;
        Ok(RocksDbMemoryUsage {
            open_stores: dbs.len(),
            memtable_bytes: stats.mem_table_total,
            block_cache_bytes: self.inner.cache.get_usage() as u64,
            write_buffer_size: self.write_buffer_size_for(dbs.len()),
        })
    }
}

pub struct RocksDbKeyValueStore {
    name: String,
    path: PathBuf,
    shared: RocksDbShared,
    // None once closed. Readers share the lock; close takes it exclusively.
    db: RwLock<Option<Arc<DB>>>,
    // Serialises writers so that put_if_absent's read-then-write is atomic.
    writer: Mutex<()>,
    write_opts: WriteOptions,
}

impl RocksDbKeyValueStore {
    /// Opens (creating if needed) the store at `path`. A DB that RocksDB reports corrupt is wiped
    /// and recreated: the changelog rebuilds it.
    pub fn open(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        shared: &RocksDbShared,
    ) -> Result<(Self, LocalState)> {
        let name = name.into();
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let existed = path.join("CURRENT").is_file();
        let size = {
            let open = shared.lock_open()?;
            shared.write_buffer_size_for(open.len() + 1)
        };
        let opts = shared.options(size);
        let (db, state) = match DB::open(&opts, &path) {
            Ok(db) if existed => (db, LocalState::Reopened),
            Ok(db) => (db, LocalState::Fresh),
            Err(e) if e.kind() == ::rocksdb::ErrorKind::Corruption => {
                log::warn!(
                    "RocksDB store {name} at {} is corrupt ({e}); wiping it",
                    path.display()
                );
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                let db = DB::open(&opts, &path).map_err(|source| Error::RocksDb {
                    store: name.clone(),
                    source,
                })?;
                (
                    db,
                    LocalState::Recovered {
                        reason: e.to_string(),
                    },
                )
            }
            Err(source) => {
                return Err(Error::RocksDb {
                    store: name,
                    source,
                })
            }
        };
        let db = Arc::new(db);
        shared.register(&db)?;
        Ok((
            RocksDbKeyValueStore {
                name,
                path,
                shared: shared.clone(),
                db: RwLock::new(Some(db)),
                writer: Mutex::new(()),
                write_opts: RocksDbShared::write_options(),
            },
            state,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_db<T>(
        &self,
        f: impl FnOnce(&DB) -> std::result::Result<T, ::rocksdb::Error>,
    ) -> Result<T> {
        let guard = self
            .db
            .read()
            .map_err(|_| Error::LockPoisoned(self.name.clone()))?;
        let db = guard
            .as_ref()
            .ok_or_else(|| Error::StoreClosed(self.name.clone()))?;
        f(db).map_err(|source| self.err(source))
    }

    fn err(&self, source: ::rocksdb::Error) -> Error {
        Error::RocksDb {
            store: self.name.clone(),
            source,
        }
    }

    fn lock_writer(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.writer
            .lock()
            .map_err(|_| Error::LockPoisoned(self.name.clone()))
    }
}

impl StateStore for RocksDbKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    fn flush(&self) -> Result<()> {
        self.with_db(|db| db.flush())
    }

    fn close(&self) -> Result<()> {
        let db = {
            let mut guard = self
                .db
                .write()
                .map_err(|_| Error::LockPoisoned(self.name.clone()))?;
            guard.take()
        };
        let Some(db) = db else { return Ok(()) };
        let flushed = db.flush().map_err(|source| self.err(source));
        self.shared.unregister(&db)?;
        // The last reference: dropping it closes the DB and releases its LOCK file.
        drop(db);
        flushed
    }

    fn restore_batch(&self, records: &[ChangelogRecord]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in records {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        let _w = self.lock_writer()?;
        self.with_db(|db| db.write_opt(batch, &self.write_opts))
    }
}

impl ReadOnlyKeyValueStore for RocksDbKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with_db(|db| db.get(key))
    }

    fn scan(&self, from: Option<&[u8]>, to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        self.with_db(|db| {
            let mode = match from {
                Some(f) => IteratorMode::From(f, Direction::Forward),
                None => IteratorMode::Start,
            };
            for item in db.iterator_opt(mode, ReadOptions::default()) {
                let (k, v) = item?;
                if past_end(&k, to) || visit(&k, &v).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.with_db(|db| db.property_int_value("rocksdb.estimate-num-keys"))
            .map(|n| n.unwrap_or(0))
    }
}

impl KeyValueStore for RocksDbKeyValueStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let _w = self.lock_writer()?;
        self.with_db(|db| db.put_opt(key, value, &self.write_opts))
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let _w = self.lock_writer()?;
        self.with_db(|db| match db.get(key)? {
            Some(existing) => Ok(Some(existing)),
            None => db.put_opt(key, value, &self.write_opts).map(|_| None),
        })
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _w = self.lock_writer()?;
        self.with_db(|db| {
            let old = db.get(key)?;
            if old.is_some() {
                db.delete_opt(key, &self.write_opts)?;
            }
            Ok(old)
        })
    }

    fn put_all(&self, entries: &[crate::KeyValue]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            batch.put(k, v);
        }
        let _w = self.lock_writer()?;
        self.with_db(|db| db.write_opt(batch, &self.write_opts))
    }
}

impl Drop for RocksDbKeyValueStore {
    fn drop(&mut self) {
        // Without a WAL, unflushed memtables are lost unless flushed: a store dropped without
        // close still keeps what it was given.
        if let Err(e) = self.close() {
            log::warn!("closing RocksDB store {} on drop: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_divided_across_open_stores() {
        let shared = RocksDbShared::new(RocksDbConfig {
            memtable_budget_bytes: 8 << 20,
            ..RocksDbConfig::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (a, state) = RocksDbKeyValueStore::open("a", dir.path().join("a"), &shared).unwrap();
        assert_eq!(state, LocalState::Fresh);
        assert_eq!(shared.memory_usage().unwrap().write_buffer_size, 4 << 20);
        let (b, _) = RocksDbKeyValueStore::open("b", dir.path().join("b"), &shared).unwrap();
        let usage = shared.memory_usage().unwrap();
        assert_eq!((usage.open_stores, usage.write_buffer_size), (2, 2 << 20));
        b.close().unwrap();
        drop(b);
        assert_eq!(shared.memory_usage().unwrap().write_buffer_size, 4 << 20);
        drop(a);
        assert_eq!(shared.memory_usage().unwrap().open_stores, 0);
    }

    #[test]
    fn memtables_stay_within_the_budget() {
        let budget = 4 << 20;
        let shared = RocksDbShared::new(RocksDbConfig {
            memtable_budget_bytes: budget,
            ..RocksDbConfig::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<_> = (0..4)
            .map(|i| {
                RocksDbKeyValueStore::open(
                    format!("s{i}"),
                    dir.path().join(format!("s{i}")),
                    &shared,
                )
                .unwrap()
                .0
            })
            .collect();
        let value = vec![7u8; 1000];
        // 16 MB of writes, four times the budget.
        for i in 0..4000u32 {
            for s in &stores {
                s.put(&i.to_be_bytes(), &value).unwrap();
            }
        }
        let usage = shared.memory_usage().unwrap();
        // Arena blocks are allocated ahead of use, so allow RocksDB's own slack of a block.
        assert!(
            usage.memtable_bytes <= budget as u64 * 5 / 4,
            "memtables use {} B, budget {budget} B",
            usage.memtable_bytes
        );
    }

    #[test]
    fn zero_budget_is_rejected() {
        let bad = RocksDbShared::new(RocksDbConfig {
            memtable_budget_bytes: 0,
            ..RocksDbConfig::default()
        });
        assert!(matches!(bad, Err(Error::InvalidConfig(_))));
    }
}
