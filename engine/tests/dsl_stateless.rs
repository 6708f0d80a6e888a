//! The DSL's stateless operators, run through the test driver.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_engine::dsl::{Consumed, DefaultSerde, Json, Proto, StreamsBuilder};
use ks_engine::stores::{I64Serde, JsonSerde, ProstSerde, Serde, StringSerde};
use ks_engine::{Error, Record, Result, TopologyTestDriver};
use std::sync::{Arc, Mutex};

fn s(x: &str) -> Vec<u8> {
    x.as_bytes().to_vec()
}

fn i(x: i64) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

/// (key, value) of every record written to `topic`, as strings.
fn strings(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(Option<String>, Option<String>)> {
    driver
        .read_all_output(topic)
        .into_iter()
        .map(|r| {
            (
                r.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                r.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            )
        })
        .collect()
}

fn kv(k: &str, v: &str) -> (Option<String>, Option<String>) {
    (Some(k.to_string()), Some(v.to_string()))
}

#[test]
fn map_changes_key_and_value_types() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("in")
        .map(|k, v| (v, format!("{k}!")))
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", Some(b"a"), Some(&i(7)), 1)?;
    let out = d.read_output("out").unwrap();
    assert_eq!(I64Serde.decode(out.key.as_deref().unwrap()).unwrap(), 7);
    assert_eq!(out.value.as_deref(), Some(&b"a!"[..]));
    Ok(())
}

#[test]
fn map_values_keeps_key_timestamp_and_headers() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .map_values(|v| v.len() as u64)
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    let mut r = Record::new(Some(s("k")), Some(s("hello")), 42);
    r.headers.push(("trace".into(), s("t1")));
    d.pipe("in", r)?;
    let out = d.read_output("out").unwrap();
    assert_eq!(out.key, Some(s("k")));
    assert_eq!(out.value, Some(5u64.to_be_bytes().to_vec()));
    assert_eq!(out.timestamp, 42);
    assert_eq!(out.header("trace"), Some(&b"t1"[..]));
    Ok(())
}

#[test]
fn filter_and_filter_not_split_records_between_them() -> Result<()> {
    let b = StreamsBuilder::new();
    let nums = b.stream::<String, i64>("in");
    nums.filter(|_, v| v % 2 == 0)
        .map_values(|v| v.to_string())
        .to("even");
    nums.filter_not(|_, v| v % 2 == 0)
        .map_values(|v| v.to_string())
        .to("odd");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    for n in 1..=4 {
        d.pipe_input("in", Some(b"k"), Some(&i(n)), n)?;
    }
    assert_eq!(strings(&mut d, "even"), vec![kv("k", "2"), kv("k", "4")]);
    assert_eq!(strings(&mut d, "odd"), vec![kv("k", "1"), kv("k", "3")]);
    Ok(())
}

#[test]
fn flat_map_emits_every_pair_and_flat_map_values_keeps_the_key() -> Result<()> {
    let b = StreamsBuilder::new();
    let lines = b.stream::<String, String>("in");
    lines
        .flat_map(|k, v| {
            v.split(' ')
                .map(|w| (w.to_string(), k.clone()))
                .collect::<Vec<_>>()
        })
        .to("by-word");
    lines
        .flat_map_values(|v| v.split(' ').map(str::to_uppercase).collect::<Vec<_>>())
        .to("upper");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", Some(b"doc1"), Some(b"a b"), 1)?;
    d.pipe_input("in", Some(b"doc2"), Some(b""), 2)?;
    assert_eq!(
        strings(&mut d, "by-word"),
        vec![kv("a", "doc1"), kv("b", "doc1"), kv("", "doc2")]
    );
    assert_eq!(
        strings(&mut d, "upper"),
        vec![kv("doc1", "A"), kv("doc1", "B"), kv("doc2", "")]
    );
    Ok(())
}

#[test]
fn flat_map_values_to_nothing_drops_the_record() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .flat_map_values(|_| Vec::<String>::new())
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", Some(b"k"), Some(b"v"), 1)?;
    assert!(d.read_output("out").is_none());
    Ok(())
}

