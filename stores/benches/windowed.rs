//! Windowed aggregation throughput per backend: a tumbling 10 s windowed count (fetch the
//! window, add one, put it back) over 1 000 keys with stream time advancing 1 ms per record,
//! retention 1 min, changelogged to a sink that drops the records. Criterion reports
//! records/s per backend.
//!
//! cargo bench -p ks-stores --bench windowed
#![allow(clippy::unwrap_used)] // a failed unwrap in a bench is a failed bench

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ks_stores::*;

const KEYS: usize = 1_000;
const WINDOW: i64 = 10_000;

struct NullSink;

impl ChangelogSink for NullSink {
    fn send(&self, _: &str, _: i32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        black_box((key, value));
        Ok(())
    }
}

fn windowed_count(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = StoreContext::new(dir.path(), "bench", "0_0", 0);
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("key-{i:06}").into_bytes())
        .collect();
    let sink: Arc<dyn ChangelogSink> = Arc::new(NullSink);
    let mut group = c.benchmark_group("windowed_count");
    group.throughput(Throughput::Elements(1));
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let opened = StoreSpec::new(format!("counts-{kind}"), kind)
            .open(&ctx, Some(sink.clone()))
            .unwrap();
        let store = opened
            .window_store(WindowStoreConfig::new(60_000, false))
            .unwrap();
        let mut ts = 0i64;
        group.bench_function(BenchmarkId::from_parameter(kind), |b| {
            b.iter(|| {
                ts += 1;
                let key = &keys[(ts as usize).wrapping_mul(7919) % KEYS];
                let start = ts - ts % WINDOW;
                let count = store
                    .fetch(key, start)
                    .unwrap()
                    .and_then(|v| v.try_into().ok())
                    .map_or(0, i64::from_be_bytes);
                store
                    .put(key, start, Some(&(count + 1).to_be_bytes()))
                    .unwrap();
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
    targets = windowed_count
}
criterion_main!(benches);
