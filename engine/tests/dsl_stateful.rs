//! The DSL's tables, global tables, aggregations, joins and processors with stores, run through
//! the test driver.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_engine::dsl::{Json, Materialized, StreamsBuilder};
use ks_engine::stores::{I64Serde, JsonSerde, Serde, StoreKind, StringSerde, TypedStore};
use ks_engine::{
    processor, Error, Processor, ProcessorContext, Record, Result, TopologyTestDriver,
};

fn i(x: i64) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

fn strings(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(String, Option<String>)> {
    driver
        .read_all_output(topic)
        .into_iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                r.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            )
        })
        .collect()
}

fn counts(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(String, i64)> {
    driver
        .read_all_output(topic)
        .into_iter()
        .map(|r| {
            let k = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
            let v = r.value.map_or(-1, |v| I64Serde.decode(&v).unwrap_or(-2));
            (k, v)
        })
        .collect()
}

fn kv(k: &str, v: &str) -> (String, Option<String>) {
    (k.to_string(), Some(v.to_string()))
}

#[test]
fn table_keeps_the_latest_value_and_a_tombstone_deletes_it_in_every_store_kind() -> Result<()> {
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let b = StreamsBuilder::new();
        let table = b.table::<String, String>("users", Materialized::as_("users-store", kind));
        assert_eq!(table.store_name(), "users-store");
        let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
        d.pipe_input("users", Some(b"u1"), Some(b"ann"), 1)?;
        d.pipe_input("users", Some(b"u2"), Some(b"bob"), 2)?;
        d.pipe_input("users", Some(b"u1"), Some(b"anne"), 3)?;
        d.pipe_input("users", Some(b"u2"), None, 4)?;
        let store = TypedStore::new(d.store("users-store")?, StringSerde, StringSerde);
        assert_eq!(
            store.all()?,
            vec![("u1".to_string(), "anne".to_string())],
            "{kind}"
        );
    }
    Ok(())
}

#[test]
fn table_writes_are_changelogged_tombstones_included() -> Result<()> {
    let b = StreamsBuilder::new();
    b.table::<String, String>(
        "users",
        Materialized::as_("users-store", StoreKind::InMemory),
    );
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("users", Some(b"u1"), Some(b"ann"), 1)?;
    d.pipe_input("users", Some(b"u1"), None, 2)?;
    let log = d.changelog();
    let topic = "test-driver-users-store-changelog".to_string();
    assert_eq!(
        log,
        vec![
            (topic.clone(), 0, (b"u1".to_vec(), Some(b"ann".to_vec()))),
            (topic, 0, (b"u1".to_vec(), None)),
        ]
    );
    Ok(())
}

#[test]
fn table_without_logging_writes_no_changelog() -> Result<()> {
    let b = StreamsBuilder::new();
    b.table::<String, String>(
        "users",
        Materialized::as_("users-store", StoreKind::InMemory).with_logging(false),
    );
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("users", Some(b"u1"), Some(b"ann"), 1)?;
    assert!(d.changelog().is_empty());
    assert_eq!(d.store("users-store")?.get(b"u1")?, Some(b"ann".to_vec()));
    Ok(())
}

#[test]
fn table_to_stream_emits_every_update_and_deletes_as_none() -> Result<()> {
    let b = StreamsBuilder::new();
    b.table::<String, String>("users", Materialized::with_kind(StoreKind::InMemory))
        .to_stream()
        .map_values(|v| v.unwrap_or_else(|| "<deleted>".into()))
        .to("changes");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("users", Some(b"u1"), Some(b"ann"), 1)?;
    d.pipe_input("users", Some(b"u1"), None, 2)?;
    d.pipe_input("users", None, Some(b"keyless"), 3)?;
    assert_eq!(
        strings(&mut d, "changes"),
        vec![kv("u1", "ann"), kv("u1", "<deleted>")]
    );
    Ok(())
}

#[test]
fn unnamed_stores_get_kafka_streams_generated_names() -> Result<()> {
    let b = StreamsBuilder::new();
    let table = b.table::<String, String>("users", Materialized::with_kind(StoreKind::InMemory));
    assert_eq!(table.store_name(), "users-STATE-STORE-0000000000");
    assert_eq!(table.node_name(), "KTABLE-SOURCE-0000000002");
    let counted = b
        .stream::<String, String>("clicks")
        .group_by_key()
        .count(Materialized::with_kind(StoreKind::InMemory));
    assert_eq!(
        counted.store_name(),
        "KSTREAM-AGGREGATE-STATE-STORE-0000000004"
    );
    assert_eq!(counted.node_name(), "KSTREAM-AGGREGATE-0000000005");
    let topology = b.build()?;
    let names: Vec<_> = topology
        .store_specs()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(
        names,
        vec![
            "users-STATE-STORE-0000000000",
            "KSTREAM-AGGREGATE-STATE-STORE-0000000004"
        ]
    );
    Ok(())
}

