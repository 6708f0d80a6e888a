//! Lost partitions and fencing are recovered, not fatal: a member that stalls past
//! `max.poll.interval.ms` is dropped from the group and its partitions are lost; when it resumes
//! it closes those tasks dirty, rejoins and goes on, the instance never enters ERROR, and the
//! (replay-safe) totals are exact. Under exactly-once the stall also outlives the transaction
//! timeout, so the coordinator aborts the member's transaction and fences its producer: the
//! thread replaces its producer, rejoins, and the (plain, not replay-safe) counts are exact.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;
#[path = "support/dedup_count.rs"]
mod dedup_count;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    KafkaStreams, ProcessingGuarantee, Processor, ProcessorContext, Record, StreamsState, Topology,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts per key — skipping replays (a record at or below the key's last counted offset) when
/// `dedup` — and stalls once, for `stall`, on the first record whose value is "stall".
struct StallingCount {
    stalled: Arc<AtomicBool>,
    stall: Duration,
    dedup: bool,
}

impl Processor for StallingCount {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        if r.value.as_deref() == Some(b"stall") && !self.stalled.swap(true, Ordering::SeqCst) {
            std::thread::sleep(self.stall);
        }
        let key = r.key.clone().unwrap_or_default();
        let offset = ctx.offset().unwrap_or(-1);
        let store = ctx.store("counts")?;
        let (count, last) = store
            .get(&key)?
            .and_then(|v| dedup_count::parse_count(&v))
            .unwrap_or((0, -1));
        if offset > last || !self.dedup {
            store.put(&key, format!("{}:{offset}", count + 1).as_bytes())?;
        }
        Ok(())
    }
}

fn stall_and_recover(
    broker: &ks_broker::Broker,
    guarantee: ProcessingGuarantee,
    stall: Duration,
    dedup: bool,
) -> (KafkaStreams, tempfile::TempDir) {
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("stall"));
    create_topics(bs, &[(&input, 2)]);
    let mut records = keyed(100, 4, 0);
    records.push(("w0".into(), "stall".into()));
    records.extend(keyed(100, 4, 100));
    produce(bs, &input, &records);
    let stalled = Arc::new(AtomicBool::new(false));
    let s = stalled.clone();
    let mut t = Topology::new();
    t.add_source("in", &[&input])
        .unwrap()
        .add_processor(
            "count",
            supplier(move || StallingCount {
                stalled: s.clone(),
                stall,
                dedup,
            }),
            &["in"],
        )
        .unwrap()
        .add_state_store(StoreSpec::new("counts", StoreKind::RocksDb), &["count"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path())
        .with_processing_guarantee(guarantee)
        .with_max_poll_interval(Duration::from_secs(7));
    let mut streams = KafkaStreams::new(t, config).unwrap();
    streams.start().unwrap();
    let count = |k: &str| {
        streams
            .store("counts")
            .unwrap()
            .get(k.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| dedup_count::parse_count(&v))
            .map(|(c, _)| c)
    };
    let done = wait_until(Duration::from_secs(120), || {
        (1..4).all(|k| count(&format!("w{k}")) == Some(50)) && count("w0") == Some(51)
    });
    assert!(stalled.load(Ordering::SeqCst), "the member stalled");
    assert!(
        done,
        "counts {:?}, state {:?}",
        (0..4).map(|k| count(&format!("w{k}"))).collect::<Vec<_>>(),
        streams.state()
    );
    // Nothing more arrives later (a late duplicate would show here).
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        (1..4).all(|k| count(&format!("w{k}")) == Some(50)) && count("w0") == Some(51),
        "2 s later: counts {:?}, state {:?}",
        (0..4).map(|k| count(&format!("w{k}"))).collect::<Vec<_>>(),
        streams.state()
    );
    assert_eq!(streams.state(), StreamsState::Running);
    assert!(
        streams.metrics().rebalances.load(Ordering::Relaxed) >= 2,
        "it rejoined"
    );
    (streams, dir)
}

#[test]
fn a_member_stalled_past_max_poll_interval_rejoins_and_completes() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let (mut streams, _dir) = stall_and_recover(
        &broker,
        ProcessingGuarantee::AtLeastOnce,
        Duration::from_secs(10),
        true,
    );
    streams.close().unwrap();
}

#[test]
fn an_exactly_once_member_fenced_after_a_stall_rejoins_with_exact_counts() {
    // Apache Kafka: its coordinator aborts the timed-out transaction and bumps the epoch.
    let broker = ks_broker::Broker::kafka().unwrap();
    // Past the transaction timeout (10 s) and the coordinator's abort sweep (1 s here).
    let (mut streams, _dir) = stall_and_recover(
        &broker,
        ProcessingGuarantee::ExactlyOnce,
        Duration::from_secs(16),
        false,
    );
    assert!(
        streams.metrics().task_migrations.load(Ordering::Relaxed) >= 1,
        "the fenced thread replaced its producer and rejoined"
    );
    streams.close().unwrap();
}
