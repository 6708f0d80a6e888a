//! No silent failure paths: a stream thread that cannot be created fails `start()` (the
//! instance never reports Running without it), and a panic in a processor is a processing
//! error under the configured handlers — never a thread that ends unnoticed while the
//! instance still says Running, nor a lock left poisoned so that later writes are skipped.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    Error, ErrorHandling, KafkaStreams, Processor, ProcessorContext, Record, StreamsState,
    Topology, UncaughtExceptionHandling,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_stream_thread_that_cannot_be_created_fails_start() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("spawn"));
    create_topics(bs, &[(&input, 1)]);
    let dir = tempfile::tempdir().unwrap();
    // No address space holds a 4 EiB stack: the thread cannot be created.
    let config = test_config(&app, bs, dir.path()).with_stream_thread_stack_size(1 << 62);
    let mut streams = KafkaStreams::new(
        last_value_topology(&input, StoreSpec::new("kv", StoreKind::InMemory)),
        config,
    )
    .unwrap();
    let err = streams.start().unwrap_err();
    assert!(
        matches!(&err, Error::NotRunning(m) if m.contains("cannot start the stream-0 thread")),
        "{err}"
    );
    assert!(
        matches!(streams.state(), StreamsState::Error(_)),
        "{:?}",
        streams.state()
    );
    // The threads started before it (metadata, global) were stopped: close returns.
    let _ = streams.close();
    assert_eq!(streams.state(), StreamsState::NotRunning);
}

/// Counts records per key in `counts`; panics (once, if `once`) on the value "boom".
struct PanickingCount {
    once: Option<Arc<AtomicBool>>,
}

impl Processor for PanickingCount {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        if r.value.as_deref() == Some(b"boom") {
            let first = self
                .once
                .as_ref()
                .is_none_or(|f| !f.swap(true, Ordering::SeqCst));
            if first {
                panic!("user code blew up");
            }
        }
        let key = r.key.clone().unwrap_or_default();
        let store = ctx.store("counts")?;
        let n = store
            .get(&key)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        store.put(&key, (n + 1).to_string().as_bytes())?;
        Ok(())
    }
}

fn topology(input: &str, once: Option<Arc<AtomicBool>>) -> Topology {
    let mut t = Topology::new();
    t.add_source("in", &[input])
        .unwrap()
        .add_processor(
            "count",
            supplier(move || PanickingCount { once: once.clone() }),
            &["in"],
        )
        .unwrap()
        .add_state_store(StoreSpec::new("counts", StoreKind::InMemory), &["count"])
        .unwrap();
    t
}

fn count(streams: &KafkaStreams, key: &str) -> Option<u64> {
    streams
        .store("counts")
        .ok()?
        .get(key.as_bytes())
        .ok()
        .flatten()
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
}

/// Waits until keys w0 and w1 count `w0` and `w1`.
fn assert_counts_reach(streams: &KafkaStreams, w0: u64, w1: u64, timeout: Duration) {
    let done = wait_until(timeout, || {
        count(streams, "w0") == Some(w0) && count(streams, "w1") == Some(w1)
    });
    assert!(
        done,
        "w0 {:?} w1 {:?} state {:?}",
        count(streams, "w0"),
        count(streams, "w1"),
        streams.state()
    );
}

fn input_with_a_panic(bs: &str, input: &str) {
    let mut records = keyed(20, 2, 0);
    records.push(("w0".into(), "boom".into()));
    records.extend(keyed(20, 2, 20));
    produce(bs, input, &records);
}

#[test]
fn a_panicking_processor_fails_the_instance_under_log_and_fail() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("panic"));
    create_topics(bs, &[(&input, 1)]);
    input_with_a_panic(bs, &input);
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path()).with_error_handling(ErrorHandling::LogAndFail);
    let mut streams = KafkaStreams::new(topology(&input, None), config).unwrap();
    streams.start().unwrap();
    let failed = wait_until(
        Duration::from_secs(60),
        || matches!(streams.state(), StreamsState::Error(ref e) if e.contains("panicked: user code blew up")),
    );
    assert!(failed, "state {:?}", streams.state());
    assert!(streams.close().is_err(), "close reports the failure");
}

#[test]
fn a_panicking_processor_is_skipped_under_log_and_continue() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("panic"));
    create_topics(bs, &[(&input, 1)]);
    input_with_a_panic(bs, &input);
    let dir = tempfile::tempdir().unwrap();
    let config =
        test_config(&app, bs, dir.path()).with_error_handling(ErrorHandling::LogAndContinue);
    let mut streams = KafkaStreams::new(topology(&input, None), config).unwrap();
    streams.start().unwrap();
    assert_counts_reach(&streams, 20, 20, Duration::from_secs(60));
    assert_eq!(streams.state(), StreamsState::Running);
    assert_eq!(streams.metrics().errors.load(Ordering::Relaxed), 1);
    streams.close().unwrap();
}

#[test]
fn a_thread_replaced_after_a_panic_goes_on_with_every_lock_usable() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("panic"));
    create_topics(bs, &[(&input, 1)]);
    input_with_a_panic(bs, &input);
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path())
        .with_error_handling(ErrorHandling::LogAndFail)
        .with_uncaught_exception_handling(UncaughtExceptionHandling::ReplaceThread);
    let once = Arc::new(AtomicBool::new(false));
    let mut streams = KafkaStreams::new(topology(&input, Some(once.clone())), config).unwrap();
    streams.start().unwrap();
    // The replacement processes "boom" again (no panic the second time) and the rest: the
    // store registry, metadata and state the failed thread had touched are all still written.
    assert_counts_reach(&streams, 21, 20, Duration::from_secs(90));
    assert!(once.load(Ordering::SeqCst));
    assert_eq!(
        streams.metrics().replaced_threads.load(Ordering::Relaxed),
        1
    );
    assert!(wait_until(Duration::from_secs(30), || streams.state()
        == StreamsState::Running));
    assert!(!streams.local_metadata().tasks.is_empty());
    streams.close().unwrap();
}
