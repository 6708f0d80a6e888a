//! Lost partitions are recovered, not fatal: a member that stalls past `max.poll.interval.ms`
//! is dropped from the group and its partitions are lost; when it resumes it closes those tasks
//! dirty, rejoins and goes on, the instance never enters ERROR, and the (replay-safe) totals are
//! exact.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;
#[path = "support/dedup_count.rs"]
mod dedup_count;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{KafkaStreams, Processor, ProcessorContext, Record, StreamsState, Topology};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts per key, skipping replays (a record at or below the key's last counted offset); stalls
/// once, for longer than the poll interval allows, on the first record whose value is "stall".
struct StallingCount {
    stalled: Arc<AtomicBool>,
}

impl Processor for StallingCount {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        if r.value.as_deref() == Some(b"stall") && !self.stalled.swap(true, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_secs(10));
        }
        let key = r.key.clone().unwrap_or_default();
        let offset = ctx.offset().unwrap_or(-1);
        let store = ctx.store("counts")?;
        let (count, last) = store
            .get(&key)?
            .and_then(|v| dedup_count::parse_count(&v))
            .unwrap_or((0, -1));
        if offset > last {
            store.put(&key, format!("{}:{offset}", count + 1).as_bytes())?;
        }
        Ok(())
    }
}

#[test]
fn a_member_stalled_past_max_poll_interval_rejoins_and_completes() {
    let broker = ks_broker::Broker::tansu().unwrap();
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
            supplier(move || StallingCount { stalled: s.clone() }),
            &["in"],
        )
        .unwrap()
        .add_state_store(StoreSpec::new("counts", StoreKind::RocksDb), &["count"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path()).with_max_poll_interval(Duration::from_secs(7));
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
    let done = wait_until(Duration::from_secs(90), || {
        (1..4).all(|k| count(&format!("w{k}")) == Some(50)) && count("w0") == Some(51)
    });
    assert!(stalled.load(Ordering::SeqCst), "the member stalled");
    assert!(
        done,
        "counts {:?}, state {:?}",
        (0..4).map(|k| count(&format!("w{k}"))).collect::<Vec<_>>(),
        streams.state()
    );
    assert_eq!(streams.state(), StreamsState::Running);
    assert!(
        streams.metrics().rebalances.load(Ordering::Relaxed) >= 2,
        "it rejoined"
    );
    streams.close().unwrap();
}
