//! What the benches measure: the raw rocksdb crate and each store, opened with the same
//! settings, behind one `put`/`get` interface.
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::Arc;

use ks_stores::*;

pub const KEYS: usize = 100_000;
pub const VALUE: [u8; 100] = [42; 100];

/// 16-byte keys, made once so that key formatting is not part of any measurement.
pub fn keys() -> Vec<[u8; 16]> {
    (0..KEYS)
        .map(|i| {
            let mut k = [0u8; 16];
            k.copy_from_slice(format!("key-{i:012}").as_bytes());
            k
        })
        .collect()
}

/// Spreads reads over the key space instead of walking it in order.
pub fn scattered(i: usize) -> usize {
    i.wrapping_mul(7919) % KEYS
}

struct NullSink;

impl ChangelogSink for NullSink {
    fn send(&self, _: &str, _: i32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        black_box((key, value));
        Ok(())
    }
}

pub enum Subject {
    Raw(::rocksdb::DB, ::rocksdb::WriteOptions),
    Store(Arc<dyn KeyValueStore>),
}

impl Subject {
    pub fn put(&self, k: &[u8], v: &[u8]) {
        match self {
            Subject::Raw(db, w) => db.put_opt(k, v, w).expect("raw put"),
            Subject::Store(s) => s.put(k, v).expect("store put"),
        }
    }

    pub fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        match self {
            Subject::Raw(db, _) => db.get(k).expect("raw get"),
            Subject::Store(s) => s.get(k).expect("store get"),
        }
    }
}

/// The subjects, each preloaded with every key; the raw baseline first.
pub fn subjects(dir: &std::path::Path, keys: &[[u8; 16]]) -> Vec<(&'static str, Subject)> {
    let config = RocksDbConfig::default();
    // One open store gets the memtable budget over its memtables; the baseline gets the same.
    let write_buffer = config.memtable_budget_bytes / config.max_write_buffer_number as usize;
    let raw_shared = RocksDbShared::new(config.clone()).expect("shared");
    let raw = ::rocksdb::DB::open(&raw_shared.options(write_buffer), dir.join("raw"))
        .expect("raw rocksdb");
    let shared = RocksDbShared::new(config).expect("shared");
    let (rocks, _) =
        RocksDbKeyValueStore::open("rocks", dir.join("rocks"), &shared).expect("rocks");
    let rocks: Arc<dyn KeyValueStore> = Arc::new(rocks);
    let logged: Arc<dyn KeyValueStore> = Arc::new(ChangeLoggingStore::new(
        rocks.clone(),
        Arc::new(NullSink),
        "bench-changelog",
        0,
    ));
    let (file, _) = FileKeyValueStore::open("file", dir.join("file"), CompactionPolicy::default())
        .expect("file");
    let subjects = vec![
        (
            "raw-rocksdb",
            Subject::Raw(raw, RocksDbShared::write_options()),
        ),
        ("rocksdb-store", Subject::Store(rocks)),
        ("rocksdb-store+changelog(null sink)", Subject::Store(logged)),
        ("file-store", Subject::Store(Arc::new(file))),
        (
            "in-memory-store",
            Subject::Store(Arc::new(InMemoryKeyValueStore::new("mem"))),
        ),
    ];
    for (_, s) in &subjects {
        for k in keys {
            s.put(k, &VALUE);
        }
    }
    subjects
}
