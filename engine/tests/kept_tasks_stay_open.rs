//! Under the range assignor every rebalance revokes every partition (eager). A task whose
//! partition comes back to the same member stays open across it: its in-memory store is not
//! restored from the changelog again — under exactly-once too, where the suspending commit is
//! the transaction that holds the closing processors' last writes.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{KafkaStreams, ProcessingGuarantee};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn topology(input: &str) -> ks_engine::Topology {
    last_value_topology(input, StoreSpec::new("kv", StoreKind::InMemory))
}

fn kept_task_is_not_restored(guarantee: ProcessingGuarantee) {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("keep"));
    create_topics(bs, &[(&input, 2)]);
    produce(bs, &input, &keyed(400, 40, 0));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path| {
        let mut c = test_config(&app, bs, dir).with_processing_guarantee(guarantee);
        c.assignment_strategy = Some("range".into());
        c
    };
    let mut a = KafkaStreams::new(topology(&input), config(dir_a.path())).unwrap();
    a.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || a
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= 400));
    assert_eq!(a.metrics().restored_records.load(Ordering::Relaxed), 0);
    // Let the changelog writes land and be committed before the rebalance.
    std::thread::sleep(Duration::from_millis(500));

    let mut b = KafkaStreams::new(topology(&input), config(dir_b.path())).unwrap();
    b.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || a
        .assigned_partitions()
        .len()
        == 1
        && b.assigned_partitions().len() == 1));
    // b restored the partition it took; a kept the other one open.
    assert!(wait_until(Duration::from_secs(30), || b
        .metrics()
        .restored_records
        .load(Ordering::Relaxed)
        > 0));
    assert_eq!(
        a.metrics().restored_records.load(Ordering::Relaxed),
        0,
        "the kept task was not restored again"
    );
    let kept = &a.assigned_partitions()[0];
    let store = a.store("kv").unwrap();
    let keys = store.all().unwrap().len();
    assert!(
        keys > 0,
        "the kept task's store still holds its keys ({kept:?})"
    );
    b.close().unwrap();
    a.close().unwrap();
}

#[test]
fn a_task_kept_across_an_eager_rebalance_is_not_restored_again() {
    kept_task_is_not_restored(ProcessingGuarantee::AtLeastOnce);
}

#[test]
fn under_exactly_once_a_kept_task_is_not_restored_again() {
    kept_task_is_not_restored(ProcessingGuarantee::ExactlyOnce);
}
