//! A DSL topology with a key change runs on the real broker: the runtime creates the
//! repartition topic the DSL put between `map` and `count`, and the counts are exact.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::dsl::{Materialized, StreamsBuilder};
use ks_engine::stores::StoreKind;
use ks_engine::KafkaStreams;
use std::time::Duration;

#[test]
fn word_count_with_repartition_is_exact() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("lines"), unique("counts"), unique("dsl"));
    create_topics(bs, &[(&input, 2), (&output, 2)]);
    let lines: Vec<(String, String)> = (0..60)
        .map(|i| (format!("k{i}"), format!("a b{} c", i % 3)))
        .collect();
    produce(bs, &input, &lines);

    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(&input)
        .flat_map(|_, line: String| {
            line.split(' ')
                .map(|w| (w.to_string(), w.to_string()))
                .collect::<Vec<_>>()
        })
        .group_by_key()
        .count(Materialized::as_("word-counts", StoreKind::RocksDb))
        .to_stream()
        .map_values(|c: Option<i64>| c.unwrap_or(0).to_string())
        .to(&output);
    let topology = builder.build().unwrap();
    let mut streams = KafkaStreams::new(topology, test_config(&app, bs, dir_path())).unwrap();
    streams.start().unwrap();
    let store = streams.store("word-counts").unwrap();
    let count = |w: &str| {
        store
            .get(w.as_bytes())
            .ok()
            .flatten()
            .map(|v| i64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
    };
    // The words reach the counting tasks through the repartition topic's two partitions, each
    // at its own pace: every count is awaited, then must stay exact (nothing counted twice).
    let counts = || {
        ["a", "b0", "b1", "b2", "c"]
            .iter()
            .map(|w| count(w))
            .collect::<Vec<_>>()
    };
    let exact = vec![Some(60), Some(20), Some(20), Some(20), Some(60)];
    assert!(
        wait_until(Duration::from_secs(60), || counts() == exact),
        "a, b0, b1, b2, c: {:?}",
        counts()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counts(), exact);
    streams.close().unwrap();
}

fn dir_path() -> &'static std::path::Path {
    Box::leak(Box::new(tempfile::tempdir().unwrap())).path()
}
