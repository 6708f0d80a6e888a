//! The DSL builds the topology the Processor API would: same nodes, names, edges and stores,
//! described in Kafka Streams' format.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_engine::dsl::{Materialized, StreamsBuilder};
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    processor, Processor, ProcessorContext, ProcessorSupplier, Record, Result, Topology,
};

struct Noop;

impl Processor for Noop {
    fn process(&mut self, _: &mut ProcessorContext<'_>, _: Record) -> Result<()> {
        Ok(())
    }
}

fn noop() -> ProcessorSupplier {
    processor::supplier(|| Noop)
}

#[test]
fn stream_table_join_pipeline_describes_like_its_processor_api_twin() -> Result<()> {
    let b = StreamsBuilder::new();
    let users = b.table::<String, String>("users", Materialized::as_("users", StoreKind::InMemory));
    b.stream::<String, String>("orders")
        .filter(|_, v| !v.is_empty())
        .join(&users, |item, name| format!("{name}:{item}"))
        .map_values(|v| v.len() as i64)
        .to("out");
    let dsl = b.build()?;

    let mut hand = Topology::new();
    hand.add_source("KSTREAM-SOURCE-0000000000", &["users"])?
        .add_processor(
            "KTABLE-SOURCE-0000000001",
            noop(),
            &["KSTREAM-SOURCE-0000000000"],
        )?
        .add_state_store(
            StoreSpec::new("users", StoreKind::InMemory),
            &["KTABLE-SOURCE-0000000001"],
        )?
        .add_source("KSTREAM-SOURCE-0000000002", &["orders"])?
        .add_processor(
            "KSTREAM-FILTER-0000000003",
            noop(),
            &["KSTREAM-SOURCE-0000000002"],
        )?
        .add_processor(
            "KSTREAM-JOIN-0000000004",
            noop(),
            &["KSTREAM-FILTER-0000000003"],
        )?
        .connect_processor_and_state_store("KSTREAM-JOIN-0000000004", "users")?
        .add_processor(
            "KSTREAM-MAPVALUES-0000000005",
            noop(),
            &["KSTREAM-JOIN-0000000004"],
        )?
        .add_sink(
            "KSTREAM-SINK-0000000006",
            "out",
            &["KSTREAM-MAPVALUES-0000000005"],
        )?;

    assert_eq!(dsl.describe().to_string(), hand.describe().to_string());
    assert_eq!(dsl.subtopologies(), hand.subtopologies());
    assert_eq!(dsl.source_topics(), hand.source_topics());
    assert_eq!(dsl.sink_topics(), hand.sink_topics());
    Ok(())
}

