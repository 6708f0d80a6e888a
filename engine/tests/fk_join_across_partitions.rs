//! A foreign-key join whose tables are not co-partitioned (orders keyed by order id over 4
//! partitions, customers keyed by customer id over 2) gives the right join on a real broker:
//! subscriptions travel to the customer's partition and answers back to the order's, through
//! the two internal topics the runtime creates, as in Kafka Streams.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::dsl::{Materialized, StreamsBuilder};
use ks_engine::stores::StoreKind;
use ks_engine::KafkaStreams;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeMap;
use std::time::Duration;

/// Sends keyed records, `None` a tombstone, with Kafka's default partitioner.
fn send(bootstrap: &str, topic: &str, records: &[(String, Option<String>)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    for (k, v) in records {
        let mut r = BaseRecord::to(topic).key(k.as_str());
        if let Some(v) = v {
            r = r.payload(v.as_str());
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// The join as it must be: every order (`<customer>:<amount>`) whose customer exists.
fn expected(
    orders: &BTreeMap<String, String>,
    customers: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    orders
        .iter()
        .filter_map(|(o, v)| {
            let (c, amount) = v.split_once(':')?;
            Some((o.clone(), format!("{amount}/{}", customers.get(c)?)))
        })
        .collect()
}

/// The output topic as a table: the last value per key, a tombstone removing it.
fn output_table(bootstrap: &str, topic: &str) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for r in read_all(bootstrap, topic) {
        let key = r.key.unwrap();
        match r.value {
            Some(v) => table.insert(key, v),
            None => table.remove(&key),
        };
    }
    table
}

fn apply(table: &mut BTreeMap<String, String>, updates: &[(String, Option<String>)]) {
    for (k, v) in updates {
        match v {
            Some(v) => table.insert(k.clone(), v.clone()),
            None => table.remove(k),
        };
    }
}

#[test]
fn a_foreign_key_join_of_tables_partitioned_differently_is_right() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (orders_topic, customers_topic, out, app) = (
        unique("orders"),
        unique("customers"),
        unique("joined"),
        unique("fk"),
    );
    create_topics(bs, &[(&orders_topic, 4), (&customers_topic, 2), (&out, 4)]);

    let builder = StreamsBuilder::new();
    let orders =
        builder.table::<String, String>(&orders_topic, Materialized::with_kind(StoreKind::RocksDb));
    let customers = builder.table::<String, String>(
        &customers_topic,
        Materialized::with_kind(StoreKind::InMemory),
    );
    orders
        .join_fk(
            &customers,
            |o: &String| o.split_once(':').map_or(o.clone(), |(c, _)| c.to_string()),
            |o, c| format!("{}/{c}", o.split_once(':').map_or("", |(_, a)| a)),
        )
        .to_stream()
        .to(&out);
    let topology = builder.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut streams = KafkaStreams::new(topology, test_config(&app, bs, dir.path())).unwrap();
    streams.start().unwrap();

    let (mut order_rows, mut customer_rows) = (BTreeMap::new(), BTreeMap::new());
    let check = |order_rows: &BTreeMap<String, String>,
                 customer_rows: &BTreeMap<String, String>,
                 phase: &str| {
        let want = expected(order_rows, customer_rows);
        let mut got = BTreeMap::new();
        let ok = wait_until(Duration::from_secs(90), || {
            got = output_table(bs, &out);
            got == want
        });
        assert!(
            ok,
            "{phase}: {} results, {} expected; first differences: {:?}",
            got.len(),
            want.len(),
            want.iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .take(5)
                .collect::<Vec<_>>()
        );
        want.len()
    };

    // Phase 1: 20 customers, 200 orders over them (and 10 orders of customers not yet there).
    let customers1: Vec<_> = (0..20)
        .map(|c| (format!("c{c}"), Some(format!("name{c}"))))
        .collect();
    let orders1: Vec<_> = (0..210)
        .map(|i| (format!("o{i}"), Some(format!("c{}:{i}", i % 21))))
        .collect();
    send(bs, &customers_topic, &customers1);
    send(bs, &orders_topic, &orders1);
    apply(&mut customer_rows, &customers1);
    apply(&mut order_rows, &orders1);
    assert_eq!(check(&order_rows, &customer_rows, "phase 1"), 200);

    // Phase 2: customer c20 arrives (its 10 orders join), c3 is renamed, c4 deleted; orders
    // move between customers, change amounts, and some are deleted.
    let customers2 = vec![
        ("c20".to_string(), Some("late".to_string())),
        ("c3".to_string(), Some("renamed".to_string())),
        ("c4".to_string(), None),
    ];
    let orders2: Vec<_> = (0..60)
        .map(|i| {
            let v = match i % 3 {
                0 => Some(format!("c{}:{i}", (i + 7) % 20)), // moves customer
                1 => Some(format!("c{}:{}", i % 21, i + 1000)), // new amount
                _ => None,                                   // deleted
            };
            (format!("o{i}"), v)
        })
        .collect();
    send(bs, &customers_topic, &customers2);
    send(bs, &orders_topic, &orders2);
    apply(&mut customer_rows, &customers2);
    apply(&mut order_rows, &orders2);
    let n = check(&order_rows, &customer_rows, "phase 2");
    assert!(n > 100, "{n}");

    // The internal topics exist with the partition counts of the sides they feed.
    let counts = partition_counts(bs);
    let internal = |part: &str| {
        counts
            .iter()
            .find(|(t, _)| t.starts_with(&app) && t.contains(part) && t.ends_with("-topic"))
            .map(|(_, &n)| n)
    };
    assert_eq!(internal("SUBSCRIPTION-REGISTRATION"), Some(2));
    assert_eq!(internal("SUBSCRIPTION-RESPONSE"), Some(4));
    streams.close().unwrap();
}
