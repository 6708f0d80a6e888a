//! put and get per store, side by side with the raw rocksdb crate doing the same (same options,
//! same shared-cache settings, WAL off), so the table in stores/README.md is of ratios against a
//! baseline measured in the same run.
//!
//! cargo bench -p ks-stores --bench stores

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ks_stores::*;

const KEYS: u64 = 100_000;
const VALUE: [u8; 100] = [42; 100];

fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key-000000000000";
    let digits = format!("{:012}", i % KEYS);
    k[4..].copy_from_slice(digits.as_bytes());
    k
}

// Spreads reads over the key space instead of walking it in order.
fn scattered(i: u64) -> u64 {
    i.wrapping_mul(7919) % KEYS
}

struct NullSink;

impl ChangelogSink for NullSink {
    fn send(&self, _: &str, _: i32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        black_box((key, value));
        Ok(())
    }
}

enum Subject {
    Raw(::rocksdb::DB, ::rocksdb::WriteOptions),
    Store(Arc<dyn KeyValueStore>),
}

impl Subject {
    fn put(&self, k: &[u8], v: &[u8]) {
        match self {
            Subject::Raw(db, w) => db.put_opt(k, v, w).expect("raw put"),
            Subject::Store(s) => s.put(k, v).expect("store put"),
        }
    }

    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        match self {
            Subject::Raw(db, _) => db.get(k).expect("raw get"),
            Subject::Store(s) => s.get(k).expect("store get"),
        }
    }
}

fn subjects(dir: &std::path::Path) -> Vec<(&'static str, Subject)> {
    let config = RocksDbConfig::default();
    // One open store gets half the memtable budget (two memtables); the baseline gets the same.
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
    vec![
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
    ]
}

fn put_and_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let subjects = subjects(dir.path());
    for (_, s) in &subjects {
        for i in 0..KEYS {
            s.put(&key(i), &VALUE);
        }
    }

    let mut group = c.benchmark_group("put");
    group.throughput(Throughput::Elements(1));
    for (name, s) in &subjects {
        let mut i = 0u64;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i += 1;
                s.put(&key(i), &VALUE);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    for (name, s) in &subjects {
        let mut i = 0u64;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i += 1;
                black_box(s.get(&key(scattered(i))))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = put_and_get
}
criterion_main!(benches);
