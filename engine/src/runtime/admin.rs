//! Topic metadata and creation of the internal topics (changelogs, instance metadata).

use crate::runtime::config::StreamsConfig;
use crate::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use std::collections::HashMap;
use std::time::Duration;

/// Partition counts of the topics that exist, by name.
pub fn partition_counts(config: &StreamsConfig) -> Result<HashMap<String, i32>> {
    let consumer: BaseConsumer = config
        .client_for(ks_kafka::ClientKind::Admin)
        .create()
        .map_err(Error::kafka("creating a metadata client"))?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(15))
        .map_err(Error::kafka("fetching metadata"))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

/// A topic the runtime needs.
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub compacted: bool,
}

/// Creates the topics that do not exist yet. An existing topic with fewer partitions than
/// needed is an error: a changelog must have a partition per task.
pub fn ensure_topics(config: &StreamsConfig, topics: &[TopicSpec]) -> Result<()> {
    let existing = partition_counts(config)?;
    let mut missing = Vec::new();
    for t in topics {
        match existing.get(&t.name) {
            Some(&n) if n < t.partitions => {
                return Err(Error::InvalidConfig(format!(
                    "topic {} has {n} partitions, {} needed",
                    t.name, t.partitions
                )))
            }
            Some(_) => {}
            None => missing.push(t),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = config
        .client_for(ks_kafka::ClientKind::Admin)
        .create()
        .map_err(Error::kafka("creating an admin client"))?;
    let new: Vec<NewTopic> = missing
        .iter()
        .map(|t| {
            let nt = NewTopic::new(
                &t.name,
                t.partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            if t.compacted {
                nt.set("cleanup.policy", "compact")
            } else {
                nt
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(15)));
    let results = futures_executor::block_on(admin.create_topics(new.iter(), &opts))
        .map_err(Error::kafka("creating topics"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::kafka(format!("creating topic {topic}"))(
                    rdkafka::error::KafkaError::AdminOp(code),
                ))
            }
        }
    }
    // Metadata propagates asynchronously; wait until every topic is visible.
    for _ in 0..50 {
        let now = partition_counts(config)?;
        if topics.iter().all(|t| now.contains_key(&t.name)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Error::InvalidConfig(
        "created topics did not appear in metadata".into(),
    ))
}

/// Kafka's default partitioner hash (murmur2, as the Java client and librdkafka's
/// `murmur2_random` use), so a key's partition can be computed for interactive queries.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const SEED: u32 = 0x9747_b28c;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = len / 4;
    for i in 0..chunks {
        let b = &data[i * 4..i * 4 + 4];
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = &data[chunks * 4..];
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition Kafka's default partitioner gives `key` among `n`.
pub fn partition_for_key(key: &[u8], n: i32) -> i32 {
    if n <= 0 {
        return 0;
    }
    ((murmur2(key) & 0x7fff_ffff) % n as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_java_partitioner() {
        // Values from org.apache.kafka.common.utils.Utils.murmur2 (Kafka's own unit tests).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }
}
