//! Exactly-once over dirty state: a task whose persistent store has no valid checkpoint (the
//! instance did not close cleanly) wipes its local store and restores it from the changelog, so
//! a local write the changelog does not have (as an aborted transaction's could be) does not
//! survive.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;
#[path = "support/dedup_count.rs"]
mod dedup_count;

use common::*;
use dedup_count::dedup_count_topology;
use ks_engine::stores::{StoreContext, StoreKind, StoreSpec};
use ks_engine::{KafkaStreams, ProcessingGuarantee};
use std::time::Duration;

#[test]
fn a_store_without_checkpoint_is_rebuilt_from_its_changelog() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("eos-wipe"));
    create_topics(bs, &[(&input, 1), (&output, 1)]);
    produce(bs, &input, &keyed(20, 2, 0));
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        test_config(&app, bs, dir.path())
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnce)
    };
    let topology = || dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap();
    let mut streams = KafkaStreams::new(topology(), config()).unwrap();
    streams.start().unwrap();
    let count = |s: &KafkaStreams, k: &str| s.store("counts").unwrap().get(k.as_bytes()).unwrap();
    assert!(wait_until(Duration::from_secs(60), || count(
        &streams, "w0"
    )
    .is_some()
        && count(&streams, "w1").is_some()
        && committed(bs, &app, &input, 1) == vec![20]));
    streams.close().unwrap();
    drop(streams);

    // As after a crash: no checkpoint, and a local write the changelog never had.
    let ctx = StoreContext::new(dir.path(), &app, "0_0", 0);
    std::fs::remove_file(ctx.checkpoint_path().unwrap()).unwrap();
    let local = StoreSpec::new("counts", StoreKind::RocksDb)
        .with_logging(false)
        .open(&ctx, None)
        .unwrap();
    local.store.put(b"ghost", b"1:0").unwrap();
    local.store.flush().unwrap();
    local.store.close().unwrap();
    drop(local);

    let mut streams = KafkaStreams::new(topology(), config()).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || count(
        &streams, "w0"
    )
    .is_some()));
    assert_eq!(
        count(&streams, "ghost"),
        None,
        "the local-only write was wiped"
    );
    assert_eq!(count(&streams, "w0").as_deref(), Some(&b"10:18"[..]));
    streams.close().unwrap();
}
