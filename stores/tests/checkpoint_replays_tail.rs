//! A persistent store reopened with a checkpoint restores only the changelog records after it;
//! a store that cannot be trusted (in-memory, wiped) restores everything despite the checkpoint.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::sync::Arc;

use common::*;
use ks_stores::*;

/// Writes 100 records, commits (flush, acks, checkpoint), writes 50 more and "crashes" (drops
/// without checkpoint), then adds 20 records to the changelog that the store never saw.
/// Returns the checkpointed offset.
fn commit_then_crash(
    bootstrap: &str,
    sink: &Arc<KafkaChangelogSink>,
    spec: &StoreSpec,
    ctx: &StoreContext,
) -> i64 {
    let topic = ctx.changelog_topic(&spec.name);
    create_changelog(bootstrap, &topic, 2);
    let opened = spec.open(ctx, Some(sink.clone())).unwrap();
    for i in 0..100 {
        opened.store.put(&key(i), &value(i, 0)).unwrap();
    }
    // Kafka Streams' commit order: flush the store, wait for the acks, then checkpoint.
    opened.store.flush().unwrap();
    let acked = sink.flush().unwrap()[&(topic.clone(), ctx.partition)];
    let mut checkpoint = Checkpoint::read(ctx.checkpoint_path().unwrap()).unwrap();
    checkpoint.set(topic.clone(), ctx.partition, acked);
    checkpoint.write(ctx.checkpoint_path().unwrap()).unwrap();

    for i in 0..50 {
        opened.store.put(&key(i), &value(i, 1)).unwrap();
    }
    sink.flush().unwrap();
    drop(opened);
    let lost: Vec<_> = (1000..1020).map(|i| (key(i), Some(value(i, 0)))).collect();
    produce(bootstrap, &topic, ctx.partition, &lost);
    acked
}

fn assert_final_state(store: &dyn ReadOnlyKeyValueStore, kind: StoreKind) {
    assert_eq!(store.all().unwrap().len(), 120, "{kind}");
    assert_eq!(store.get(&key(7)).unwrap(), Some(value(7, 1)), "{kind}");
    assert_eq!(store.get(&key(77)).unwrap(), Some(value(77, 0)), "{kind}");
    assert_eq!(
        store.get(&key(1010)).unwrap(),
        Some(value(1010, 0)),
        "{kind}"
    );
}

#[test]
fn reopened_persistent_store_replays_only_the_tail() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let sink = Arc::new(KafkaChangelogSink::new(bootstrap).unwrap());
    for kind in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path(), 1);
        let spec = StoreSpec::new(unique("tail"), kind);
        let checkpointed = commit_then_crash(bootstrap, &sink, &spec, &ctx);
        assert_eq!(checkpointed, 99);

        let reopened = spec.open(&ctx, Some(sink.clone())).unwrap();
        assert_eq!(reopened.local_state, LocalState::Reopened, "{kind}");
        let checkpoint = Checkpoint::read(ctx.checkpoint_path().unwrap()).unwrap();
        assert_eq!(reopened.restore_after(&checkpoint), Some(99), "{kind}");
        let stats = reopened
            .restore(&RestoreConfig::new(bootstrap), &checkpoint)
            .unwrap()
            .unwrap();
        // The 50 writes after the checkpoint and the 20 the store never saw; not the first 100.
        assert_eq!(stats.records, 70, "{kind}");
        assert_eq!(stats.checkpoint_offset(), Some(169), "{kind}");
        assert_final_state(reopened.store.as_ref(), kind);
    }
}

#[test]
fn untrusted_stores_ignore_the_checkpoint() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let sink = Arc::new(KafkaChangelogSink::new(bootstrap).unwrap());
    for (kind, wipe) in [(StoreKind::InMemory, false), (StoreKind::RocksDb, true)] {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path(), 0);
        let spec = StoreSpec::new(unique("untrusted"), kind);
        commit_then_crash(bootstrap, &sink, &spec, &ctx);
        if wipe {
            spec.wipe(&ctx).unwrap();
        }
        let reopened = spec.open(&ctx, Some(sink.clone())).unwrap();
        assert_eq!(reopened.local_state, LocalState::Fresh, "{kind}");
        let checkpoint = Checkpoint::read(ctx.checkpoint_path().unwrap()).unwrap();
        assert!(!checkpoint.is_empty());
        assert_eq!(reopened.restore_after(&checkpoint), None, "{kind}");
        let stats = reopened
            .restore(&RestoreConfig::new(bootstrap), &checkpoint)
            .unwrap()
            .unwrap();
        assert_eq!(stats.records, 170, "{kind}");
        assert_final_state(reopened.store.as_ref(), kind);
    }
}

#[test]
fn restore_after_an_up_to_date_checkpoint_applies_nothing() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = unique("uptodate");
    create_changelog(bootstrap, &topic, 1);
    let offsets = produce(bootstrap, &topic, 0, &[(key(1), Some(value(1, 0)))]);
    let store = InMemoryKeyValueStore::new("s");
    let config = RestoreConfig::new(bootstrap);
    let stats = restore(&store, &config, &topic, 0, Some(offsets[0])).unwrap();
    assert_eq!((stats.records, stats.end_offset), (0, 1));
    assert_eq!(stats.checkpoint_offset(), Some(0));
}
