//! Sliding- and session-window aggregations run through ks's `TopologyTestDriver` give exactly
//! the records Kafka Streams' own `TopologyTestDriver` gave on the same inputs (key, value,
//! timestamp, order): the goldens under `tests/golden/dsl/`, written by `scripts/kstreams-oracle`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::time::Duration;

use ks_engine::dsl::{
    KTable, Materialized, SessionWindows, SlidingWindows, StreamsBuilder, TimeWindows, Windowed,
};
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

/// Pipes the golden's inputs and returns what `topic` got: (key, value, timestamp), the key
/// as text or, with `hex`, as hex bytes.
fn run(topology: &Topology, g: &Value, topic: &str, hex: bool) -> Out {
    // Cases ending in `_cached` ran with Kafka Streams' record cache (committing after each
    // input, as both drivers do).
    let cache = g["cache_max_bytes"].as_u64().unwrap_or(0) as usize;
    let mut driver = TopologyTestDriver::with_cache_max_bytes(topology, 0, cache).unwrap();
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
        .read_all_output(topic)
        .into_iter()
        .map(|r| {
            let key = r.key.map(|k| {
                if hex {
                    k.iter().map(|b| format!("{b:02x}")).collect()
                } else {
                    String::from_utf8(k).unwrap()
                }
            });
            (
                key,
                r.value.map(|v| String::from_utf8(v).unwrap()),
                r.timestamp,
            )
        })
        .collect()
}

fn expected(g: &Value, topic: &str, key_field: &str) -> Out {
    g["outputs"][topic]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o[key_field].as_str().map(str::to_string),
                o["value"].as_str().map(str::to_string),
                o["timestamp"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `toStream().map((k, v) -> (k.key()@start/end, String(v))).to(out)`.
fn to_out<V: ToString + 'static>(table: KTable<Windowed<String>, V>) {
    table
        .to_stream()
        .map(|w, v| {
            (
                format!("{}@{}/{}", w.key, w.start, w.end),
                v.map(|v| v.to_string()),
            )
        })
        .to("out");
}

/// The golden's `out` equals what ks gives, on every store backend.
fn check(case: &str, build: impl Fn(&StreamsBuilder, StoreKind)) {
    let g = golden(case);
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let builder = StreamsBuilder::new();
        build(&builder, kind);
        let topology = builder.build().unwrap();
        assert_eq!(
            run(&topology, &g, "out", false),
            expected(&g, "out", "key"),
            "{case} on {kind}"
        );
    }
}

fn sliding() -> SlidingWindows {
    SlidingWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(2))
}

#[test]
fn sliding_count() {
    check("sliding_count", |b, kind| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by_sliding(sliding())
                .count(Materialized::as_("c", kind)),
        )
    });
}

#[test]
fn sliding_reduce() {
    check("sliding_reduce", |b, kind| {
        to_out(
            b.stream::<String, String>("in")
                .map_values(|v| v.parse::<i64>().unwrap_or_default())
                .group_by_key()
                .windowed_by_sliding(sliding())
                .reduce(|a, b| a + b, Materialized::as_("r", kind)),
        )
    });
}

/// Late records are counted: a@3000 at stream time 12000 is wholly late, and a@14000 at
/// stream time 20000 skips its three windows (all closed).
#[test]
fn sliding_late_records_are_counted() {
    let g = golden("sliding_count");
    let builder = StreamsBuilder::new();
    let windowed = builder
        .stream::<String, String>("in")
        .group_by_key()
        .windowed_by_sliding(sliding());
    let dropped = windowed.dropped_records();
    to_out(windowed.count(Materialized::as_("c", StoreKind::InMemory)));
    run(&builder.build().unwrap(), &g, "out", false);
    assert!(dropped.load(std::sync::atomic::Ordering::Relaxed) >= 2);
}

fn sessions() -> SessionWindows {
    SessionWindows::of_inactivity_gap_and_grace(Duration::from_secs(5), Duration::from_secs(2))
}

