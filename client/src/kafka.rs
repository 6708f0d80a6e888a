//! The Kafka side of the client: a producer that accounts for every delivery, idempotent topic
//! creation, and a reader that assigns partitions directly (no consumer group: a first group join
//! costs seconds on the local broker and a reader needs no offsets committed).

use crate::{kafka_err, Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts acknowledged and failed deliveries, keeping the first failure (ks-kafka's tracker).
pub use ks_kafka::DeliveryTracker;

/// A producer for the client's topics. Sends never drop a message silently: a full local queue
/// waits for room, and [`Publisher::flush`] reports any message the broker did not acknowledge.
pub struct Publisher {
    producer: ThreadedProducer<DeliveryTracker>,
    sent: AtomicU64,
}

/// The client settings shared by producer, admin and reader (ks-kafka's defaults).
pub fn base_config(bootstrap: &str) -> ClientConfig {
    ks_kafka::client_config(bootstrap)
}

impl Publisher {
    pub fn connect(bootstrap: &str) -> Result<Publisher> {
        let producer = base_config(bootstrap)
            .set("message.timeout.ms", "15000")
            .set("linger.ms", "5")
            .set("compression.type", "none")
            .create_with_context(DeliveryTracker::default())
            .map_err(kafka_err("cannot create producer"))?;
        Ok(Publisher {
            producer,
            sent: AtomicU64::new(0),
        })
    }

    /// Queues one message (a `None` key lets the partitioner spread keyless records).
    pub fn send(&self, topic: &str, key: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        self.send_with_headers(topic, key, payload, &[])
    }

    /// Queues one message for partition `partition` of `topic` (keyless records that must spread
    /// evenly: librdkafka's sticky partitioner may put a whole batch of them in one partition).
    pub fn send_to_partition(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<()> {
        self.send_record(topic, Some(partition), key, payload, &[], None)
    }

    /// [`Publisher::send_to_partition`] with the record's timestamp (ms since the epoch): the
    /// event time windows and stream time go by.
    pub fn send_at(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        payload: &[u8],
        timestamp_ms: i64,
    ) -> Result<()> {
        self.send_record(
            topic,
            Some(partition),
            key,
            payload,
            &[],
            Some(timestamp_ms),
        )
    }

    /// [`Publisher::send`] with Kafka headers (`ks.role`, `ks.action`, … on the model topic).
    pub fn send_with_headers(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<()> {
        self.send_record(topic, None, key, payload, headers, None)
    }

    fn send_record(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(&str, &[u8])],
        timestamp_ms: Option<i64>,
    ) -> Result<()> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(ts) = timestamp_ms {
            record = record.timestamp(ts);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if !headers.is_empty() {
            let mut owned = rdkafka::message::OwnedHeaders::new_with_capacity(headers.len());
            for (key, value) in headers {
                owned = owned.insert(rdkafka::message::Header {
                    key,
                    value: Some(*value),
                });
            }
            record = record.headers(owned);
        }
        // Back-pressure: the producer thread drains the queue as the broker acks.
        ks_kafka::send_with_backoff(
            record,
            |r| self.producer.send(r),
            ks_kafka::pause(Duration::from_millis(5)),
        )
        .map_err(kafka_err(format!("cannot send to {topic}")))?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Waits for every queued message to be acknowledged; an error names how many were lost.
    pub fn flush(&self, timeout: Duration) -> Result<u64> {
        self.producer
            .flush(timeout)
            .map_err(kafka_err("messages still unacknowledged at flush"))?;
        let ctx = self.producer.context();
        let failed = ctx.failed();
        let sent = self.sent.load(Ordering::Relaxed);
        if failed > 0 {
            return Err(Error::Undelivered {
                failed,
                sent,
                first: ctx.first_error(),
            });
        }
        Ok(ctx.acked())
    }
}

/// Fails fast with [`Error::BrokerUnreachable`] when nothing listens at `bootstrap`.
pub fn require_broker(bootstrap: &str, timeout: Duration) -> Result<()> {
    // With a --config file's properties (SASL, …) a plain probe cannot speak to the listener:
    // a real client checks, and names a refused authentication.
    if ks_kafka::config::process_properties().is_some_and(|p| !p.is_empty()) {
        return ks_kafka::check_brokers(
            &ks_kafka::client_config_for(ks_kafka::ClientKind::Admin, bootstrap),
            timeout,
        )
        .map_err(Error::from);
    }
    if ks_broker::is_reachable(bootstrap, timeout) {
        Ok(())
    } else {
        Err(Error::BrokerUnreachable(bootstrap.to_string()))
    }
}

/// Creates each `(topic, partitions)` that does not exist yet; existing topics are left as they are.
pub async fn ensure_topics(bootstrap: &str, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap)
        .create()
        .map_err(kafka_err("cannot create admin client"))?;
    let existing = existing_topics(bootstrap)?;
    let new: Vec<NewTopic> = topics
        .iter()
        .filter(|(t, _)| !existing.contains(*t))
        // -1: the broker's default.replication.factor (3 on a replicated cluster).
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(-1)))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(kafka_err("cannot create topics"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(kafka_err(format!("cannot create topic {topic}"))(
                    KafkaError::AdminOp(code),
                ))
            }
        }
    }
    Ok(())
}

fn existing_topics(bootstrap: &str) -> Result<HashSet<String>> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .create()
        .map_err(kafka_err("cannot create metadata client"))?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(kafka_err("cannot fetch metadata"))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.name().to_string())
        .collect())
}

/// One message as read back from a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub timestamp_ms: Option<i64>,
}

impl ReadMessage {
    fn from_borrowed(m: &BorrowedMessage<'_>) -> ReadMessage {
        ReadMessage {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            timestamp_ms: m.timestamp().to_millis(),
        }
    }
}

/// Reads every partition of `topic` from the beginning, handing each message to `on_message`.
/// With `until_eof` it returns once every partition has reported end-of-partition (librdkafka's
/// EOF event, which fires at the true log end even where the local broker's watermark query is
/// wrong); otherwise it follows the topic until `on_message` returns false or `stop` says so.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    until_eof: bool,
    timeout: Duration,
    mut on_message: impl FnMut(ReadMessage) -> bool,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", "ks-client-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(kafka_err("cannot create consumer"))?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kafka_err(format!("cannot fetch metadata of {topic}")))?;
    let partitions = ks_kafka::partition_ids(&md, topic);
    if partitions.is_empty() {
        return Err(kafka_err(format!("topic {topic} does not exist"))(
            KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition),
        ));
    }
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(kafka_err("cannot assign"))?;
    }
    consumer.assign(&tpl).map_err(kafka_err("cannot assign"))?;
    let mut at_eof: HashSet<i32> = HashSet::new();
    let deadline = Instant::now() + timeout;
    loop {
        if stop() || Instant::now() > deadline {
            return Ok(());
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                at_eof.remove(&m.partition());
                if !on_message(ReadMessage::from_borrowed(&m)) {
                    return Ok(());
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_eof.insert(p);
                if until_eof && at_eof.len() == partitions.len() {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(kafka_err(format!("cannot read {topic}"))(e)),
        }
    }
}
