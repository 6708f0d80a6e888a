//! Windowed aggregations run through ks's `TopologyTestDriver` give exactly the records Kafka
//! Streams' own `TopologyTestDriver` gave on the same inputs (key, value, timestamp, order):
//! the goldens under `tests/golden/dsl/`, written by `scripts/kstreams-oracle`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::time::Duration;

use ks_engine::dsl::{KTable, Materialized, StreamsBuilder, TimeWindows, Windowed};
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

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Pipes the golden's inputs and returns what `topic` got: (key, value, timestamp), the key
/// as text or, with `hex`, as hex bytes.
fn run(
    topology: &Topology,
    g: &Value,
    topic: &str,
    hex: bool,
) -> Vec<(Option<String>, Option<String>, i64)> {
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

fn expected(g: &Value, topic: &str, key_field: &str) -> Vec<(Option<String>, Option<String>, i64)> {
    g["outputs"][topic]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                text(&o[key_field]),
                text(&o["value"]),
                o["timestamp"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn tumbling() -> TimeWindows {
    TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(5))
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

fn check(case: &str, build: impl FnOnce(&StreamsBuilder)) {
    let g = golden(case);
    let builder = StreamsBuilder::new();
    build(&builder);
    let topology = builder.build().unwrap();
    assert_eq!(
        run(&topology, &g, "out", false),
        expected(&g, "out", "key"),
        "{case}"
    );
}

fn mem(name: &str) -> Materialized {
    Materialized::as_(name, StoreKind::InMemory)
}

#[test]
fn tumbling_count() {
    check("tumbling_count", |b| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by(tumbling())
                .count(mem("c")),
        )
    });
}

#[test]
fn tumbling_count_cached() {
    assert_eq!(
        golden("tumbling_count_cached")["cache_max_bytes"].as_u64(),
        Some(10_485_760)
    );
    check("tumbling_count_cached", |b| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by(tumbling())
                .count(mem("c")),
        )
    });
}

#[test]
fn hopping_count() {
    check("hopping_count", |b| {
        let w = TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(2))
            .advance_by(Duration::from_secs(5));
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by(w)
                .count(mem("c")),
        )
    });
}

#[test]
fn tumbling_reduce() {
    check("tumbling_reduce", |b| {
        to_out(
            b.stream::<String, String>("in")
                .map_values(|v| v.parse::<i64>().unwrap_or_default())
                .group_by_key()
                .windowed_by(tumbling())
                .reduce(|a, b| a + b, mem("r")),
        )
    });
}

#[test]
fn tumbling_aggregate() {
    check("tumbling_aggregate", |b| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by(tumbling())
                .aggregate(
                    String::new,
                    |_, v, agg| {
                        if agg.is_empty() {
                            v
                        } else {
                            format!("{agg},{v}")
                        }
                    },
                    mem("a"),
                ),
        )
    });
}

/// The tumbling half of `windowed_key_bytes`: keys as Kafka Streams' `TimeWindowedSerializer`
/// writes them (key bytes ++ 8-byte start), on every backend. (Session windows: not built yet.)
#[test]
fn windowed_key_bytes_tumbling() {
    let g = golden("windowed_key_bytes");
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("in")
            .group_by_key()
            .windowed_by(tumbling())
            .count(Materialized::as_("c", kind))
            .to_stream()
            .map_values(|n| n.map(|n| n.to_string()))
            .to("out");
        let topology = builder.build().unwrap();
        assert_eq!(
            run(&topology, &g, "out", true),
            expected(&g, "out", "key_hex"),
            "{kind}"
        );
    }
}

#[test]
fn tumbling_suppress() {
    check("tumbling_suppress", |b| {
        to_out(
            b.stream::<String, String>("in")
                .group_by_key()
                .windowed_by(tumbling())
                .count(mem("c"))
                .suppress_until_window_closes(tumbling()),
        )
    });
}