#[test]
fn split_merge_aggregate_and_global_join_describe_like_their_processor_api_twin() -> Result<()> {
    let b = StreamsBuilder::new();
    let products = b.global_table::<String, String>(
        "products",
        Materialized::as_("products", StoreKind::InMemory),
    );
    let events = b.stream::<String, i64>("events");
    let branches = events.split().branch(|_, v| *v > 0).default_branch();
    branches[0]
        .merge(&branches[1].map_values(|v| -v))
        .join_global(&products, |k, _| k.clone(), |v, p| format!("{p}:{v}"))
        .map(|k, v| (v, k))
        .group_by_key()
        .count(Materialized::as_("counts", StoreKind::InMemory))
        .to_stream()
        .to("counts-out");
    let dsl = b.build()?;

    let mut hand = Topology::new();
    hand.add_global_store(
        StoreSpec::new("products", StoreKind::InMemory),
        "KSTREAM-SOURCE-0000000000",
        "products",
        "KTABLE-SOURCE-0000000001",
        noop(),
    )?
    .add_source("KSTREAM-SOURCE-0000000002", &["events"])?
    .add_processor(
        "KSTREAM-BRANCH-0000000003",
        noop(),
        &["KSTREAM-SOURCE-0000000002"],
    )?
    .add_processor(
        "KSTREAM-BRANCH-00000000031",
        noop(),
        &["KSTREAM-BRANCH-0000000003"],
    )?
    .add_processor(
        "KSTREAM-BRANCH-00000000032",
        noop(),
        &["KSTREAM-BRANCH-0000000003"],
    )?
    .add_processor(
        "KSTREAM-MAPVALUES-0000000004",
        noop(),
        &["KSTREAM-BRANCH-00000000032"],
    )?
    .add_processor(
        "KSTREAM-MERGE-0000000005",
        noop(),
        &["KSTREAM-BRANCH-00000000031", "KSTREAM-MAPVALUES-0000000004"],
    )?
    .add_processor(
        "KSTREAM-JOIN-0000000006",
        noop(),
        &["KSTREAM-MERGE-0000000005"],
    )?
    .add_processor(
        "KSTREAM-MAP-0000000007",
        noop(),
        &["KSTREAM-JOIN-0000000006"],
    )?
    .add_processor(
        "counts-repartition-filter",
        noop(),
        &["KSTREAM-MAP-0000000007"],
    )?
    .add_sink(
        "counts-repartition-sink",
        "counts-repartition",
        &["counts-repartition-filter"],
    )?
    .add_source("counts-repartition-source", &["counts-repartition"])?
    .add_processor(
        "KSTREAM-AGGREGATE-0000000008",
        noop(),
        &["counts-repartition-source"],
    )?
    .add_state_store(
        StoreSpec::new("counts", StoreKind::InMemory),
        &["KSTREAM-AGGREGATE-0000000008"],
    )?
    .add_processor(
        "KTABLE-TOSTREAM-0000000009",
        noop(),
        &["KSTREAM-AGGREGATE-0000000008"],
    )?
    .add_sink(
        "KSTREAM-SINK-0000000010",
        "counts-out",
        &["KTABLE-TOSTREAM-0000000009"],
    )?;

    assert_eq!(dsl.describe().to_string(), hand.describe().to_string());
    assert_eq!(dsl.global_topics(), hand.global_topics());
    Ok(())
}

#[test]
fn word_count_describes_exactly_as_kafka_streams_prints_it() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<(), String>("streams-plaintext-input")
        .flat_map_values(|line| {
            line.to_lowercase()
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone())
        .count(Materialized::as_("counts-store", StoreKind::RocksDb))
        .to_stream()
        .to("streams-wordcount-output");
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [streams-plaintext-input])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
      --> counts-store-repartition-filter
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Processor: counts-store-repartition-filter (stores: [])
      --> counts-store-repartition-sink
      <-- KSTREAM-KEY-SELECT-0000000002
    Sink: counts-store-repartition-sink (topic: counts-store-repartition)
      <-- counts-store-repartition-filter

   Sub-topology: 1
    Source: counts-store-repartition-source (topics: [counts-store-repartition])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [counts-store])
      --> KTABLE-TOSTREAM-0000000004
      <-- counts-store-repartition-source
    Processor: KTABLE-TOSTREAM-0000000004 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-AGGREGATE-0000000003
    Sink: KSTREAM-SINK-0000000005 (topic: streams-wordcount-output)
      <-- KTABLE-TOSTREAM-0000000004

";
    assert_eq!(b.build()?.describe().to_string(), expected);
    Ok(())
}

#[test]
fn global_table_describes_as_a_global_store_sub_topology() -> Result<()> {
    let b = StreamsBuilder::new();
    b.global_table::<String, String>("rates", Materialized::with_kind(StoreKind::InMemory));
    b.stream::<String, String>("in").to("out");
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000003 (topics: [in])
      --> KSTREAM-SINK-0000000004
    Sink: KSTREAM-SINK-0000000004 (topic: out)
      <-- KSTREAM-SOURCE-0000000003

  Sub-topology: 1 for global store (will not generate tasks)
    Source: KSTREAM-SOURCE-0000000001 (topics: [rates])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [rates-STATE-STORE-0000000000])
      --> none
      <-- KSTREAM-SOURCE-0000000001

";
    assert_eq!(b.build()?.describe().to_string(), expected);
    Ok(())
}
