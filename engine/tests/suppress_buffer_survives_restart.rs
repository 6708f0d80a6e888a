//! `suppress_until_window_closes` keeps its buffer in a changelogged store: windows still open
//! when an instance stops come back with the restored task (on an empty state dir), and each
//! final result is emitted exactly once across the restart.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::dsl::{Materialized, StreamsBuilder, TimeWindows};
use ks_engine::stores::StoreKind;
use ks_engine::{KafkaStreams, Topology};
use std::time::Duration;

fn topology(input: &str, output: &str) -> Topology {
    let windows = TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::ZERO);
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(input)
        .group_by_key()
        .windowed_by(windows)
        .count(Materialized::as_("counts", StoreKind::InMemory))
        .suppress_until_window_closes(windows)
        .to_stream()
        .map(|w, n| (format!("{}@{}", w.key, w.start), n.map(|n| n.to_string())))
        .to(output);
    builder.build().unwrap()
}

fn finals(bs: &str, output: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = read_all(bs, output)
        .into_iter()
        .map(|r| (r.key.unwrap_or_default(), r.value.unwrap_or_default()))
        .collect();
    out.sort();
    out
}

#[test]
fn windows_held_at_a_stop_are_emitted_once_after_the_restore() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("events"), unique("finals"), unique("suppress"));
    create_topics(bs, &[(&input, 1), (&output, 1)]);
    let rec = |k: &str, ts: i64| (k.to_string(), "x".to_string(), ts);

    // [0, 10 s) closes at a@12000; [10 s, 20 s) is still held when the instance stops.
    produce_at(
        bs,
        &input,
        &[
            rec("a", 1_000),
            rec("b", 2_000),
            rec("a", 3_000),
            rec("a", 12_000),
            rec("b", 15_000),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut first =
        KafkaStreams::new(topology(&input, &output), test_config(&app, bs, dir.path())).unwrap();
    first.start().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || finals(bs, &output).len() == 2),
        "{:?}",
        finals(bs, &output)
    );
    // Two commit intervals: the buffer's changelog records of b@15000 are written.
    std::thread::sleep(Duration::from_millis(600));
    first.close().unwrap();
    drop(first);

    // A new instance on an empty state dir: the buffer comes back from its changelog, and
    // c@25000 closes the window it held.
    let empty = tempfile::tempdir().unwrap();
    let mut second = KafkaStreams::new(
        topology(&input, &output),
        test_config(&app, bs, empty.path()),
    )
    .unwrap();
    second.start().unwrap();
    produce_at(bs, &input, &[rec("c", 25_000)]);
    let want = vec![
        ("a@0".to_string(), "2".to_string()),
        ("a@10000".to_string(), "1".to_string()),
        ("b@0".to_string(), "1".to_string()),
        ("b@10000".to_string(), "1".to_string()),
    ];
    assert!(
        wait_until(Duration::from_secs(60), || finals(bs, &output) == want),
        "{:?}",
        finals(bs, &output)
    );
    // Nothing more: c's window is still open, and no final result came twice.
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(finals(bs, &output), want);
    second.close().unwrap();
}