#[test]
fn a_store_name_used_twice_fails_at_build() {
    let b = StreamsBuilder::new();
    b.table::<String, String>("a", Materialized::as_("s", StoreKind::InMemory));
    b.table::<String, String>("b", Materialized::as_("s", StoreKind::InMemory));
    assert!(matches!(b.build(), Err(Error::InvalidTopology(_))));
}

#[test]
fn count_by_key_emits_each_new_count_and_stores_it() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks")
        .group_by_key()
        .count(Materialized::as_("click-counts", StoreKind::InMemory))
        .to_stream()
        .to("counts");
    let topology = b.build()?;
    // The key did not change: no repartition topic.
    assert_eq!(topology.subtopologies().len(), 1);
    let mut d = TopologyTestDriver::new(&topology, 0)?;
    for (k, t) in [("a", 1), ("b", 2), ("a", 3)] {
        d.pipe_input("clicks", Some(k.as_bytes()), Some(b"x"), t)?;
    }
    // Records without key or value are skipped, as in Kafka Streams.
    d.pipe_input("clicks", None, Some(b"x"), 4)?;
    d.pipe_input("clicks", Some(b"a"), None, 5)?;
    assert_eq!(
        counts(&mut d, "counts"),
        vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]
    );
    let store = TypedStore::new(d.store("click-counts")?, StringSerde, I64Serde);
    assert_eq!(store.get(&"a".to_string())?, Some(2));
    Ok(())
}

#[test]
fn reduce_combines_values_per_key() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("amounts")
        .group_by_key()
        .reduce(
            |a, b| a.max(b),
            Materialized::as_("max", StoreKind::InMemory),
        )
        .to_stream()
        .to("maxima");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    for (n, t) in [(5, 1), (3, 2), (9, 3)] {
        d.pipe_input("amounts", Some(b"k"), Some(&i(n)), t)?;
    }
    assert_eq!(
        counts(&mut d, "maxima"),
        vec![("k".into(), 5), ("k".into(), 5), ("k".into(), 9)]
    );
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
struct Stats {
    n: u32,
    sum: i64,
}

#[test]
fn aggregate_folds_into_a_json_aggregate_from_the_initializer() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("amounts").group_by_key().aggregate(
        || Json(Stats::default()),
        |_, v, Json(s)| {
            Json(Stats {
                n: s.n + 1,
                sum: s.sum + v,
            })
        },
        Materialized::as_("stats", StoreKind::RocksDb),
    );
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    for (k, n) in [("a", 2), ("a", 5), ("b", 1)] {
        d.pipe_input("amounts", Some(k.as_bytes()), Some(&i(n)), 1)?;
    }
    let store = TypedStore::new(d.store("stats")?, StringSerde, JsonSerde::<Stats>::new());
    assert_eq!(store.get(&"a".to_string())?, Some(Stats { n: 2, sum: 7 }));
    assert_eq!(store.get(&"b".to_string())?, Some(Stats { n: 1, sum: 1 }));
    // Aggregates are changelogged like any store write.
    assert_eq!(d.changelog().len(), 3);
    Ok(())
}

#[test]
fn group_by_repartitions_through_a_topic_named_after_the_store() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("purchases")
        .group_by(|_, item| item.clone())
        .count(Materialized::as_("per-item", StoreKind::InMemory))
        .to_stream()
        .to("item-counts");
    let topology = b.build()?;
    assert_eq!(topology.subtopologies().len(), 2);
    assert!(topology
        .sink_topics()
        .contains(&"per-item-repartition".to_string()));
    assert!(topology
        .source_topics()
        .contains(&"per-item-repartition".to_string()));
    let mut d = TopologyTestDriver::new(&topology, 0)?;
    d.pipe_input("purchases", Some(b"ann"), Some(b"pen"), 1)?;
    d.pipe_input("purchases", Some(b"bob"), Some(b"pen"), 2)?;
    d.pipe_input("purchases", Some(b"bob"), Some(b"ink"), 3)?;
    assert_eq!(
        counts(&mut d, "item-counts"),
        vec![("pen".into(), 1), ("pen".into(), 2), ("ink".into(), 1)]
    );
    Ok(())
}

