//! Restore rate (records/s) per store from a real broker changelog: a local broker, a compacted
//! changelog of RECORDS records (16-byte keys, 100-byte values), restored into a fresh store of
//! each kind, plus a store that drops what it is given, to show what the consumer alone reaches.
//!
//! cargo bench -p ks-stores --bench restore            (KS_RESTORE_RECORDS=200000 by default)
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use ks_stores::*;

/// Applies nothing: the consumer's rate, the ceiling of every store's.
struct NullStore;

impl StateStore for NullStore {
    fn name(&self) -> &str {
        "null"
    }
    fn persistent(&self) -> bool {
        false
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn close(&self) -> Result<()> {
        Ok(())
    }
    fn restore_batch(&self, records: &[ChangelogRecord]) -> Result<()> {
        std::hint::black_box(records);
        Ok(())
    }
}

fn main() {
    // `cargo bench` passes libtest flags; `--list` (from `cargo test --benches`) must not run it.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let records: u32 = std::env::var("KS_RESTORE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let broker = ks_broker::Broker::tansu().expect("broker");
    let bootstrap = broker.bootstrap_servers();
    let topic = common::unique("bench-restore");
    common::create_changelog(bootstrap, &topic, 1);
    let value = vec![42u8; 100];
    let started = std::time::Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(50_000) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| (format!("key-{i:012}").into_bytes(), Some(value.clone())))
            .collect();
        common::produce(bootstrap, &topic, 0, &batch);
    }
    println!(
        "changelog {topic}: {records} records produced in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let config = RestoreConfig::new(bootstrap);
    println!("| store | records | seconds | records/s |");
    println!("| --- | ---: | ---: | ---: |");
    let run = |name: &str, store: &dyn StateStore| {
        let stats = restore(store, &config, &topic, 0, None).expect("restore");
        assert_eq!(stats.records, u64::from(records), "{name} restored too few");
        println!(
            "| {name} | {} | {:.2} | {:.0} |",
            stats.records,
            stats.seconds,
            stats.records_per_second()
        );
    };
    run("null (consumer only)", &NullStore);
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = StoreContext::new(dir.path(), "bench", "0_0", 0);
        let (store, _): (Arc<dyn KeyValueStore>, _) = kind.open("restore", &ctx).expect("open");
        run(&kind.to_string(), store.as_ref());
    }
}
