//! The README's list of tansu's differences from Apache Kafka, checked on both brokers: which
//! behaviour holds where. ks codes for both (never for one broker's bug); these tests keep the
//! list true.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_broker::{Broker, BrokerKind, BrokerOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

struct Observed {
    /// High watermark after 10 flushed batches of 100 records.
    high_watermark: i64,
    /// Members DescribeGroups lists for a group with one active consumer.
    group_members: usize,
    /// Records a read_committed reader sees after an aborted (5) and a committed (3) transaction.
    read_committed: usize,
    /// Whether a topic is still there after the broker is stopped and started again.
    topic_survives_restart: bool,
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("log_level", "3");
    c
}

fn create(bootstrap: &str, topic: &str) {
    block_on(ks_client::kafka::ensure_topics(bootstrap, &[(topic, 1)])).unwrap();
}

fn high_watermark(bootstrap: &str) -> i64 {
    let topic = unique("wm");
    create(bootstrap, &topic);
    let p: BaseProducer = config(bootstrap).create().unwrap();
    for batch in 0..10 {
        for i in 0..100 {
            let v = format!("{batch}-{i}");
            p.send(BaseRecord::<(), str>::to(&topic).payload(&v))
                .unwrap();
        }
        p.flush(Duration::from_secs(10)).unwrap();
    }
    let c: BaseConsumer = config(bootstrap).create().unwrap();
    c.fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap()
        .1
}

fn group_members(bootstrap: &str) -> usize {
    let (topic, group) = (unique("grp"), unique("group"));
    create(bootstrap, &topic);
    let c: BaseConsumer = config(bootstrap)
        .set("group.id", &group)
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    c.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.assignment().map(|a| a.count()).unwrap_or(0) == 0 && Instant::now() < deadline {
        c.poll(Duration::from_millis(100));
    }
    assert!(c.assignment().unwrap().count() > 0, "the consumer joined");
    let groups = c
        .fetch_group_list(Some(&group), Duration::from_secs(10))
        .unwrap();
    groups
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .map_or(0, |g| g.members().len())
}

fn read_committed(bootstrap: &str) -> usize {
    let topic = unique("txn");
    create(bootstrap, &topic);
    let p: BaseProducer = config(bootstrap)
        .set("transactional.id", unique("tid"))
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    for (n, commit) in [(5, false), (3, true)] {
        p.begin_transaction().unwrap();
        for i in 0..n {
            let v = format!("{commit}-{i}");
            p.send(BaseRecord::<(), str>::to(&topic).payload(&v))
                .unwrap();
        }
        p.flush(Duration::from_secs(10)).unwrap();
        if commit {
            p.commit_transaction(Duration::from_secs(30)).unwrap();
        } else {
            p.abort_transaction(Duration::from_secs(30)).unwrap();
        }
    }
    let c: BaseConsumer = config(bootstrap)
        .set("group.id", "reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.payload().is_some() => seen += 1,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            _ => {}
        }
    }
    seen
}

fn topic_survives_restart(broker: &mut Broker) -> bool {
    let topic = unique("keep");
    create(broker.bootstrap_servers(), &topic);
    broker.stop();
    broker.restart().unwrap();
    let c: BaseConsumer = config(broker.bootstrap_servers()).create().unwrap();
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    md.topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
}

fn observe(kind: BrokerKind) -> Observed {
    let mut broker = Broker::start(kind, BrokerOptions::default()).unwrap();
    let bs = broker.bootstrap_servers().to_string();
    let observed = Observed {
        high_watermark: high_watermark(&bs),
        group_members: group_members(&bs),
        read_committed: read_committed(&bs),
        topic_survives_restart: topic_survives_restart(&mut broker),
    };
    println!(
        "{kind}: high watermark {} of 1000, group members {}, read_committed sees {} of 3, topic survives restart {}",
        observed.high_watermark,
        observed.group_members,
        observed.read_committed,
        observed.topic_survives_restart
    );
    observed
}

#[test]
fn apache_kafka_behaves_as_the_protocol_says() {
    let k = observe(BrokerKind::Kafka);
    assert_eq!(k.high_watermark, 1000);
    assert_eq!(k.group_members, 1);
    assert_eq!(k.read_committed, 3);
    assert!(k.topic_survives_restart);
}

#[test]
fn tansu_differs_where_the_readme_says() {
    let t = observe(BrokerKind::Tansu);
    assert!(
        t.high_watermark < 1000,
        "the watermark under-reports the log end"
    );
    assert_eq!(t.group_members, 0, "DescribeGroups lists no members");
    assert_eq!(t.read_committed, 8, "read_committed sees aborted records");
    assert!(!t.topic_survives_restart, "a restart loses every topic");
}
