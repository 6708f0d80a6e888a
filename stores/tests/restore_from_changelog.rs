//! Every store rebuilds from its changelog alone: writes go to the compacted
//! `<application.id>-<store>-changelog` partition of the task, deletes as tombstones, and restore
//! applies them up to the partition's end.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::sync::Arc;

use common::*;
use ks_stores::*;

#[test]
fn writes_are_logged_and_every_store_restores_from_them() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let sink = Arc::new(KafkaChangelogSink::new(bootstrap).unwrap());
    let partition = 2;
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path(), partition);
        let spec = StoreSpec::new(unique("logged"), kind);
        let topic = ctx.changelog_topic(&spec.name);
        create_changelog(bootstrap, &topic, 4);

        let opened = spec.open(&ctx, Some(sink.clone())).unwrap();
        for i in 0..500 {
            opened.store.put(&key(i), &value(i, 0)).unwrap();
        }
        for i in (0..500).step_by(5) {
            opened.store.delete(&key(i)).unwrap();
        }
        assert_eq!(
            opened.store.put_if_absent(&key(1), b"ignored").unwrap(),
            Some(value(1, 0))
        );
        assert_eq!(
            opened.store.put_if_absent(&key(0), &value(0, 9)).unwrap(),
            None
        );
        opened.store.flush().unwrap();
        let acked = sink.flush().unwrap();
        // 500 puts, 100 tombstones, one put_if_absent that wrote.
        assert_eq!(acked.get(&(topic.clone(), partition)), Some(&600), "{kind}");
        let expected = opened.store.all().unwrap();
        assert_eq!(expected.len(), 401, "{kind}");
        drop(opened);

        // The local state is gone: only the changelog is left.
        spec.wipe(&ctx).unwrap();
        let rebuilt = spec.open(&ctx, Some(sink.clone())).unwrap();
        assert!(!rebuilt.local_state.is_trusted(), "{kind}");
        let stats = rebuilt
            .restore(&RestoreConfig::new(bootstrap), &Checkpoint::new())
            .unwrap()
            .unwrap();
        assert_eq!((stats.records, stats.end_offset), (601, 601), "{kind}");
        assert_eq!(stats.checkpoint_offset(), Some(600));
        assert_eq!(rebuilt.store.all().unwrap(), expected, "{kind}");
        assert_eq!(
            rebuilt.store.get(&key(5)).unwrap(),
            None,
            "{kind}: delete lost"
        );
        assert_eq!(
            rebuilt.store.get(&key(0)).unwrap(),
            Some(value(0, 9)),
            "{kind}"
        );
    }
}

#[test]
fn restore_from_a_changelog_written_by_another_producer() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = unique("raw-changelog");
    create_changelog(bootstrap, &topic, 1);
    // Several records per batch, overwrites, tombstones, a tombstone for a key never written,
    // and an empty (not null) value.
    let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for round in 0..3 {
        for i in 0..300 {
            records.push((key(i), Some(value(i, round))));
        }
    }
    for i in 100..200 {
        records.push((key(i), None));
    }
    records.push((key(9999), None));
    records.push((key(7777), Some(Vec::new())));
    let offsets = produce(bootstrap, &topic, 0, &records);
    assert_eq!(offsets.last(), Some(&(records.len() as i64 - 1)));

    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = kind.open("raw", &ctx(dir.path(), 0)).unwrap();
        let config = RestoreConfig {
            batch_size: 128,
            ..RestoreConfig::new(bootstrap)
        };
        let stats = restore(store.as_ref(), &config, &topic, 0, None).unwrap();
        assert_eq!(stats.records, records.len() as u64, "{kind}");
        assert_eq!(stats.end_offset, records.len() as i64, "{kind}");
        assert_eq!(store.all().unwrap().len(), 201, "{kind}");
        assert_eq!(store.get(&key(150)).unwrap(), None, "{kind}");
        assert_eq!(store.get(&key(250)).unwrap(), Some(value(250, 2)), "{kind}");
        assert_eq!(store.get(&key(7777)).unwrap(), Some(Vec::new()), "{kind}");
    }
}

#[test]
fn an_empty_changelog_restores_nothing_and_finishes() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = unique("empty-changelog");
    create_changelog(bootstrap, &topic, 2);
    let store = InMemoryKeyValueStore::new("empty");
    let started = std::time::Instant::now();
    let stats = restore(&store, &RestoreConfig::new(bootstrap), &topic, 1, None).unwrap();
    assert_eq!((stats.records, stats.end_offset), (0, 0));
    assert_eq!(stats.checkpoint_offset(), None);
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_missing_changelog_fails_after_the_stall_timeout() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let store = InMemoryKeyValueStore::new("s");
    let config = RestoreConfig {
        stall_timeout: std::time::Duration::from_secs(2),
        ..RestoreConfig::new(broker.bootstrap_servers())
    };
    let result = restore(&store, &config, &unique("missing"), 0, None);
    assert!(
        matches!(result, Err(Error::RestoreStalled { offset: 0, .. })),
        "{result:?}"
    );
}

/// Restores on pooled consumers: a consumer is reused after its restore ended (unassigned and
/// given back), reads only its new partition from the given offset and stops at that
/// partition's end; spares are prepared ahead of need.
#[test]
fn pooled_restore_consumers_are_reused_and_read_only_their_partition() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = unique("pooled-changelog");
    create_changelog(bootstrap, &topic, 2);
    let first: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        (0..50).map(|i| (key(i), Some(value(i, 0)))).collect();
    let second: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        (100..130).map(|i| (key(i), Some(value(i, 1)))).collect();
    produce(bootstrap, &topic, 0, &first);
    produce(bootstrap, &topic, 1, &second);

    let pool = RestoreConsumers::new(RestoreConfig::new(bootstrap), 1);
    pool.prepare();
    let waited = std::time::Instant::now();
    while pool.idle() < 1 && waited.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(pool.idle(), 1, "a spare consumer is prepared");

    let run = |partition: i32, checkpoint: Option<i64>| {
        let store = InMemoryKeyValueStore::new("pooled");
        let mut restorer = Restorer::start_pooled(&pool, &topic, partition, checkpoint).unwrap();
        let stats = loop {
            if let Some(stats) = restorer
                .step(&store, std::time::Duration::from_millis(50))
                .unwrap()
            {
                break stats;
            }
        };
        drop(restorer);
        (stats, store)
    };
    let (stats, store) = run(0, Some(9));
    assert_eq!((stats.records, stats.end_offset), (40, 50));
    assert_eq!(
        store.get(&key(5)).unwrap(),
        None,
        "read from the checkpoint on"
    );
    assert_eq!(store.get(&key(10)).unwrap(), Some(value(10, 0)));
    // The consumer came back; the next restore reads partition 1 only.
    let waited = std::time::Instant::now();
    while pool.idle() < 1 && waited.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(pool.idle(), 1);
    let (stats, store) = run(1, None);
    assert_eq!((stats.records, stats.end_offset), (30, 30));
    assert_eq!(store.all().unwrap().len(), 30);
    assert_eq!(store.get(&key(10)).unwrap(), None, "nothing of partition 0");
    assert_eq!(store.get(&key(120)).unwrap(), Some(value(120, 1)));
    assert!(pool.idle() <= 1, "no more idle consumers than asked for");
}
