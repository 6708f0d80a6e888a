//! The record cache (`cache.max.bytes.buffering`): between two commits an aggregate forwards
//! only the latest value per key, with the old value its downstream needs, and writes its
//! store (and changelog) once per key; 0 bytes, or a budget too small to hold an entry,
//! forwards every update as it happens. The test driver commits after each piped record, as
//! Kafka Streams' does, so the updates one input record causes collapse.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ks_engine::dsl::{Materialized, StreamsBuilder, TimeWindows};
use ks_engine::stores::StoreKind;
use ks_engine::topology::Topology;
use ks_engine::TopologyTestDriver;

type Out = Vec<(String, Option<String>, i64)>;

fn mem() -> Materialized {
    Materialized::with_kind(StoreKind::InMemory)
}

/// Every input word counted twice (one input record, two updates of its key), then the
/// counts summed over all keys through a grouped table: the sum is right only if each
/// count update carries the count it replaced.
fn counts_and_total() -> Topology {
    let b = StreamsBuilder::new();
    let counts = b
        .stream::<String, String>("in")
        .flat_map_values(|v| vec![v.clone(), v])
        .group_by_key()
        .count(Materialized::as_("counts", StoreKind::InMemory));
    counts
        .to_stream()
        .map_values(|v| v.map(|n| n.to_string()))
        .to("counts");
    counts
        .group_by(|_, n| ("all".to_string(), *n))
        .aggregate(|| 0i64, |_, n, s| s + n, |_, n, s| s - n, mem())
        .to_stream()
        .map_values(|v| v.map(|n| n.to_string()))
        .to("total");
    b.build().unwrap()
}

fn pipe(driver: &mut TopologyTestDriver, records: &[(&str, i64)]) {
    for (key, ts) in records {
        driver
            .pipe_input("in", Some(key.as_bytes()), Some(b"x"), *ts)
            .unwrap();
    }
}

fn read(driver: &mut TopologyTestDriver, topic: &str) -> Out {
    driver
        .read_all_output(topic)
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap()).unwrap(),
                r.value.map(|v| String::from_utf8(v).unwrap()),
                r.timestamp,
            )
        })
        .collect()
}

fn out(rows: &[(&str, &str, i64)]) -> Out {
    rows.iter()
        .map(|(k, v, t)| (k.to_string(), Some(v.to_string()), *t))
        .collect()
}

const INPUT: [(&str, i64); 3] = [("a", 1), ("b", 2), ("a", 3)];

#[test]
fn without_a_cache_every_update_is_forwarded() {
    let mut driver = TopologyTestDriver::new(&counts_and_total(), 0).unwrap();
    pipe(&mut driver, &INPUT);
    assert_eq!(
        read(&mut driver, "counts"),
        out(&[
            ("a", "1", 1),
            ("a", "2", 1),
            ("b", "1", 2),
            ("b", "2", 2),
            ("a", "3", 3),
            ("a", "4", 3)
        ])
    );
    let total = read(&mut driver, "total");
    assert_eq!(total.last(), Some(&("all".into(), Some("6".into()), 3)));
}

#[test]
fn with_a_cache_one_update_per_key_per_commit_with_its_old_value() {
    let mut driver =
        TopologyTestDriver::with_cache_max_bytes(&counts_and_total(), 0, 1 << 20).unwrap();
    pipe(&mut driver, &INPUT);
    assert_eq!(
        read(&mut driver, "counts"),
        out(&[("a", "2", 1), ("b", "2", 2), ("a", "4", 3)])
    );
    // a: 0 → 2, b: +2, a: 2 → 4 (subtract the old 2, add the new 4): one total per commit.
    assert_eq!(
        read(&mut driver, "total"),
        out(&[("all", "2", 1), ("all", "4", 2), ("all", "6", 3)])
    );
    let store = driver.store("counts").unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(4i64.to_be_bytes().to_vec()));
}

#[test]
fn a_cache_halves_the_changelog_writes_here() {
    let changelog_of = |cache: usize| {
        let mut driver =
            TopologyTestDriver::with_cache_max_bytes(&counts_and_total(), 0, cache).unwrap();
        pipe(&mut driver, &INPUT);
        driver
            .changelog()
            .into_iter()
            .filter(|(topic, _, _)| topic.contains("counts"))
            .count()
    };
    assert_eq!(changelog_of(0), 6);
    assert_eq!(changelog_of(1 << 20), 3);
}

#[test]
fn a_budget_too_small_for_one_entry_evicts_each_update_at_once() {
    let mut driver = TopologyTestDriver::with_cache_max_bytes(&counts_and_total(), 0, 1).unwrap();
    pipe(&mut driver, &INPUT);
    assert_eq!(read(&mut driver, "counts").len(), 6);
    let total = read(&mut driver, "total");
    assert_eq!(total.last(), Some(&("all".into(), Some("6".into()), 3)));
}

#[test]
fn windowed_counts_collapse_per_window_and_keep_the_window_timestamp() {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .flat_map_values(|v| vec![v.clone(), v])
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(10),
            Duration::ZERO,
        ))
        .count(mem())
        .to_stream()
        .map(|w, n| (format!("{}@{}", w.key, w.start), n.unwrap_or(0).to_string()))
        .to("out");
    let topology = b.build().unwrap();
    let mut driver = TopologyTestDriver::with_cache_max_bytes(&topology, 0, 1 << 20).unwrap();
    pipe(&mut driver, &[("a", 5_000), ("a", 1_000), ("a", 12_000)]);
    assert_eq!(
        read(&mut driver, "out"),
        out(&[
            ("a@0", "2", 5_000),
            ("a@0", "4", 5_000),
            ("a@10000", "2", 12_000)
        ])
    );
    let mut uncached = TopologyTestDriver::new(&topology, 0).unwrap();
    pipe(&mut uncached, &[("a", 5_000), ("a", 1_000), ("a", 12_000)]);
    assert_eq!(read(&mut uncached, "out").len(), 6);
}
