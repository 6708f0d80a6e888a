//! The overhead of each store over the raw rocksdb crate, measured A/B: every round times each
//! subject for the same operations in turn, so background load on a shared machine (and
//! RocksDB's own flushes) hits all of them alike. Prints a markdown table of median ns/op and
//! the ratio to raw rocksdb.
//!
//! cargo bench -p ks-stores --bench overhead       (KS_BENCH_ROUNDS=15, KS_BENCH_OPS=100000)
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod support;

use std::hint::black_box;
use std::time::Instant;

use support::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let rounds = env("KS_BENCH_ROUNDS", 15).max(1);
    let ops = env("KS_BENCH_OPS", 100_000).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = keys();
    let subjects = subjects(dir.path(), &keys);

    println!("| op | subject | median ns/op | vs raw rocksdb |");
    println!("| --- | --- | ---: | ---: |");
    for op in ["put", "get"] {
        let mut samples = vec![Vec::new(); subjects.len()];
        let mut cursor = 0usize;
        for round in 0..rounds {
            // Rotate who goes first, so no subject always runs right after another's writes.
            for n in 0..subjects.len() {
                let which = (n + round) % subjects.len();
                let s = &subjects[which].1;
                let started = Instant::now();
                for i in cursor..cursor + ops {
                    match op {
                        "put" => s.put(&keys[i % KEYS], &VALUE),
                        _ => {
                            black_box(s.get(&keys[scattered(i)]));
                        }
                    }
                }
                samples[which].push(started.elapsed().as_nanos() as f64 / ops as f64);
            }
            cursor += ops;
        }
        let medians: Vec<f64> = samples.into_iter().map(median).collect();
        for ((name, _), m) in subjects.iter().zip(&medians) {
            println!(
                "| {op} | {name} | {m:.0} | {:+.1} % |",
                (m / medians[0] - 1.0) * 100.0
            );
        }
    }
}
