//! Standby replicas (`num.standby.replicas`): an instance keeps warm copies of the other
//! instance's tasks, may answer stale reads from them within a lag bound, and when the tasks
//! move to it, restores only the changelog tail past its copy — with exact totals after.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;
#[path = "support/dedup_count.rs"]
mod dedup_count;

use common::*;
use dedup_count::{dedup_count_topology, parse_count};
use ks_engine::runtime::admin::partition_for_key;
use ks_engine::stores::StoreKind;
use ks_engine::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

const PARTITIONS: i32 = 4;
const KEYS: usize = 400;

/// The source partitions `s` runs.
fn active(s: &KafkaStreams) -> BTreeSet<i32> {
    s.assigned_partitions()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// The source partitions `s` keeps standby copies of, caught up to within `max_lag`.
fn standbys_within(s: &KafkaStreams, max_lag: u64) -> BTreeSet<i32> {
    s.standby_partitions()
        .into_iter()
        .filter(|p| p.lag.is_some_and(|l| l <= max_lag))
        .map(|p| p.partition)
        .collect()
}

fn count_of(s: &KafkaStreams, key: &str, stale: Option<u64>) -> Option<u64> {
    let store = match stale {
        Some(lag) => s.store_allowing_stale("counts", lag).unwrap(),
        None => s.store("counts").unwrap(),
    };
    store
        .get(key.as_bytes())
        .unwrap()
        .and_then(|v| parse_count(&v))
        .map(|(c, _)| c)
}

/// What the failover of instance `a` to instance `b` showed.
struct Failover {
    /// Changelog records `b` restored for the tasks it took over.
    restored: u64,
    from_standby: bool,
}

fn failover(
    broker: &ks_broker::Broker,
    guarantee: ProcessingGuarantee,
    replicas: usize,
) -> Failover {
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("words"), unique("counts"), unique("standby"));
    create_topics(bs, &[(&input, PARTITIONS), (&output, PARTITIONS)]);
    produce(bs, &input, &keyed(4 * KEYS, KEYS, 0));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path| -> StreamsConfig {
        test_config(&app, bs, dir)
            .with_processing_guarantee(guarantee)
            .with_num_standby_replicas(replicas)
    };
    let topology = || dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap();
    let mut a = KafkaStreams::new(topology(), config(dir_a.path())).unwrap();
    a.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || a
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= (4 * KEYS) as u64));

    let mut b = KafkaStreams::new(topology(), config(dir_b.path())).unwrap();
    b.start().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || active(&a).len() == 2
            && active(&b).len() == 2),
        "the partitions are shared: a {:?}, b {:?}",
        active(&a),
        active(&b)
    );
    // More input while both run, so the copies follow a changelog that moves.
    produce(bs, &input, &keyed(4 * KEYS, KEYS, 4 * KEYS));
    let a_parts = active(&a);
    if replicas > 0 {
        assert!(
            wait_until(Duration::from_secs(60), || standbys_within(&b, 0)
                == a_parts
                && standbys_within(&a, 0) == active(&b)),
            "each instance keeps caught-up copies of the other's tasks: b {:?} of a's {a_parts:?}",
            b.standby_partitions()
        );
        // Stale reads: b answers for a key of a's partitions from its copy, and only when
        // the caller allows it.
        let key = (0..KEYS)
            .map(|k| format!("w{k}"))
            .find(|k| a_parts.contains(&partition_for_key(k.as_bytes(), PARTITIONS)))
            .unwrap();
        assert!(wait_until(Duration::from_secs(30), || count_of(
            &b,
            &key,
            Some(0)
        ) == Some(8)));
        assert_eq!(count_of(&b, &key, None), None, "not an active task of b");
        // The instance metadata lists the copies with their lag.
        let meta = b.local_metadata();
        assert_eq!(
            meta.standby_partitions
                .iter()
                .map(|p| p.partition)
                .collect::<BTreeSet<_>>(),
            a_parts
        );
    } else {
        assert!(wait_until(Duration::from_secs(60), || a
            .metrics()
            .processed
            .load(Ordering::Relaxed)
            + b.metrics().processed.load(Ordering::Relaxed)
            >= (8 * KEYS) as u64));
        assert!(b.standby_partitions().is_empty());
    }
    // The changelog writes of the last commit land before a leaves.
    std::thread::sleep(Duration::from_millis(500));
    a.close().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || active(&b).len() == 4
            && b.state() == ks_engine::StreamsState::Running),
        "b takes every partition"
    );
    // Totals are exact after the failover.
    produce(bs, &input, &keyed(4 * KEYS, KEYS, 8 * KEYS));
    assert!(
        wait_until(Duration::from_secs(60), || (0..KEYS).all(|k| count_of(
            &b,
            &format!("w{k}"),
            None
        ) == Some(12))),
        "every key counted 12 times"
    );
    let restores = b.metrics().task_restores();
    let moved: Vec<_> = restores
        .iter()
        .filter(|(task, _)| {
            let p: i32 = task.split('_').nth(1).unwrap().parse().unwrap();
            a_parts.contains(&p)
        })
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(moved.len(), a_parts.len(), "{restores:?}");
    b.close().unwrap();
    Failover {
        restored: moved.iter().map(|r| r.records).sum(),
        from_standby: moved.iter().all(|r| r.from_standby),
    }
}

#[test]
fn with_a_standby_the_moved_tasks_restore_only_the_tail() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let cold = failover(&broker, ProcessingGuarantee::AtLeastOnce, 0);
    let warm = failover(&broker, ProcessingGuarantee::AtLeastOnce, 1);
    assert!(!cold.from_standby && warm.from_standby);
    // Without a copy the whole changelog of the moved tasks is replayed: one record per
    // count (8 per key); with one, only what the copy had not applied yet.
    assert!(
        cold.restored >= (2 * KEYS) as u64,
        "cold restore replays the changelog ({} records)",
        cold.restored
    );
    assert!(
        warm.restored * 20 <= cold.restored,
        "warm restore {} vs cold {}",
        warm.restored,
        cold.restored
    );
}

#[test]
fn under_exactly_once_on_kafka_a_standby_is_handed_over_with_exact_totals() {
    let broker = ks_broker::Broker::kafka().unwrap();
    let warm = failover(&broker, ProcessingGuarantee::ExactlyOnce, 1);
    assert!(warm.from_standby);
    assert!(
        warm.restored < (KEYS / 2) as u64,
        "only the tail is restored ({} records)",
        warm.restored
    );
}
