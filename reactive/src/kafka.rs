//! The Kafka ends of the pipeline.
//!
//! - [`read_data`]: the data topic, consumed with a group, into a bounded channel: when the
//!   channel is full the reader waits, stops polling, and librdkafka's own prefetch queue is
//!   capped small (see [`data_consumer`]), so a backlog stays in the broker, not in memory.
//! - [`read_models`]: the model topic into a bounded channel; each model is acknowledged by the
//!   stage or actor that took it before its offset is stored; it tells [`read_data`] when the
//!   topic has been read to its end, and no data is read before that.
//! - [`run_sink`]: writes outputs in the order their records were read, pipelined (up to
//!   [`MAX_IN_FLIGHT`] awaiting delivery while the next are sent), and stores a record's offset
//!   only once its output is delivered, in read order (the newest per partition, every 256
//!   deliveries or when nothing more is in flight). Auto-commit
//!   (`enable.auto.offset.store=false`) commits stored offsets only, so a crash re-reads every
//!   record whose result was not written: at-least-once.

use crate::model::{self, Built, Origin};
use crate::scoring::{Output, Sink};
use crate::{Error, Result};
use ks_serving::Topics;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Outputs awaiting delivery at once. A delivery takes the producer's linger (5 ms) plus a
/// broker round trip, so by Little's law N in flight allow about N / 10 ms records/s: 256 held
/// as-server at ~22 000 records/s with a core mostly idle (benches/README.md). 8 192 is more
/// than one core can score and still bounds memory (a few MB of results in flight).
pub const MAX_IN_FLIGHT: usize = 8192;

/// One data record as read.
pub struct DataIn {
    /// The record's value (`None`: a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Where it was read.
    pub origin: Origin,
    /// The record's key, which its result keeps (as ks-server's results do).
    pub key: Option<Vec<u8>>,
}

/// A built model and the sender to acknowledge it with once it is taken (and, in actor mode,
/// persisted).
pub struct ModelIn {
    /// The built model.
    pub built: Built,
    /// Sent once the model is taken (and persisted).
    pub ack: oneshot::Sender<()>,
}

fn base(brokers: &str, kind: ks_kafka::ClientKind) -> ClientConfig {
    ks_kafka::client_config_for(kind, brokers)
}

/// The data consumer: group `group`, offsets stored by the sink and auto-committed.
pub fn data_consumer(
    brokers: &str,
    group: &str,
    session_timeout: Duration,
    commit_interval: Duration,
) -> Result<StreamConsumer> {
    let mut c = base(brokers, ks_kafka::ClientKind::Consumer);
    // A backlog stays in the broker (a few MiB prefetched), and refills are not postponed.
    ks_kafka::with_stream_prefetch(&mut c)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.commit.interval.ms",
            commit_interval.as_millis().to_string(),
        )
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            session_timeout.as_millis().to_string(),
        )
        .create()
        .map_err(Error::kafka("cannot create the data consumer"))
}

/// The model consumer. `group`: `Some` subscribes with that group (actor mode: committed
/// offsets, old models are not replayed — actors restore from their files); `None` assigns
/// every partition from the beginning (stage mode: a restart gets its models back).
pub async fn model_consumer(
    brokers: &str,
    topic: &str,
    group: Option<&str>,
    session_timeout: Duration,
    commit_interval: Duration,
) -> Result<StreamConsumer> {
    let mut c = base(brokers, ks_kafka::ClientKind::Consumer);
    c.set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            session_timeout.as_millis().to_string(),
        )
        // The end of the model topic is where data may start: see `read_models`. (An EOF
        // event, never a watermark: the local broker's watermarks under-report.)
        .set("enable.partition.eof", "true");
    match group {
        Some(g) => c
            .set("group.id", g)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                commit_interval.as_millis().to_string(),
            ),
        // librdkafka wants a group id even for a plain assignment; nothing is committed.
        None => c
            .set("group.id", "as-server-models-unused")
            .set("enable.auto.commit", "false"),
    };
    let consumer: StreamConsumer = c
        .create()
        .map_err(Error::kafka("cannot create the model consumer"))?;
    match group {
        Some(_) => consumer
            .subscribe(&[topic])
            .map_err(Error::kafka(format!("cannot subscribe to {topic}")))?,
        None => {
            let partitions = partitions_of(&consumer, topic).await?;
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .map_err(Error::kafka("cannot assign"))?;
            }
            consumer
                .assign(&tpl)
                .map_err(Error::kafka(format!("cannot assign {topic}")))?;
        }
    }
    Ok(consumer)
}