#[test]
fn session_count() {
    check("session_count", |b, kind| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by_session(sessions())
                .count(Materialized::as_("c", kind)),
        )
    });
}

/// sliding_count's records with Kafka Streams' 10 MB record cache: one record touches each of
/// its windows once, so with a commit per record Kafka Streams forwards what it forwards
/// without a cache, and so must ks.
#[test]
fn sliding_count_cached() {
    assert_eq!(
        golden("sliding_count_cached")["cache_max_bytes"].as_u64(),
        Some(10_485_760)
    );
    check("sliding_count_cached", |b, kind| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by_sliding(sliding())
                .count(Materialized::as_("c", kind)),
        )
    });
}

/// The same records with the 10 MB record cache: a session removed and put again within one
/// commit forwards its final value only, and d@22999 merges into the session the cache still
/// holds though the store below hides it by retention.
#[test]
fn session_count_cached() {
    assert_eq!(
        golden("session_count_cached")["cache_max_bytes"].as_u64(),
        Some(10_485_760)
    );
    check("session_count_cached", |b, kind| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by_session(sessions())
                .count(Materialized::as_("c", kind)),
        )
    });
}

#[test]
fn session_reduce() {
    check("session_reduce", |b, kind| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by_session(sessions())
                .reduce(|a, b| format!("{a},{b}"), Materialized::as_("r", kind)),
        )
    });
}

/// `aggregate` with a merger gives what `reduce` gives when the merger and the aggregator
/// concatenate alike (session_reduce's golden).
#[test]
fn session_aggregate_with_merger() {
    check("session_reduce", |b, kind| {
        let join = |a: String, b: String| {
            if a.is_empty() {
                b
            } else {
                format!("{a},{b}")
            }
        };
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by_session(sessions())
                .aggregate(
                    String::new,
                    move |_, v, agg| join(agg, v),
                    move |_, a, b| join(a, b),
                    Materialized::as_("a", kind),
                ),
        )
    });
}

#[test]
fn session_suppress() {
    check("session_suppress", |b, kind| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by_session(sessions())
                .count(Materialized::as_("c", kind))
                .suppress_until_window_closes(sessions()),
        )
    });
}

/// Late records are counted: b@12000 (session closed) and d@22999 (alone, closed).
#[test]
fn session_late_records_are_counted() {
    let g = golden("session_count");
    let builder = StreamsBuilder::new();
    let windowed = builder
        .stream::<String, String>("in")
        .group_by_key()
        .windowed_by_session(sessions());
    let dropped = windowed.dropped_records();
    to_out(windowed.count(Materialized::as_("c", StoreKind::InMemory)));
    run(&builder.build().unwrap(), &g, "out", false);
    assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 2);
}

/// Both halves of `windowed_key_bytes` in one topology, as the oracle ran it: tumbling keys as
/// `TimeWindowedSerializer` writes them (key ++ start) on `out`, session keys as
/// `SessionWindowedSerializer` writes them (key ++ end ++ start) on `out_session`, tombstones
/// included, on every backend.
#[test]
fn windowed_key_bytes_session() {
    let g = golden("windowed_key_bytes");
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let builder = StreamsBuilder::new();
        let s = builder.stream::<String, String>("in");
        s.group_by_key()
            .windowed_by(TimeWindows::of_size_and_grace(
                Duration::from_secs(10),
                Duration::from_secs(5),
            ))
            .count(Materialized::as_("c", kind))
            .to_stream()
            .map_values(|n| n.map(|n| n.to_string()))
            .to("out");
        s.group_by_key()
            .windowed_by_session(sessions())
            .count(Materialized::as_("s", kind))
            .to_stream()
            .map_values(|n| n.map(|n| n.to_string()))
            .to("out_session");
        let topology = builder.build().unwrap();
        for topic in ["out", "out_session"] {
            assert_eq!(
                run(&topology, &g, topic, true),
                expected(&g, topic, "key_hex"),
                "{topic} on {kind}"
            );
        }
    }
}
