//! Restore does not block polling: a restore that takes longer than `max.poll.interval.ms`
//! (100 000 changelog records into a store that applies them slowly) runs in slices between
//! polls, so the member is never evicted; the task starts processing once its store is caught
//! up, and the records that arrived meanwhile are processed then.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::stores::{
    ChangelogRecord, InMemoryKeyValueStore, KeyValueStore, LocalState, ReadOnlyKeyValueStore,
    StateStore, StoreContext, StoreFactory, StoreSpec, Visitor,
};
use ks_engine::{KafkaStreams, StreamsState};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const CHANGELOG_RECORDS: usize = 100_000;

/// An in-memory store that takes 100 µs per restored record: 10 s for the whole changelog.
struct SlowRestore(InMemoryKeyValueStore);

impl StateStore for SlowRestore {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn persistent(&self) -> bool {
        false
    }
    fn flush(&self) -> ks_engine::stores::Result<()> {
        self.0.flush()
    }
    fn close(&self) -> ks_engine::stores::Result<()> {
        self.0.close()
    }
    fn restore_batch(&self, records: &[ChangelogRecord]) -> ks_engine::stores::Result<()> {
        std::thread::sleep(Duration::from_micros(100) * records.len() as u32);
        self.0.restore_batch(records)
    }
}

impl ReadOnlyKeyValueStore for SlowRestore {
    fn get(&self, key: &[u8]) -> ks_engine::stores::Result<Option<Vec<u8>>> {
        self.0.get(key)
    }
    fn scan(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> ks_engine::stores::Result<()> {
        self.0.scan(from, to, visit)
    }
    fn approximate_num_entries(&self) -> ks_engine::stores::Result<u64> {
        self.0.approximate_num_entries()
    }
}

impl KeyValueStore for SlowRestore {
    fn put(&self, k: &[u8], v: &[u8]) -> ks_engine::stores::Result<()> {
        self.0.put(k, v)
    }
    fn put_if_absent(&self, k: &[u8], v: &[u8]) -> ks_engine::stores::Result<Option<Vec<u8>>> {
        self.0.put_if_absent(k, v)
    }
    fn delete(&self, k: &[u8]) -> ks_engine::stores::Result<Option<Vec<u8>>> {
        self.0.delete(k)
    }
}

struct SlowFactory;

impl StoreFactory for SlowFactory {
    fn open(
        &self,
        name: &str,
        _: &StoreContext,
    ) -> ks_engine::stores::Result<(Arc<dyn KeyValueStore>, LocalState)> {
        Ok((
            Arc::new(SlowRestore(InMemoryKeyValueStore::new(name))),
            LocalState::Fresh,
        ))
    }
    fn wipe(&self, _: &str, _: &StoreContext) -> ks_engine::stores::Result<()> {
        Ok(())
    }
}

#[test]
fn a_restore_longer_than_the_poll_interval_keeps_the_member() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("restore"));
    let changelog = format!("{app}-kv-changelog");
    create_topics(bs, &[(&input, 1), (&changelog, 1)]);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for i in 0..CHANGELOG_RECORDS {
        let (k, v) = (format!("k{}", i % 20_000), format!("{i}"));
        loop {
            match p.send(BaseRecord::to(&changelog).partition(0).key(&k).payload(&v)) {
                Ok(()) => break,
                Err(_) => {
                    p.poll(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
    produce(bs, &input, &keyed(10, 10, 0));

    let t = last_value_topology(&input, StoreSpec::custom("kv", Arc::new(SlowFactory)));
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path()).with_max_poll_interval(Duration::from_secs(6));
    let mut streams = KafkaStreams::new(t, config).unwrap();
    streams.start().unwrap();
    // Restoring: not running yet, and nothing processed.
    assert!(wait_until(Duration::from_secs(30), || streams
        .metrics()
        .restored_records
        .load(Ordering::Relaxed)
        > 0
        || streams.state() == StreamsState::Running));
    assert_eq!(streams.state(), StreamsState::Rebalancing);
    assert_eq!(streams.metrics().processed.load(Ordering::Relaxed), 0);
    assert!(wait_until(Duration::from_secs(120), || streams.state()
        == StreamsState::Running));
    assert!(wait_until(Duration::from_secs(30), || streams
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        == 10));
    assert_eq!(
        streams.metrics().restored_records.load(Ordering::Relaxed),
        CHANGELOG_RECORDS as u64
    );
    assert_eq!(
        streams.metrics().rebalances.load(Ordering::Relaxed),
        1,
        "the member was never evicted: one assignment only"
    );
    let store = streams.store("kv").unwrap();
    assert_eq!(store.all().unwrap().len(), 20_000 + 10);
    streams.close().unwrap();
}