/// The partitions of `topic`, waiting (up to 30 s) for it to exist.
async fn partitions_of(consumer: &StreamConsumer, topic: &str) -> Result<Vec<i32>> {
    let mut last = None;
    for _ in 0..60 {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => {
                let ps = ks_kafka::partition_ids(&md, topic);
                if !ps.is_empty() {
                    return Ok(ps);
                }
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(Error::kafka(format!("topic {topic} has no partitions"))(
        last.unwrap_or(rdkafka::error::KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        )),
    ))
}

/// The producer of results and errors.
pub fn producer(brokers: &str) -> Result<FutureProducer> {
    base(brokers, ks_kafka::ClientKind::Producer)
        .set("linger.ms", "5")
        // Room for every output in flight, bounded as the engine's producer is.
        .set("queue.buffering.max.messages", "20000")
        .set("queue.buffering.max.kbytes", "4096")
        .create()
        .map_err(Error::kafka("cannot create the producer"))
}

/// Where a consumed message came from.
fn origin_of(m: &impl Message) -> Origin {
    Origin::new(m.topic(), m.partition(), m.offset())
}

/// Reads the data topic into `tx` until shutdown or until `tx`'s receiver is gone. Nothing is
/// read before `models_caught_up` turns true: the model topic has been read to its end, as
/// ks-server's global store is bootstrapped before its stream threads start, so a model
/// published before the data scores all of it.
pub async fn read_data(
    consumer: Arc<StreamConsumer>,
    tx: mpsc::Sender<DataIn>,
    mut models_caught_up: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let since = std::time::Instant::now();
    while !*models_caught_up.borrow_and_update() {
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            changed = models_caught_up.changed() => if changed.is_err() {
                return Err(Error::Stopped(
                    "the model reader stopped before the model topic's end".into(),
                ));
            },
            _ = tokio::time::sleep(Duration::from_secs(10)) => log::warn!(
                "data waits for the model topic's end ({} s so far)",
                since.elapsed().as_secs()
            ),
        }
    }
    loop {
        let msg = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            m = consumer.recv() => m,
        };
        let item = match msg {
            Ok(m) => DataIn {
                payload: m.payload().map(<[u8]>::to_vec),
                origin: origin_of(&m),
                key: m.key().map(<[u8]>::to_vec),
            },
            Err(e) => {
                log::warn!("data consumer: {e}");
                continue;
            }
        };
        // Waiting here is the back pressure: a full pipeline stops the polling.
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            sent = tx.send(item) => if sent.is_err() { return Ok(()) },
        }
    }
}

/// Which partitions of the model topic have been read to their end since the reader started:
/// caught up once every one of the topic's `partitions` has reported EOF (each model before
/// the EOF is taken before the reader reads on, so by then they are all in place).
#[derive(Debug)]
pub struct CatchUp {
    partitions: usize,
    at_end: std::collections::BTreeSet<i32>,
}

impl CatchUp {
    /// Nothing read yet of a topic with `partitions` partitions.
    pub fn new(partitions: usize) -> CatchUp {
        CatchUp {
            partitions,
            at_end: Default::default(),
        }
    }

    /// Partition `p` reported its end; true once every partition has.
    pub fn end_of(&mut self, p: i32) -> bool {
        self.at_end.insert(p);
        self.caught_up()
    }

    /// Whether every partition has reported its end.
    pub fn caught_up(&self) -> bool {
        self.at_end.len() >= self.partitions
    }
}

/// Reads the model topic: decodes and builds each model off the async workers, hands it on,
/// waits for its acknowledgement, then (with a group) stores its offset. Bad model messages go
/// to the errors topic. `caught_up` turns true once every partition of `topic` has been read to
/// its end (see [`read_data`]).
#[allow(clippy::too_many_arguments)]
pub async fn read_models(
    consumer: Arc<StreamConsumer>,
    topic: String,
    grouped: bool,
    tx: mpsc::Sender<ModelIn>,
    producer: FutureProducer,
    errors_topic: String,
    caught_up: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
    activity: Arc<Activity>,
) -> Result<()> {
    let mut progress = CatchUp::new(partitions_of(&consumer, &topic).await?.len());
    loop {
        let msg = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            m = consumer.recv() => m,
        };
        let (payload, origin) = match msg {
            Ok(m) => (m.payload().map(<[u8]>::to_vec), origin_of(&m)),
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                if !*caught_up.borrow() && progress.end_of(p) {
                    log::info!("model topic {topic} read to its end");
                    caught_up.send_replace(true);
                }
                continue;
            }
            Err(e) => {
                log::warn!("model consumer: {e}");
                continue;
            }
        };
        let Some(payload) = payload else {
            continue; // a tombstone: nothing to build
        };
        let o = origin.clone();
        let built = tokio::task::spawn_blocking(move || model::decode_and_build(&payload, &o))
            .await
            .map_err(|e| Error::Stopped(format!("model builder: {e}")))?;
        match built {
            Ok(built) => {
                log::info!(
                    "model {} for {} ({}) built",
                    built.update.meta.name,
                    built.update.meta.data_type,
                    built.update.meta.version
                );
                let (ack, acked) = oneshot::channel();
                if tx.send(ModelIn { built, ack }).await.is_err() {
                    return Ok(());
                }
                if acked.await.is_err() {
                    // Not taken (shutting down): the offset stays, the model comes again.
                    return Ok(());
                }
            }
            Err(report) => {
                log::warn!(
                    "model message {}:{} rejected: {}",
                    origin.partition,
                    origin.offset,
                    report.reason
                );
                let out = Output::error(report);
                activity.count(&out);
                let delivery = send(&producer, &errors_topic, &out).await?;
                wait_delivery(delivery, &errors_topic).await?;
            }
        }
        if grouped {
            if let Err(e) = consumer.store_offset(&origin.topic, origin.partition, origin.offset) {
                log::warn!(
                    "cannot store model offset {}:{}: {e}",
                    origin.partition,
                    origin.offset
                );
            }
        }
    }
}

