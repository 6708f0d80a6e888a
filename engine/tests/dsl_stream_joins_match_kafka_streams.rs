//! KStream–KStream windowed joins run through ks's `TopologyTestDriver` give exactly the
//! records Kafka Streams' own `TopologyTestDriver` gave on the same inputs (key, value,
//! timestamp, order): the goldens `stream_join_*` under `tests/golden/dsl/`, written by
//! `scripts/kstreams-oracle`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::sync::atomic::Ordering;
use std::time::Duration;

use ks_engine::dsl::{JoinWindows, KStream, Materialized, StreamsBuilder};
use ks_engine::stores::StoreKind;
use ks_engine::topology::Topology;
use ks_engine::TopologyTestDriver;
use serde_json::Value;

fn golden(case: &str) -> Value {
    let path = format!(
        "{}/tests/golden/dsl/{case}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

type Out = Vec<(Option<String>, Option<String>, i64)>;

fn run(topology: &Topology, g: &Value) -> Out {
    let mut driver = TopologyTestDriver::new(topology, 0).unwrap();
    for i in g["inputs"].as_array().unwrap() {
        driver
            .pipe_input(
                i["topic"].as_str().unwrap(),
                i["key"].as_str().map(str::as_bytes),
                i["value"].as_str().map(str::as_bytes),
                i["timestamp"].as_i64().unwrap(),
            )
            .unwrap();
    }
    driver
        .read_all_output("out")
        .into_iter()
        .map(|r| {
            (
                r.key.map(|k| String::from_utf8(k).unwrap()),
                r.value.map(|v| String::from_utf8(v).unwrap()),
                r.timestamp,
            )
        })
        .collect()
}

fn expected(g: &Value) -> Out {
    g["outputs"]["out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().map(str::to_string),
                o["value"].as_str().map(str::to_string),
                o["timestamp"].as_i64().unwrap(),
            )
        })
        .collect()
}

type Streams = (KStream<String, String>, KStream<String, String>);

/// The golden's `out` equals what ks gives, on every store backend.
fn check(case: &str, build: impl Fn(Streams, Materialized) -> KStream<String, String>) {
    let g = golden(case);
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let builder = StreamsBuilder::new();
        let streams = (builder.stream("left"), builder.stream("right"));
        build(streams, Materialized::with_kind(kind)).to("out");
        let topology = builder.build().unwrap();
        assert_eq!(run(&topology, &g), expected(&g), "{case} on {kind}");
    }
}

fn windows() -> JoinWindows {
    JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(2))
}

fn or_null(v: Option<&String>) -> &str {
    v.map_or("null", String::as_str)
}

#[test]
fn stream_join_inner() {
    check("stream_join_inner", |(l, r), m| {
        l.join_stream(&r, |a, b| format!("{a}+{b}"), windows(), m)
            .stream()
    });
}

#[test]
fn stream_join_left() {
    check("stream_join_left", |(l, r), m| {
        l.left_join_stream(&r, |a, b| format!("{a}+{}", or_null(b)), windows(), m)
            .stream()
    });
}

#[test]
fn stream_join_outer() {
    check("stream_join_outer", |(l, r), m| {
        l.outer_join_stream(
            &r,
            |a, b| format!("{}+{}", or_null(a), or_null(b)),
            windows(),
            m,
        )
        .stream()
    });
}

#[test]
fn stream_join_before_after() {
    check("stream_join_before_after", |(l, r), m| {
        let w = windows().before(Duration::from_secs(1));
        l.join_stream(&r, |a, b| format!("{a}+{b}"), w, m).stream()
    });
}

/// Keyless and valueless records are dropped and counted; an outer side emits a keyless
/// record at once, joined with nothing.
#[test]
fn records_without_key_or_value() {
    let builder = StreamsBuilder::new();
    let l = builder.stream::<Option<String>, Option<String>>("left");
    let r = builder.stream::<Option<String>, Option<String>>("right");
    let joined = l.outer_join_stream(
        &r,
        |a, b| {
            let side =
                |v: Option<&Option<String>>| v.and_then(|v| v.clone()).unwrap_or("null".into());
            format!("{}+{}", side(a), side(b))
        },
        windows(),
        Materialized::with_kind(StoreKind::InMemory),
    );
    joined.to("out");
    let dropped = joined.dropped_records();
    let mut driver = TopologyTestDriver::new(&builder.build().unwrap(), 0).unwrap();
    driver.pipe_input("left", None, Some(b"L"), 1_000).unwrap();
    driver.pipe_input("right", Some(b"k"), None, 1_000).unwrap();
    driver.pipe_input("left", None, None, 1_000).unwrap();
    let out = driver.read_all_output("out");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, None);
    assert_eq!(out[0].value.as_deref(), Some(&b"L+null"[..]));
    assert_eq!(dropped.load(Ordering::Relaxed), 2);
}

/// The left join's waiting records survive a restart: the stores are changelogged, and a
/// fresh task over the restored stores (stream time unknown) still emits a waiting record once
/// a later record shows its window closed.
#[test]
fn waiting_records_survive_a_restart() {
    let build = || {
        let builder = StreamsBuilder::new();
        let l = builder.stream::<String, String>("left");
        let r = builder.stream::<String, String>("right");
        l.left_join_stream(
            &r,
            |a, b| format!("{a}+{}", or_null(b)),
            windows(),
            Materialized::with_kind(StoreKind::RocksDb),
        )
        .to("out");
        builder.build().unwrap()
    };
    let stores = [
        "KSTREAM-JOINTHIS-0000000004-store",
        "KSTREAM-OUTEROTHER-0000000005-store",
        "KSTREAM-OUTERSHARED-0000000004-store",
    ];
    let mut first = TopologyTestDriver::new(&build(), 0).unwrap();
    first
        .pipe_input("left", Some(b"a"), Some(b"L1"), 1_000)
        .unwrap();
    assert!(first.read_all_output("out").is_empty());
    let changelog = first.changelog();
    first.close().unwrap();

    let mut second = TopologyTestDriver::new(&build(), 0).unwrap();
    for store in stores {
        let records: Vec<_> = changelog
            .iter()
            .filter(|(topic, _, _)| topic.ends_with(&format!("{store}-changelog")))
            .map(|(_, _, r)| r.clone())
            .collect();
        if store.contains("OUTERSHARED") || store.contains("JOINTHIS") {
            assert_eq!(records.len(), 1, "{store}");
        }
        second
            .store(store)
            .unwrap()
            .restore_batch(&records)
            .unwrap();
    }
    // 1000 + 5000 + 2000 < 10000: L1's window has closed.
    second
        .pipe_input("right", Some(b"b"), Some(b"R"), 10_000)
        .unwrap();
    let out: Vec<_> = second
        .read_all_output("out")
        .into_iter()
        .map(|r| (r.key.unwrap(), r.value.unwrap(), r.timestamp))
        .collect();
    assert_eq!(out, vec![(b"a".to_vec(), b"L1+null".to_vec(), 1_000)]);
}
