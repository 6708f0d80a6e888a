//! Poison records follow the configured handler and never crash the instance unless told to.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
#[path = "support/dedup_count.rs"]
mod dedup_count;
use dedup_count::{dedup_count_topology, parse_count};
use ks_engine::stores::StoreKind;
use ks_engine::{ErrorHandling, KafkaStreams, StreamsState};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn input_with_poison() -> Vec<(String, String)> {
    let mut recs = keyed(30, 3, 0);
    recs.insert(10, ("w1".into(), "poison".into()));
    recs.insert(20, ("w2".into(), "poison".into()));
    recs
}

fn count_of(streams: &KafkaStreams, key: &str) -> u64 {
    streams
        .store("counts")
        .unwrap()
        .get(key.as_bytes())
        .unwrap()
        .and_then(|v| parse_count(&v))
        .map(|c| c.0)
        .unwrap_or(0)
}

fn run(handling: ErrorHandling) -> (ks_broker::Broker, String, KafkaStreams, String) {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers().to_string();
    let (input, output, app) = (unique("in"), unique("out"), unique("eh"));
    create_topics(&bs, &[(&input, 1), (&output, 1)]);
    produce(&bs, &input, &input_with_poison());
    let dir = tempfile::tempdir().unwrap();
    let topology = dedup_count_topology(&input, &output, StoreKind::InMemory).unwrap();
    let mut streams = KafkaStreams::new(
        topology,
        test_config(&app, &bs, dir.path()).with_error_handling(handling),
    )
    .unwrap();
    streams.start().unwrap();
    std::mem::forget(dir);
    (broker, bs, streams, input)
}

#[test]
fn log_and_continue_skips_the_poison_and_keeps_running() {
    let (_broker, _bs, mut streams, _) = run(ErrorHandling::LogAndContinue);
    assert!(wait_until(Duration::from_secs(60), || streams
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= 32));
    assert_eq!(streams.state(), StreamsState::Running);
    assert_eq!(streams.metrics().errors.load(Ordering::Relaxed), 2);
    assert_eq!(
        (
            count_of(&streams, "w0"),
            count_of(&streams, "w1"),
            count_of(&streams, "w2")
        ),
        (10, 10, 10)
    );
    streams.close().unwrap();
}

#[test]
fn dead_letter_sends_the_poison_with_its_origin() {
    let dlq = unique("dlq");
    let (_broker, bs, mut streams, input) = run(ErrorHandling::DeadLetter { topic: dlq.clone() });
    assert!(wait_until(Duration::from_secs(60), || streams
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= 32));
    assert_eq!(streams.state(), StreamsState::Running);
    streams.close().unwrap();
    let dead = read_all(&bs, &dlq);
    assert_eq!(dead.len(), 2);
    let header = |r: &Read, n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(dead[0].key.as_deref(), Some("w1"));
    assert_eq!(dead[0].value.as_deref(), Some("poison"));
    assert_eq!(
        header(&dead[0], "ks.source.topic").as_deref(),
        Some(input.as_str())
    );
    assert_eq!(
        header(&dead[0], "ks.source.partition").as_deref(),
        Some("0")
    );
    assert_eq!(header(&dead[0], "ks.source.offset").as_deref(), Some("10"));
    assert_eq!(header(&dead[1], "ks.source.offset").as_deref(), Some("20"));
    assert!(header(&dead[0], "ks.error").is_some_and(|e| e.contains("poison record")));
}

#[test]
fn log_and_fail_stops_without_committing_the_poison() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("eh"));
    create_topics(bs, &[(&input, 1), (&output, 1)]);
    produce(bs, &input, &input_with_poison());
    let dir = tempfile::tempdir().unwrap();
    let topology = dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap();
    let mut streams = KafkaStreams::new(topology, test_config(&app, bs, dir.path())).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || matches!(
        streams.state(),
        StreamsState::Error(_)
    )));
    assert!(matches!(streams.state(), StreamsState::Error(ref e) if e.contains("poison")));
    assert!(matches!(
        streams.close(),
        Err(ks_engine::Error::NotRunning(_))
    ));
    // The records before the poison are committed, the poison is not: a restart sees it again.
    assert_eq!(committed(bs, &app, &input, 1), vec![10]);

    let dlq = unique("dlq");
    let topology = dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap();
    let config = test_config(&app, bs, dir.path())
        .with_error_handling(ErrorHandling::DeadLetter { topic: dlq.clone() });
    let mut streams = KafkaStreams::new(topology, config).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || streams
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= 22));
    assert_eq!(
        (
            count_of(&streams, "w0"),
            count_of(&streams, "w1"),
            count_of(&streams, "w2")
        ),
        (10, 10, 10)
    );
    streams.close().unwrap();
    assert_eq!(read_all(bs, &dlq).len(), 2);
}