/// The partition count of `topic` (`None`, with a warning, when the broker cannot tell: the
/// producer's partitioner then places the results).
async fn partition_count(producer: &FutureProducer, topic: &str) -> Option<i32> {
    let client = producer.clone();
    let name = topic.to_string();
    let counted = tokio::task::spawn_blocking(move || {
        client
            .client()
            .fetch_metadata(Some(&name), Duration::from_secs(10))
            .map(|md| ks_kafka::partition_ids(&md, &name).len())
    })
    .await;
    let why = match counted {
        Ok(Ok(n)) if n > 0 => return i32::try_from(n).ok(),
        Ok(Ok(_)) => format!("{topic} has no partitions yet"),
        Ok(Err(e)) => format!("cannot read {topic}'s partitions ({e})"),
        Err(e) => format!("cannot read {topic}'s partitions ({e})"),
    };
    log::warn!("{why}: results are placed by the partitioner");
    None
}

/// Enqueues `out` with the producer, waiting while its queue is full.
async fn send(producer: &FutureProducer, topic: &str, out: &Output) -> Result<DeliveryFuture> {
    send_to(producer, topic, None, out).await
}

/// [`send`] to `partition` (`None`: the partitioner's choice).
async fn send_to(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    out: &Output,
) -> Result<DeliveryFuture> {
    let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(&out.payload);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    if let Some(k) = &out.key {
        record = record.key(k);
    }
    ks_kafka::send_with_backoff_async(
        record,
        |r| producer.send_result(r),
        Duration::from_millis(5),
    )
    .await
    .map_err(|e| Error::Delivery {
        topic: topic.to_string(),
        reason: e.to_string(),
    })
}

async fn wait_delivery(f: DeliveryFuture, topic: &str) -> Result<()> {
    delivery_result(f.await, topic)
}

/// A delivery's outcome as a result.
fn delivery_result(
    delivered: <DeliveryFuture as std::future::Future>::Output,
    topic: &str,
) -> Result<()> {
    match delivered {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(Error::Delivery {
            topic: topic.to_string(),
            reason: e.to_string(),
        }),
        Err(_) => Err(Error::Delivery {
            topic: topic.to_string(),
            reason: "the producer dropped the message".into(),
        }),
    }
}

/// What the pipeline did, for the dashboard: data records answered, errors and the latest
/// reasons.
#[derive(Debug, Default)]
pub struct Activity {
    /// Data records answered (a result or an error).
    pub records: AtomicU64,
    /// Bad records and rejected models.
    pub errors: AtomicU64,
    /// The latest errors.
    pub recent: ks_serving::dashboard::RecentErrors,
}

impl Activity {
    fn count(&self, out: &Output) {
        if out.sink == Sink::Errors {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if let Some(reason) = &out.reason {
                self.recent.push(reason);
            }
        }
    }
}

