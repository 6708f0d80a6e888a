//! The global store thread: a persistent global store resumes from its checkpoint instead of
//! replaying its topic from the beginning at every start; a data error of the global processor
//! follows the processing handler; a start that fails leaves nothing running.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    Error, ErrorHandling, KafkaStreams, Processor, ProcessorContext, Record, StreamsState, Topology,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Puts each record into the global store and counts what it was given; fails on "poison".
struct Load {
    seen: Arc<AtomicU64>,
}

impl Processor for Load {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        if r.value.as_deref() == Some(b"poison") {
            return Err(Error::processing("load", "poison in the global topic"));
        }
        let key = r.key.clone().unwrap_or_default();
        ctx.store("global")?
            .put(&key, &r.value.unwrap_or_default())?;
        Ok(())
    }
}

struct Nothing;

impl Processor for Nothing {
    fn process(&mut self, _: &mut ProcessorContext<'_>, _: Record) -> ks_engine::Result<()> {
        Ok(())
    }
}

fn topology(input: &str, global: &str, seen: &Arc<AtomicU64>, kind: StoreKind) -> Topology {
    let mut t = Topology::new();
    let seen = seen.clone();
    t.add_source("in", &[input])
        .unwrap()
        .add_processor("nothing", supplier(|| Nothing), &["in"])
        .unwrap()
        .add_global_store(
            StoreSpec::new("global", kind),
            "global-source",
            global,
            "global-load",
            supplier(move || Load { seen: seen.clone() }),
        )
        .unwrap();
    t
}

fn entries(streams: &KafkaStreams) -> usize {
    streams.store("global").unwrap().all().unwrap().len()
}

#[test]
fn a_persistent_global_store_resumes_from_its_checkpoint() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, global, app) = (unique("in"), unique("global"), unique("glob"));
    create_topics(bs, &[(&input, 1), (&global, 2)]);
    produce(bs, &global, &keyed(10, 10, 0));
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let config = || test_config(&app, bs, dir.path());
    let mut streams = KafkaStreams::new(
        topology(&input, &global, &seen, StoreKind::RocksDb),
        config(),
    )
    .unwrap();
    streams.start().unwrap();
    assert_eq!(entries(&streams), 10, "bootstrapped before start() returns");
    streams.close().unwrap();
    drop(streams);
    assert_eq!(seen.load(Ordering::SeqCst), 10);

    let mut streams = KafkaStreams::new(
        topology(&input, &global, &seen, StoreKind::RocksDb),
        config(),
    )
    .unwrap();
    streams.start().unwrap();
    assert_eq!(entries(&streams), 10);
    produce(bs, &global, &keyed(5, 15, 10));
    assert!(wait_until(Duration::from_secs(30), || entries(&streams) == 15));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        15,
        "the 10 records before the checkpoint were not processed again"
    );
    streams.close().unwrap();
}

#[test]
fn a_global_data_error_follows_the_handler_and_a_failed_start_stops_everything() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, global) = (unique("in"), unique("global"));
    create_topics(bs, &[(&input, 1), (&global, 1)]);
    let mut records = keyed(3, 3, 0);
    records.push(("bad".into(), "poison".into()));
    records.extend(keyed(3, 6, 3));
    produce(bs, &global, &records);

    // Log and continue: the poison is counted and skipped.
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let config = test_config(&unique("glob"), bs, dir.path())
        .with_error_handling(ErrorHandling::LogAndContinue);
    let mut streams = KafkaStreams::new(
        topology(&input, &global, &seen, StoreKind::InMemory),
        config,
    )
    .unwrap();
    streams.start().unwrap();
    assert_eq!(entries(&streams), 6);
    assert_eq!(streams.metrics().errors.load(Ordering::Relaxed), 1);
    streams.close().unwrap();

    // Log and fail: the global thread fails while bootstrapping, so start() fails, and returns
    // with the instance stopped.
    let dir = tempfile::tempdir().unwrap();
    let config =
        test_config(&unique("glob"), bs, dir.path()).with_error_handling(ErrorHandling::LogAndFail);
    let mut streams = KafkaStreams::new(
        topology(&input, &global, &seen, StoreKind::InMemory),
        config,
    )
    .unwrap();
    let started = Instant::now();
    let result = streams.start();
    assert!(
        matches!(&result, Err(e) if e.to_string().contains("poison")),
        "{result:?}"
    );
    assert!(matches!(streams.state(), StreamsState::Error(_)));
    assert!(started.elapsed() < Duration::from_secs(60));
    let closing = Instant::now();
    let _ = streams.close();
    assert!(
        closing.elapsed() < Duration::from_secs(5),
        "nothing was left running"
    );
}

/// Writes `records` to `topic` in one transaction, committed or aborted.
fn produce_in_transaction(bs: &str, topic: &str, records: &[(&str, &str)], commit: bool) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("transactional.id", unique("txn"))
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    for (k, v) in records {
        p.send(BaseRecord::to(topic).key(*k).payload(*v)).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
    if commit {
        p.commit_transaction(Duration::from_secs(30)).unwrap();
    } else {
        p.abort_transaction(Duration::from_secs(30)).unwrap();
    }
}

#[test]
fn under_exactly_once_a_global_store_reads_only_committed_records() {
    // Apache Kafka: tansu shows aborted records to read_committed consumers.
    let broker = ks_broker::Broker::kafka().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, global, app) = (unique("in"), unique("global"), unique("glob"));
    create_topics(bs, &[(&input, 1), (&global, 1)]);
    produce_in_transaction(bs, &global, &[("a", "1"), ("b", "1")], true);
    produce_in_transaction(bs, &global, &[("a", "aborted"), ("x", "aborted")], false);
    produce_in_transaction(bs, &global, &[("c", "1")], true);
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let config = test_config(&app, bs, dir.path())
        .with_processing_guarantee(ks_engine::ProcessingGuarantee::ExactlyOnce);
    let mut streams = KafkaStreams::new(
        topology(&input, &global, &seen, StoreKind::InMemory),
        config,
    )
    .unwrap();
    // The global store is read to its end before start() returns.
    streams.start().unwrap();
    let store = streams.store("global").unwrap();
    let all: Vec<(String, String)> = store
        .all()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .collect();
    assert_eq!(
        all,
        vec![
            ("a".to_string(), "1".to_string()),
            ("b".into(), "1".into()),
            ("c".into(), "1".into())
        ]
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "no aborted record reached the processor"
    );
    streams.close().unwrap();
}