#[test]
fn peek_sees_each_record_and_passes_it_on() -> Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b = StreamsBuilder::new();
    let log = seen.clone();
    b.stream::<String, String>("in")
        .peek(move |k, v| log.lock().unwrap().push(format!("{k}={v}")))
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", Some(b"a"), Some(b"1"), 1)?;
    d.pipe_input("in", Some(b"b"), Some(b"2"), 2)?;
    assert_eq!(*seen.lock().unwrap(), vec!["a=1", "b=2"]);
    assert_eq!(strings(&mut d, "out"), vec![kv("a", "1"), kv("b", "2")]);
    Ok(())
}

#[test]
fn split_routes_each_record_to_the_first_matching_branch_or_the_default() -> Result<()> {
    let b = StreamsBuilder::new();
    let branches = b
        .stream::<String, i64>("in")
        .split()
        .branch(|_, v| *v < 0)
        .branch(|_, v| *v < 10)
        .default_branch();
    assert_eq!(branches.len(), 3);
    for (n, branch) in branches.iter().enumerate() {
        branch
            .map_values(|v| v.to_string())
            .to(&format!("branch-{n}"));
    }
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    for (t, n) in [-5, 3, 50, -1].into_iter().enumerate() {
        d.pipe_input("in", Some(b"k"), Some(&i(n)), t as i64)?;
    }
    assert_eq!(
        strings(&mut d, "branch-0"),
        vec![kv("k", "-5"), kv("k", "-1")]
    );
    assert_eq!(strings(&mut d, "branch-1"), vec![kv("k", "3")]);
    assert_eq!(strings(&mut d, "branch-2"), vec![kv("k", "50")]);
    Ok(())
}

#[test]
fn split_without_default_drops_unmatched_records() -> Result<()> {
    let b = StreamsBuilder::new();
    let branches = b
        .stream::<String, String>("in")
        .split()
        .branch_as("-short", |_, v| v.len() < 3)
        .no_default_branch();
    assert_eq!(branches.len(), 1);
    assert_eq!(branches[0].node_name(), "KSTREAM-BRANCH-0000000001-short");
    branches[0].to("short");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", Some(b"k"), Some(b"ab"), 1)?;
    d.pipe_input("in", Some(b"k"), Some(b"abcdef"), 2)?;
    assert_eq!(strings(&mut d, "short"), vec![kv("k", "ab")]);
    Ok(())
}

#[test]
fn merge_interleaves_two_streams_in_arrival_order() -> Result<()> {
    let b = StreamsBuilder::new();
    let left = b.stream::<String, String>("left");
    let right = b.stream::<String, String>("right");
    left.merge(&right).to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("left", Some(b"l"), Some(b"1"), 1)?;
    d.pipe_input("right", Some(b"r"), Some(b"2"), 2)?;
    d.pipe_input("left", Some(b"l"), Some(b"3"), 3)?;
    assert_eq!(
        strings(&mut d, "out"),
        vec![kv("l", "1"), kv("r", "2"), kv("l", "3")]
    );
    Ok(())
}

#[test]
fn to_with_partitioner_sets_the_output_partition() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .to_with_partitioner("out", |_: &str, _: &Record, n: i32| Some(n - 1));
    let topology = b.build()?;
    let mut d = TopologyTestDriver::new(&topology, 0)?;
    d.pipe_input("in", Some(b"k"), Some(b"v"), 1)?;
    // The driver's topics have one partition, so the partitioner's choice is 0.
    assert_eq!(strings(&mut d, "out"), vec![kv("k", "v")]);
    assert_eq!(topology.sink_topics(), vec!["out".to_string()]);
    Ok(())
}

#[test]
fn keyless_records_read_as_unit_keys() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<(), String>("in")
        .map(|(), v| (v.clone(), v))
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", None, Some(b"x"), 1)?;
    assert_eq!(strings(&mut d, "out"), vec![kv("x", "x")]);
    Ok(())
}

#[test]
fn option_values_accept_tombstones() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, Option<String>>("in")
        .map_values(|v| v.unwrap_or_else(|| "deleted".into()))
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", Some(b"k"), None, 1)?;
    assert_eq!(strings(&mut d, "out"), vec![kv("k", "deleted")]);
    Ok(())
}