/// Writes outputs in read order and stores each record's offset once its output is delivered.
/// `rx` carries one receiver per record in the order the records were read, so a record scored
/// late by one actor holds back the offsets after it: no offset is ever stored past a record
/// whose result is not written. Pipelined: up to [`MAX_IN_FLIGHT`] outputs await delivery while
/// the next are sent, and each delivery is taken as it completes (oldest first, so offsets are
/// stored in read order, hence in order per partition). Returns when `rx` closes and everything
/// in flight is written.
pub async fn run_sink(
    mut rx: mpsc::Receiver<oneshot::Receiver<Output>>,
    producer: FutureProducer,
    consumer: Arc<StreamConsumer>,
    topics: Topics,
    activity: Arc<Activity>,
) -> Result<()> {
    // Results go to their input's partition (modulo the results topic's count), as ks-server's
    // do: per-partition order is kept end to end and results spread as the input does.
    let result_partitions = partition_count(&producer, &topics.results).await;
    let mut in_flight: VecDeque<(DeliveryFuture, &str, Origin)> = VecDeque::new();
    let mut delivered_to = DeliveredOffsets::default();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            // The oldest delivery first: it frees room and its offset may be stored.
            delivered = async {
                match in_flight.front_mut() {
                    Some((f, _, _)) => f.await,
                    None => std::future::pending().await,
                }
            }, if !in_flight.is_empty() => {
                if let Some((_, topic, origin)) = in_flight.pop_front() {
                    delivery_result(delivered, topic)?;
                    delivered_to.note(origin);
                    if in_flight.is_empty() || delivered_to.noted >= STORE_EVERY {
                        delivered_to.store(&consumer);
                    }
                }
            }
            next = rx.recv(), if open && in_flight.len() < MAX_IN_FLIGHT => {
                let Some(pending) = next else {
                    open = false;
                    continue;
                };
                let Ok(out) = pending.await else {
                    // The scorer went away (shutdown): stop storing offsets from here on so
                    // this record is read again; what is in flight is still written.
                    open = false;
                    continue;
                };
                activity.records.fetch_add(1, Ordering::Relaxed);
                activity.count(&out);
                let (topic, partition) = match out.sink {
                    Sink::Results => (
                        topics.results.as_str(),
                        result_partitions.map(|n| out.origin.partition.rem_euclid(n)),
                    ),
                    Sink::Errors => (topics.errors.as_str(), None),
                };
                let delivery = send_to(&producer, topic, partition, &out).await?;
                in_flight.push_back((delivery, topic, out.origin));
            }
        }
    }
    delivered_to.store(&consumer);
    Ok(())
}

/// Deliveries noted between offset stores, at most: storing an offset costs librdkafka a
/// partition list and a lock, as much as a tenth of a record's work when done for each one.
/// A crash re-reads at most this many delivered records more (at-least-once either way).
const STORE_EVERY: usize = 256;

/// The newest delivered record of each partition since the offsets were last stored: stored
/// together when the sink has nothing more in flight or every [`STORE_EVERY`] deliveries.
#[derive(Default)]
struct DeliveredOffsets {
    newest: Vec<Origin>,
    noted: usize,
}

impl DeliveredOffsets {
    /// Deliveries come oldest first (read order), so a later one of a partition is newer.
    fn note(&mut self, origin: Origin) {
        self.noted += 1;
        match self
            .newest
            .iter_mut()
            .find(|o| o.partition == origin.partition && o.topic == origin.topic)
        {
            Some(o) => o.offset = origin.offset,
            None => self.newest.push(origin),
        }
    }

    fn store(&mut self, consumer: &StreamConsumer) {
        for origin in self.newest.drain(..) {
            // librdkafka commits stored offset + 1, the next record to read.
            if let Err(e) = consumer.store_offset(&origin.topic, origin.partition, origin.offset) {
                // After a rebalance took the partition away: its new owner reads the record
                // again.
                log::debug!(
                    "cannot store offset {}:{}: {e}",
                    origin.partition,
                    origin.offset
                );
            }
        }
        self.noted = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_delivery_of_each_partition_is_kept_for_the_next_store() {
        let origin = |topic: &str, partition, offset| Origin {
            topic: topic.into(),
            partition,
            offset,
        };
        let mut d = DeliveredOffsets::default();
        for (t, p, o) in [
            ("a", 0, 5),
            ("a", 1, 7),
            ("a", 0, 6),
            ("b", 0, 1),
            ("a", 1, 9),
        ] {
            d.note(origin(t, p, o));
        }
        assert_eq!(d.noted, 5);
        let newest: Vec<(&str, i32, i64)> = d
            .newest
            .iter()
            .map(|o| (o.topic.as_str(), o.partition, o.offset))
            .collect();
        assert_eq!(newest, vec![("a", 0, 6), ("a", 1, 9), ("b", 0, 1)]);
    }

    #[test]
    fn caught_up_once_every_partition_reported_its_end() {
        let mut c = CatchUp::new(3);
        assert!(!c.caught_up());
        assert!(!c.end_of(0));
        assert!(!c.end_of(0), "the same partition twice is still one");
        assert!(!c.end_of(2));
        assert!(c.end_of(1));
        assert!(c.caught_up());
        // An empty topic list (no partitions) is at its end at once.
        assert!(CatchUp::new(0).caught_up());
    }
}
