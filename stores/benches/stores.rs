//! put and get per store with criterion, side by side with the raw rocksdb crate doing the same
//! (same options and shared-cache settings, WAL off). For the overhead ratios under a noisy,
//! shared machine see benches/overhead.rs, which interleaves the subjects.
//!
//! cargo bench -p ks-stores --bench stores
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use support::*;

fn put_and_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = keys();
    let subjects = subjects(dir.path(), &keys);

    let mut group = c.benchmark_group("put");
    group.throughput(Throughput::Elements(1));
    for (name, s) in &subjects {
        let mut i = 0usize;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i += 1;
                s.put(&keys[i % KEYS], &VALUE);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    for (name, s) in &subjects {
        let mut i = 0usize;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i += 1;
                black_box(s.get(&keys[scattered(i)]))
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
