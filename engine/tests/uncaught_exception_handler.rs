//! The uncaught exception handler: replace-thread starts a new stream thread in place of a
//! failed one and processing completes; shutdown-application stops every instance of the
//! application, not only the failing one.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    Error, KafkaStreams, Processor, ProcessorContext, Record, StreamsState, Topology,
    UncaughtExceptionHandling,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Stores each record; fails once on the first "poison" it meets (anywhere in the process).
struct FailOnce {
    failed: Arc<AtomicBool>,
}

impl Processor for FailOnce {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        if r.value.as_deref() == Some(b"poison") && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(Error::processing("fail-once", "poison"));
        }
        let key = r.key.clone().unwrap_or_default();
        ctx.store("kv")?.put(&key, &r.value.unwrap_or_default())?;
        Ok(())
    }
}

fn topology(input: &str, failed: &Arc<AtomicBool>) -> Topology {
    let f = failed.clone();
    let mut t = Topology::new();
    t.add_source("in", &[input])
        .unwrap()
        .add_processor(
            "p",
            supplier(move || FailOnce { failed: f.clone() }),
            &["in"],
        )
        .unwrap()
        .add_state_store(StoreSpec::new("kv", StoreKind::InMemory), &["p"])
        .unwrap();
    t
}

#[test]
fn replace_thread_carries_on_after_a_failure() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("replace"));
    create_topics(bs, &[(&input, 1)]);
    let mut records = keyed(20, 20, 0);
    records.push(("poisoned".into(), "poison".into()));
    records.extend(keyed(20, 40, 20));
    produce(bs, &input, &records);
    let failed = Arc::new(AtomicBool::new(false));
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path())
        .with_uncaught_exception_handling(UncaughtExceptionHandling::ReplaceThread);
    let mut streams = KafkaStreams::new(topology(&input, &failed), config).unwrap();
    streams.start().unwrap();
    let store = streams.store("kv").unwrap();
    assert!(
        wait_until(Duration::from_secs(90), || store
            .all()
            .map(|a| a.len())
            .unwrap_or(0)
            == 41),
        "{:?}",
        streams.state()
    );
    assert!(failed.load(Ordering::SeqCst));
    assert_eq!(
        streams.metrics().replaced_threads.load(Ordering::Relaxed),
        1
    );
    assert!(wait_until(Duration::from_secs(30), || streams.state()
        == StreamsState::Running));
    streams.close().unwrap();
}

#[test]
fn shutdown_application_stops_every_instance() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("shutdown-app"));
    create_topics(bs, &[(&input, 2)]);
    let failed = Arc::new(AtomicBool::new(false));
    let config = |dir: &std::path::Path| {
        test_config(&app, bs, dir)
            .with_uncaught_exception_handling(UncaughtExceptionHandling::ShutdownApplication)
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = KafkaStreams::new(topology(&input, &failed), config(dir_a.path())).unwrap();
    let mut b = KafkaStreams::new(topology(&input, &failed), config(dir_b.path())).unwrap();
    a.start().unwrap();
    b.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || a
        .assigned_partitions()
        .len()
        == 1
        && b.assigned_partitions().len() == 1));
    // A poison on each partition: whichever instance meets it first fails.
    produce(
        bs,
        &input,
        &[("x".into(), "poison".into()), ("y".into(), "poison".into())],
    );
    let both_failed = wait_until(Duration::from_secs(60), || {
        matches!(a.state(), StreamsState::Error(_)) && matches!(b.state(), StreamsState::Error(_))
    });
    assert!(both_failed, "a: {:?}, b: {:?}", a.state(), b.state());
    let states = [a.state(), b.state()];
    assert!(
        states
            .iter()
            .any(|s| matches!(s, StreamsState::Error(e) if e.contains("shut down by instance"))),
        "{states:?}"
    );
    let _ = a.close();
    let _ = b.close();
}