#[test]
fn group_by_key_after_a_key_change_repartitions() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .map(|_, v| (v.clone(), v))
        .group_by_key()
        .count(Materialized::with_kind(StoreKind::InMemory));
    let topology = b.build()?;
    assert_eq!(topology.subtopologies().len(), 2);
    assert_eq!(
        topology.sink_topics(),
        vec!["KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition".to_string()]
    );
    Ok(())
}

fn users_and_orders(
    b: &StreamsBuilder,
) -> (
    ks_engine::dsl::KStream<String, String>,
    ks_engine::dsl::KTable<String, String>,
) {
    let users = b.table::<String, String>("users", Materialized::as_("users", StoreKind::InMemory));
    let orders = b.stream::<String, String>("orders");
    (orders, users)
}

#[test]
fn inner_join_enriches_with_the_current_table_value_and_drops_misses() -> Result<()> {
    let b = StreamsBuilder::new();
    let (orders, users) = users_and_orders(&b);
    orders
        .join(&users, |item, name| format!("{name} bought {item}"))
        .to("enriched");
    let topology = b.build()?;
    // The join reads the table's store, so both sources share one sub-topology (co-partitioned).
    assert_eq!(topology.subtopologies().len(), 1);
    let mut d = TopologyTestDriver::new(&topology, 0)?;
    d.pipe_input("orders", Some(b"u1"), Some(b"pen"), 1)?;
    d.pipe_input("users", Some(b"u1"), Some(b"ann"), 2)?;
    d.pipe_input("orders", Some(b"u1"), Some(b"ink"), 3)?;
    d.pipe_input("users", Some(b"u1"), Some(b"anne"), 4)?;
    d.pipe_input("orders", Some(b"u1"), Some(b"cap"), 5)?;
    d.pipe_input("users", Some(b"u1"), None, 6)?;
    d.pipe_input("orders", Some(b"u1"), Some(b"hat"), 7)?;
    d.pipe_input("orders", None, Some(b"keyless"), 8)?;
    assert_eq!(
        strings(&mut d, "enriched"),
        vec![kv("u1", "ann bought ink"), kv("u1", "anne bought cap")]
    );
    Ok(())
}

#[test]
fn left_join_passes_none_for_keys_not_in_the_table() -> Result<()> {
    let b = StreamsBuilder::new();
    let (orders, users) = users_and_orders(&b);
    orders
        .left_join(&users, |item, name| {
            format!("{} bought {item}", name.map_or("?", String::as_str))
        })
        .to("enriched");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("orders", Some(b"u1"), Some(b"pen"), 1)?;
    d.pipe_input("users", Some(b"u1"), Some(b"ann"), 2)?;
    d.pipe_input("orders", Some(b"u1"), Some(b"ink"), 3)?;
    assert_eq!(
        strings(&mut d, "enriched"),
        vec![kv("u1", "? bought pen"), kv("u1", "ann bought ink")]
    );
    Ok(())
}

#[test]
fn join_after_a_key_change_repartitions_the_stream_side() -> Result<()> {
    let b = StreamsBuilder::new();
    let (orders, users) = users_and_orders(&b);
    // orders keyed by order id, value "user:item": re-key by user before joining.
    orders
        .map(|_, v| {
            let (user, item) = v.split_once(':').unwrap_or(("", ""));
            (user.to_string(), item.to_string())
        })
        .join(&users, |item, name| format!("{name}:{item}"))
        .to("enriched");
    let topology = b.build()?;
    assert_eq!(topology.subtopologies().len(), 2);
    let mut d = TopologyTestDriver::new(&topology, 0)?;
    d.pipe_input("users", Some(b"u1"), Some(b"ann"), 1)?;
    d.pipe_input("orders", Some(b"o1"), Some(b"u1:pen"), 2)?;
    assert_eq!(strings(&mut d, "enriched"), vec![kv("u1", "ann:pen")]);
    Ok(())
}

