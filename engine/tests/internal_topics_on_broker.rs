//! Internal topics at start: repartition topics are scoped to the application, joined inputs
//! must be co-partitioned, and a repartition topic gets the partition count of the sub-topology
//! it feeds.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::dsl::{Materialized, StreamsBuilder};
use ks_engine::stores::StoreKind;
use ks_engine::{Error, KafkaStreams};
use std::time::Duration;

/// `input` → key by the value's first letter → count into store `counts`.
fn first_letter_counts(input: &str) -> ks_engine::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(input)
        .group_by(|_, v: &String| v.chars().next().map(String::from).unwrap_or_default())
        .count(Materialized::as_("counts", StoreKind::InMemory));
    builder.build().unwrap()
}

fn count(streams: &KafkaStreams, key: &str) -> Option<i64> {
    streams
        .store("counts")
        .ok()?
        .get(key.as_bytes())
        .ok()
        .flatten()
        .map(|v| i64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
}

#[test]
fn repartition_topics_are_scoped_to_the_application() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (in_a, in_b) = (unique("in-a"), unique("in-b"));
    let (app_a, app_b) = (unique("app-a"), unique("app-b"));
    create_topics(bs, &[(&in_a, 2), (&in_b, 2)]);
    let records = |letter: char| -> Vec<(String, String)> {
        (0..30)
            .map(|i| (format!("k{i}"), format!("{letter}{i}")))
            .collect()
    };
    produce(bs, &in_a, &records('a'));
    produce(bs, &in_b, &records('b'));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Same topology, same store name: only the application id tells them apart.
    let mut a = KafkaStreams::new(
        first_letter_counts(&in_a),
        test_config(&app_a, bs, dir_a.path()),
    )
    .unwrap();
    let mut b = KafkaStreams::new(
        first_letter_counts(&in_b),
        test_config(&app_b, bs, dir_b.path()),
    )
    .unwrap();
    a.start().unwrap();
    b.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || {
        count(&a, "a") == Some(30) && count(&b, "b") == Some(30)
    }));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(&a, "b"), None, "application a never sees b's records");
    assert_eq!(count(&b, "a"), None, "application b never sees a's records");
    let topics = partition_counts(bs);
    assert!(topics.contains_key(&format!("{app_a}-counts-repartition")));
    assert!(topics.contains_key(&format!("{app_b}-counts-repartition")));
    assert!(!topics.contains_key("counts-repartition"));
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn joined_inputs_must_be_copartitioned() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (stream, table, out, app) = (unique("s"), unique("t"), unique("o"), unique("co"));
    create_topics(bs, &[(&stream, 4), (&table, 2), (&out, 1)]);
    let builder = StreamsBuilder::new();
    let t = builder.table::<String, String>(&table, Materialized::as_("t", StoreKind::InMemory));
    builder
        .stream::<String, String>(&stream)
        .join(&t, |v: &String, tv: &String| format!("{v}{tv}"))
        .to(&out);
    let dir = tempfile::tempdir().unwrap();
    let mut streams =
        KafkaStreams::new(builder.build().unwrap(), test_config(&app, bs, dir.path())).unwrap();
    match streams.start() {
        Err(Error::NotCopartitioned { topics }) => {
            let mut topics = topics;
            topics.sort();
            let mut expected = vec![(stream.clone(), 4), (table.clone(), 2)];
            expected.sort();
            assert_eq!(topics, expected);
        }
        other => panic!("start() must fail on co-partitioning, got {other:?}"),
    }
}

#[test]
fn a_repartition_topic_takes_the_partition_count_of_the_subtopology_it_feeds() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (narrow, wide, out, app) = (unique("narrow"), unique("wide"), unique("o"), unique("rp"));
    create_topics(bs, &[(&narrow, 2), (&wide, 6), (&out, 1)]);
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(&narrow)
        .group_by(|_, v: &String| v.clone())
        .count(Materialized::as_("counts", StoreKind::InMemory));
    // An unrelated, wider input of the same application.
    builder.stream::<String, String>(&wide).to(&out);
    let dir = tempfile::tempdir().unwrap();
    let mut streams =
        KafkaStreams::new(builder.build().unwrap(), test_config(&app, bs, dir.path())).unwrap();
    streams.start().unwrap();
    let counts = partition_counts(bs);
    assert_eq!(counts.get(&format!("{app}-counts-repartition")), Some(&2));
    streams.close().unwrap();
}