#[test]
fn undecodable_value_is_a_deserialization_error_with_its_source_position() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("numbers")
        .map_values(|v| v + 1)
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("numbers", Some(b"k"), Some(&i(1)), 1)?;
    let err = d.pipe_input("numbers", Some(b"k"), Some(b"abc"), 2);
    assert!(matches!(
        &err,
        Err(Error::Deserialization { topic, partition: 0, offset: 1, reason })
            if topic == "numbers" && reason.contains("KSTREAM-MAPVALUES-0000000001")
    ));
    // The failure leaves the driver usable: the handler decides whether to go on.
    d.pipe_input("numbers", Some(b"k"), Some(&i(5)), 3)?;
    assert_eq!(d.read_all_output("out").len(), 2);
    Ok(())
}

#[test]
fn missing_required_value_and_bad_utf8_key_are_deserialization_errors() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .filter(|_, _| true)
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    assert!(matches!(
        d.pipe_input("in", Some(b"k"), None, 1),
        Err(Error::Deserialization { .. })
    ));
    assert!(matches!(
        d.pipe_input("in", Some(&[0xff, 0xfe]), Some(b"v"), 2),
        Err(Error::Deserialization { offset: 1, .. })
    ));
    Ok(())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Shipment {
    #[prost(string, tag = "1")]
    item: String,
    #[prost(uint32, tag = "2")]
    qty: u32,
}

#[test]
fn json_in_prost_out_through_wrapper_types() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, Json<Order>>("orders")
        .map_values(|Json(o)| {
            Proto(Shipment {
                item: o.item,
                qty: o.qty * 2,
            })
        })
        .to("shipments");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("orders", Some(b"o1"), Some(br#"{"item":"pen","qty":3}"#), 1)?;
    let out = d.read_output("shipments").unwrap();
    let shipment = ProstSerde::<Shipment>::new()
        .decode(out.value.as_deref().unwrap())
        .unwrap();
    assert_eq!(
        shipment,
        Shipment {
            item: "pen".into(),
            qty: 6
        }
    );
    assert!(matches!(
        d.pipe_input("orders", Some(b"o2"), Some(b"{not json"), 2),
        Err(Error::Deserialization { .. })
    ));
    Ok(())
}

/// A type of the application's own: one impl makes it usable everywhere in the DSL.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

impl DefaultSerde for Reading {
    type S = JsonSerde<Reading>;
    fn serde() -> Self::S {
        JsonSerde::new()
    }
}

#[test]
fn own_types_with_default_serde_and_explicit_consumed_serdes() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream_with("raw", Consumed::with(StringSerde, StringSerde))
        .flat_map(|k, v| {
            let celsius = v.parse().ok();
            celsius.map(|celsius| (k.clone(), Reading { sensor: k, celsius }))
        })
        .to("readings");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("raw", Some(b"s1"), Some(b"21.5"), 1)?;
    d.pipe_input("raw", Some(b"s2"), Some(b"warm"), 2)?;
    let out = d.read_all_output("readings");
    assert_eq!(out.len(), 1);
    let reading = JsonSerde::<Reading>::new()
        .decode(out[0].value.as_deref().unwrap())
        .unwrap();
    assert_eq!(
        reading,
        Reading {
            sensor: "s1".into(),
            celsius: 21.5
        }
    );
    Ok(())
}

#[test]
fn reading_one_topic_twice_fails_at_build() {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in").to("a");
    b.stream::<String, String>("in").to("b");
    assert!(matches!(b.build(), Err(Error::InvalidTopology(_))));
}

#[test]
fn bytes_and_numeric_types_use_their_default_serdes() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<Vec<u8>, f64>("in")
        .map(|k, v| (k.len() as i32, v.round() as u32))
        .to("out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("in", Some(&[1, 2, 3]), Some(&2.6f64.to_be_bytes()), 1)?;
    let out = d.read_output("out").unwrap();
    assert_eq!(out.key, Some(3i32.to_be_bytes().to_vec()));
    assert_eq!(out.value, Some(3u32.to_be_bytes().to_vec()));
    Ok(())
}
