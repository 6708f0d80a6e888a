//! At-least-once on the real broker: exact counts over 4 partitions, restart from the
//! checkpoint, two instances splitting the partitions, and a killed instance's tasks moving to
//! the survivor, which restores them from the changelog.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
#[path = "support/dedup_count.rs"]
mod dedup_count;
use dedup_count::{dedup_count_topology, parse_count};
use ks_engine::stores::StoreKind;
use ks_engine::{KafkaStreams, StreamsState};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn counts_in(streams: &KafkaStreams) -> BTreeMap<String, u64> {
    streams
        .store("counts")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                parse_count(&v).unwrap().0,
            )
        })
        .collect()
}

fn expected(n: usize, keys: usize) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (k, _) in keyed(n, keys, 0) {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[test]
fn counts_are_exact_over_four_partitions_and_survive_a_restart() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("wc"));
    create_topics(bs, &[(&input, 4), (&output, 4)]);
    produce(bs, &input, &keyed(400, 20, 0));
    let dir = tempfile::tempdir().unwrap();

    let topology = dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap();
    let mut streams = KafkaStreams::new(topology, test_config(&app, bs, dir.path())).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || streams
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= 400));
    assert_eq!(streams.assigned_partitions().len(), 4);
    assert_eq!(counts_in(&streams), expected(400, 20));
    streams.close().unwrap();
    assert_eq!(streams.state(), StreamsState::NotRunning);

    // Every count was emitted once, in order, per key.
    let out = read_all(bs, &output);
    assert_eq!(out.len(), 400);
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for r in &out {
        let c: u64 = r.value.as_deref().unwrap().parse().unwrap();
        let prev = last.insert(r.key.clone().unwrap(), c).unwrap_or(0);
        assert_eq!(c, prev + 1);
    }
    assert_eq!(last, expected(400, 20));
    // Offsets are committed up to the end.
    let committed: i64 = committed(bs, &app, &input, 4).iter().sum();
    assert_eq!(committed, 400);

    // Restart on the same state dir: the RocksDB store reopens from its checkpoint and the
    // count goes on from there.
    produce(bs, &input, &keyed(40, 20, 400));
    let topology = dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap();
    let mut streams = KafkaStreams::new(topology, test_config(&app, bs, dir.path())).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || streams
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= 40));
    assert!(wait_until(Duration::from_secs(10), || counts_in(&streams)
        == expected(440, 20)));
    assert_eq!(
        streams.metrics().processed.load(Ordering::Relaxed),
        40,
        "only new records are processed"
    );
    streams.close().unwrap();
}

#[test]
fn an_in_memory_store_is_rebuilt_from_its_changelog() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("wc"));
    create_topics(bs, &[(&input, 2), (&output, 2)]);
    produce(bs, &input, &keyed(100, 10, 0));
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let topology = dedup_count_topology(&input, &output, StoreKind::InMemory).unwrap();
        let mut streams = KafkaStreams::new(topology, test_config(&app, bs, dir.path())).unwrap();
        streams.start().unwrap();
        if round == 0 {
            assert!(wait_until(Duration::from_secs(60), || streams
                .metrics()
                .processed
                .load(Ordering::Relaxed)
                >= 100));
        } else {
            // Nothing new to process: the counts come from the changelog alone.
            assert!(wait_until(Duration::from_secs(60), || streams
                .assigned_partitions()
                .len()
                == 2));
        }
        assert!(wait_until(Duration::from_secs(10), || counts_in(&streams)
            == expected(100, 10)));
        streams.close().unwrap();
    }
}

#[test]
fn two_instances_split_the_partitions_and_a_killed_one_hands_over() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("wc"));
    create_topics(bs, &[(&input, 4), (&output, 4)]);
    produce(bs, &input, &keyed(200, 16, 0));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let topology = dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap();
    let mut a = KafkaStreams::new(topology, test_config(&app, bs, dir_a.path())).unwrap();
    a.start().unwrap();
    assert!(a.wait_for_assignment(Duration::from_secs(30), |p| p.len() == 4));
    let mut b = Command::new(env!("CARGO_BIN_EXE_ks-wordcount"))
        .args([
            "--brokers",
            bs,
            "--application-id",
            &app,
            "--input",
            &input,
            "--output",
            &output,
        ])
        .arg("--state-dir")
        .arg(dir_b.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The partitions split: each instance holds some, and A sees B in the metadata.
    assert!(a.wait_for_assignment(Duration::from_secs(45), |p| !p.is_empty() && p.len() < 4));
    // Cooperative rebalancing moves partitions in two steps; wait for the second.
    let settled = wait_until(Duration::from_secs(30), || {
        let md = a.all_metadata();
        md.len() == 2
            && md.iter().all(|m| !m.topic_partitions.is_empty())
            && md.iter().map(|m| m.topic_partitions.len()).sum::<usize>() == 4
    });
    assert!(settled, "{:?}", a.all_metadata());
    produce(bs, &input, &keyed(200, 16, 200));
    std::thread::sleep(Duration::from_secs(2));

    // kill -9 B mid-stream; A takes every partition, restores B's stores and finishes.
    b.kill().unwrap();
    b.wait().unwrap();
    produce(bs, &input, &keyed(200, 16, 400));
    assert!(a.wait_for_assignment(Duration::from_secs(60), |p| p.len() == 4));
    assert!(
        wait_until(Duration::from_secs(60), || counts_in(&a)
            == expected(600, 16)),
        "counts: {:?}",
        counts_in(&a)
    );
    a.close().unwrap();

    // Together they produced every count: none missing.
    let mut seen: BTreeMap<String, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for r in read_all(bs, &output) {
        seen.entry(r.key.unwrap())
            .or_default()
            .insert(r.value.unwrap().parse().unwrap());
    }
    for (k, n) in expected(600, 16) {
        assert_eq!(seen[&k], (1..=n).collect(), "counts of {k}");
    }
}

#[test]
fn two_stream_threads_share_the_partitions() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("wc"));
    create_topics(bs, &[(&input, 4), (&output, 4)]);
    produce(bs, &input, &keyed(200, 8, 0));
    let dir = tempfile::tempdir().unwrap();
    let topology = dedup_count_topology(&input, &output, StoreKind::File).unwrap();
    let mut streams =
        KafkaStreams::new(topology, test_config(&app, bs, dir.path()).with_threads(2)).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || counts_in(&streams)
        == expected(200, 8)));
    assert!(streams.wait_for_assignment(Duration::from_secs(30), |p| p.len() == 4));
    assert_eq!(streams.local_metadata().tasks.len(), 4);
    streams.close().unwrap();
}
