//! KTable algebra, grouped tables and table–table joins give the records Kafka Streams gives:
//! each case runs the topology of `engine/tests/golden/dsl/<case>.json` (written by Kafka
//! Streams' own TopologyTestDriver, scripts/kstreams-oracle) through ks's TopologyTestDriver on
//! the same inputs and compares key, value, timestamp and order of every output record.
#![allow(clippy::unwrap_used)]

use ks_engine::dsl::{KTable, Materialized, StreamsBuilder};
use ks_engine::stores::StoreKind;
use ks_engine::TopologyTestDriver;
use serde_json::Value;

type Out = (Option<String>, Option<String>, i64);

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

/// Runs `case` through the topology `build` makes and asserts the output equals the golden.
fn check(case: &str, build: impl FnOnce(&StreamsBuilder)) {
    let g = golden(case);
    assert_eq!(
        g["cache_max_bytes"].as_i64(),
        Some(0),
        "{case}: cache expected off"
    );
    check_golden(case, &g, build);
}

/// Pipes the golden's inputs through `build`'s topology and compares every output record.
fn check_golden(case: &str, g: &Value, build: impl FnOnce(&StreamsBuilder)) {
    let builder = StreamsBuilder::new();
    build(&builder);
    let topology = builder.build().unwrap();
    // Kafka Streams' record cache as the golden ran with it (both drivers commit after each
    // record they process).
    let cache = g["cache_max_bytes"].as_u64().unwrap_or(0) as usize;
    let mut driver = TopologyTestDriver::with_cache_max_bytes(&topology, 0, cache).unwrap();
    for input in g["inputs"].as_array().unwrap() {
        let key = text(&input["key"]);
        let value = text(&input["value"]);
        driver
            .pipe_input(
                input["topic"].as_str().unwrap(),
                key.as_deref().map(str::as_bytes),
                value.as_deref().map(str::as_bytes),
                input["timestamp"].as_i64().unwrap(),
            )
            .unwrap();
    }
    let got: Vec<Out> = driver
        .read_all_output("out")
        .into_iter()
        .map(|r| {
            let s = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8(b).unwrap());
            (s(r.key), s(r.value), r.timestamp)
        })
        .collect();
    let want: Vec<Out> = g["outputs"]["out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                text(&o["key"]),
                text(&o["value"]),
                o["timestamp"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want, "{case}: ks output differs from Kafka Streams'");
}

fn mem() -> Materialized {
    Materialized::with_kind(StoreKind::InMemory)
}

fn table(b: &StreamsBuilder, topic: &str) -> KTable<String, String> {
    b.table::<String, String>(topic, mem())
}

fn even(v: &str) -> bool {
    v.parse::<i64>().is_ok_and(|n| n % 2 == 0)
}

/// "<group>:<n>" → (group, n).
#[allow(clippy::ptr_arg)] // the shape `group_by` asks for
fn group_and_n(_: &String, v: &String) -> (String, i64) {
    let (g, n) = v.split_once(':').unwrap_or((v, "0"));
    (g.to_string(), n.parse().unwrap_or(0))
}

fn to_out(t: &KTable<String, String>) {
    t.to_stream().to("out");
}

fn count_to_out(t: &KTable<String, i64>) {
    t.to_stream()
        .map_values(|v| v.map(|n| n.to_string()))
        .to("out");
}

#[test]
fn table_filter() {
    check("table_filter", |b| {
        to_out(&table(b, "in").filter(|_, v| even(v)))
    });
}

#[test]
fn table_filter_not() {
    check("table_filter_not", |b| {
        to_out(&table(b, "in").filter_not(|_, v| even(v)))
    });
}

#[test]
fn table_map_values() {
    check("table_map_values", |b| {
        to_out(&table(b, "in").map_values(|v| v.to_uppercase()))
    });
}

#[test]
fn table_group_count() {
    check("table_group_count", |b| {
        count_to_out(
            &table(b, "in")
                .group_by(|_, v| (v.clone(), v.clone()))
                .count(mem()),
        )
    });
}

#[test]
fn table_group_aggregate() {
    check("table_group_aggregate", |b| {
        count_to_out(&table(b, "in").group_by(group_and_n).aggregate(
            || 0i64,
            |_, v, agg| agg + v,
            |_, v, agg| agg - v,
            mem(),
        ))
    });
}

/// With a 10 MB record cache: each input record's updates reach `out` at its commit.
#[test]
fn table_group_aggregate_cached() {
    let g = golden("table_group_aggregate_cached");
    assert_eq!(g["cache_max_bytes"].as_i64(), Some(10_485_760));
    check_golden("table_group_aggregate_cached", &g, |b| {
        count_to_out(&table(b, "in").group_by(group_and_n).aggregate(
            || 0i64,
            |_, v, agg| agg + v,
            |_, v, agg| agg - v,
            mem(),
        ))
    });
}

#[test]
fn table_group_reduce() {
    check("table_group_reduce", |b| {
        count_to_out(&table(b, "in").group_by(group_and_n).reduce(
            |a, b| a + b,
            |a, b| a - b,
            mem(),
        ))
    });
}

fn or_null(v: Option<&String>) -> &str {
    v.map_or("null", String::as_str)
}

#[test]
fn table_join_inner() {
    check("table_join_inner", |b| {
        to_out(&table(b, "left").join(&table(b, "right"), |l, r| format!("{l}+{r}")))
    });
}

#[test]
fn table_join_left() {
    check("table_join_left", |b| {
        to_out(
            &table(b, "left").left_join(&table(b, "right"), |l, r| format!("{l}+{}", or_null(r))),
        )
    });
}

#[test]
fn table_join_outer() {
    check("table_join_outer", |b| {
        to_out(&table(b, "left").outer_join(&table(b, "right"), |l, r| {
            format!("{}+{}", or_null(l), or_null(r))
        }))
    });
}

#[test]
fn fk_join() {
    check("fk_join", |b| {
        let orders = table(b, "left");
        let customers = table(b, "right");
        to_out(&orders.join_fk(
            &customers,
            |o| o.split_once(':').map_or(o.clone(), |(c, _)| c.to_string()),
            |o, c| format!("{}/{c}", o.split_once(':').map_or("", |(_, a)| a)),
        ))
    });
}