#[test]
fn global_table_join_looks_up_a_selected_key_in_the_whole_table() -> Result<()> {
    let b = StreamsBuilder::new();
    let products = b.global_table::<String, String>(
        "products",
        Materialized::as_("products", StoreKind::InMemory),
    );
    let orders = b.stream::<String, String>("orders");
    orders
        .join_global(
            &products,
            |_, sku| sku.clone(),
            |sku, name| format!("{sku}={name}"),
        )
        .to("named");
    orders
        .left_join_global(
            &products,
            |_, sku| sku.clone(),
            |sku, name| format!("{sku}={}", name.map_or("?", String::as_str)),
        )
        .to("named-or-not");
    let topology = b.build()?;
    assert_eq!(topology.global_store_names(), vec!["products".to_string()]);
    let mut d = TopologyTestDriver::new(&topology, 0)?;
    d.pipe_input("products", Some(b"p1"), Some(b"pen"), 1)?;
    d.pipe_input("orders", Some(b"o1"), Some(b"p1"), 2)?;
    d.pipe_input("orders", Some(b"o2"), Some(b"p2"), 3)?;
    d.pipe_input("products", Some(b"p1"), None, 4)?;
    d.pipe_input("orders", Some(b"o3"), Some(b"p1"), 5)?;
    assert_eq!(strings(&mut d, "named"), vec![kv("o1", "p1=pen")]);
    assert_eq!(
        strings(&mut d, "named-or-not"),
        vec![kv("o1", "p1=pen"), kv("o2", "p2=?"), kv("o3", "p1=?")]
    );
    // A global store is not changelogged: its topic is its changelog.
    assert!(d.changelog().is_empty());
    assert!(d.global_store("products")?.get(b"p1")?.is_none());
    Ok(())
}

#[test]
fn global_table_holds_what_its_topic_holds() -> Result<()> {
    let b = StreamsBuilder::new();
    let rates =
        b.global_table::<String, i64>("rates", Materialized::with_kind(StoreKind::InMemory));
    b.stream::<String, String>("unused").to("nowhere");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    d.pipe_input("rates", Some(b"eur"), Some(&i(108)), 1)?;
    d.pipe_input("rates", Some(b"gbp"), Some(&i(127)), 1)?;
    assert_eq!(
        d.global_store(rates.store_name())?
            .approximate_num_entries()?,
        2
    );
    assert_eq!(
        d.global_store(rates.store_name())?.get(b"eur")?,
        Some(i(108))
    );
    assert!(matches!(
        d.pipe_input("rates", Some(b"chf"), Some(b"x"), 2),
        Err(Error::Deserialization { .. })
    ));
    Ok(())
}

/// Deduplicates by key with a store of its own.
struct Dedup;

impl Processor for Dedup {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let seen = ctx.store("seen")?;
        let Some(key) = r.key.as_deref() else {
            return Ok(());
        };
        if seen.put_if_absent(key, b"")?.is_none() {
            ctx.forward(r);
        }
        Ok(())
    }
}

#[test]
fn process_attaches_a_user_processor_with_its_named_store() -> Result<()> {
    let b = StreamsBuilder::new();
    b.add_store("seen", StoreKind::InMemory);
    b.stream::<String, String>("events")
        .process::<String, String>(processor::supplier(|| Dedup), &["seen"])
        .map_values(|v| v.to_uppercase())
        .to("unique");
    let topology = b.build()?;
    assert!(topology
        .describe()
        .to_string()
        .contains("Processor: KSTREAM-PROCESSOR-0000000001 (stores: [seen])"));
    let mut d = TopologyTestDriver::new(&topology, 0)?;
    d.pipe_input("events", Some(b"e1"), Some(b"a"), 1)?;
    d.pipe_input("events", Some(b"e1"), Some(b"b"), 2)?;
    d.pipe_input("events", Some(b"e2"), Some(b"c"), 3)?;
    assert_eq!(
        strings(&mut d, "unique"),
        vec![kv("e1", "A"), kv("e2", "C")]
    );
    Ok(())
}

#[test]
fn process_without_its_store_connected_fails_with_store_not_connected() -> Result<()> {
    let b = StreamsBuilder::new();
    b.add_store("seen", StoreKind::InMemory);
    let s = b.stream::<String, String>("events");
    s.process::<String, String>(processor::supplier(|| Dedup), &[])
        .to("unique");
    // Another processor owns the store, so the topology is valid.
    s.process::<String, String>(processor::supplier(|| Dedup), &["seen"])
        .to("other");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    let err = d.pipe_input("events", Some(b"e1"), Some(b"a"), 1);
    assert!(matches!(err, Err(Error::StoreNotConnected { store, .. }) if store == "seen"));
    Ok(())
}

#[test]
fn undecodable_table_value_is_a_deserialization_error_and_is_not_stored() -> Result<()> {
    let b = StreamsBuilder::new();
    b.table::<String, i64>(
        "balances",
        Materialized::as_("balances", StoreKind::InMemory),
    );
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    let err = d.pipe_input("balances", Some(b"acct"), Some(b"12"), 1);
    assert!(matches!(
        err,
        Err(Error::Deserialization { topic, offset: 0, .. }) if topic == "balances"
    ));
    assert!(d.store("balances")?.get(b"acct")?.is_none());
    Ok(())
}
