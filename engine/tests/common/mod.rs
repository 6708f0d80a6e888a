//! Shared helpers for the broker-backed engine tests.
#![allow(dead_code)]

use ks_engine::runtime::admin::{ensure_topics, TopicSpec};
use ks_engine::StreamsConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

pub fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    // RUST_LOG=info shows what the runtime does when a test fails.
    let _ = env_logger::builder().is_test(true).try_init();
    let cfg = StreamsConfig::new("admin", bootstrap);
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|(n, p)| TopicSpec {
            name: n.to_string(),
            partitions: *p,
            compacted: false,
        })
        .collect();
    ensure_topics(&cfg, &specs).unwrap();
}

/// Produces keyed records with the Java-compatible partitioner the engine assumes.
pub fn produce(bootstrap: &str, topic: &str, records: &[(String, String)]) {
    send_all(
        bootstrap,
        topic,
        records.iter().map(|(k, v)| (k.as_str(), v.as_str(), None)),
    );
}

/// Like [`produce`], each record with its own timestamp (event time, ms).
pub fn produce_at(bootstrap: &str, topic: &str, records: &[(String, String, i64)]) {
    send_all(
        bootstrap,
        topic,
        records
            .iter()
            .map(|(k, v, ts)| (k.as_str(), v.as_str(), Some(*ts))),
    );
}

fn send_all<'a>(
    bootstrap: &str,
    topic: &str,
    records: impl Iterator<Item = (&'a str, &'a str, Option<i64>)>,
) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for (k, v, ts) in records {
        loop {
            let mut record = BaseRecord::to(topic).key(k).payload(v);
            if let Some(ts) = ts {
                record = record.timestamp(ts);
            }
            match p.send(record) {
                Ok(()) => break,
                Err((e, _)) => {
                    assert!(matches!(e, KafkaError::MessageProduction(_)), "{e}");
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The key and value bytes as they are (binary keys and values: windowed keys, counts).
    pub raw_key: Option<Vec<u8>>,
    pub raw_value: Option<Vec<u8>>,
}

/// Everything in `topic`, read to the end of every partition.
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<Read> {
    read_all_with(bootstrap, topic, None)
}

/// Everything committed in `topic` (`isolation.level=read_committed`, explicitly): records of
/// aborted transactions are hidden on Apache Kafka (tansu shows them, see the README).
pub fn read_all_committed(bootstrap: &str, topic: &str) -> Vec<Read> {
    read_all_with(bootstrap, topic, Some("read_committed"))
}

/// Everything in `topic` read with `isolation.level` = `isolation` (`None`: librdkafka's
/// default, read_committed).
pub fn read_all_with(bootstrap: &str, topic: &str, isolation: Option<&str>) -> Vec<Read> {
    let mut config = ClientConfig::new();
    if let Some(level) = isolation {
        config.set("isolation.level", level);
    }
    let c: BaseConsumer = config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let n = md.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut eof = std::collections::HashSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof.len() < n as usize && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                raw_key: m.key().map(<[u8]>::to_vec),
                raw_value: m.payload().map(<[u8]>::to_vec),
            }),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            _ => {}
        }
    }
    out
}

/// The group's committed offset per partition of `topic` (-1001 = none).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1001,
        })
        .collect()
}

/// `n` keyed records: keys `w0..w{keys-1}` in turn, values `v<i>`.
pub fn keyed(n: usize, keys: usize, start: usize) -> Vec<(String, String)> {
    (start..start + n)
        .map(|i| (format!("w{}", i % keys), format!("v{i}")))
        .collect()
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

pub fn test_config(app: &str, bootstrap: &str, state_dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new(app, bootstrap)
        .with_state_dir(state_dir)
        .with_commit_interval(Duration::from_millis(200))
        .with_session_timeout(Duration::from_secs(6))
        .with_max_poll_interval(Duration::from_secs(20))
}

/// Partition counts of every topic on the broker.
pub fn partition_counts(bootstrap: &str) -> std::collections::HashMap<String, i32> {
    ks_engine::runtime::admin::partition_counts(&StreamsConfig::new("probe", bootstrap)).unwrap()
}

/// Keeps the last value of each key in store `kv`.
pub struct LastValue;

impl ks_engine::Processor for LastValue {
    fn process(
        &mut self,
        ctx: &mut ks_engine::ProcessorContext<'_>,
        r: ks_engine::Record,
    ) -> ks_engine::Result<()> {
        let key = r.key.clone().unwrap_or_default();
        ctx.store("kv")?.put(&key, &r.value.unwrap_or_default())?;
        Ok(())
    }
}

/// `input` → [`LastValue`] into the store `kv` of `spec`.
pub fn last_value_topology(input: &str, spec: ks_engine::stores::StoreSpec) -> ks_engine::Topology {
    let mut t = ks_engine::Topology::new();
    t.add_source("in", &[input])
        .unwrap()
        .add_processor(
            "last",
            ks_engine::processor::supplier(|| LastValue),
            &["in"],
        )
        .unwrap()
        .add_state_store(spec, &["last"])
        .unwrap();
    t
}
