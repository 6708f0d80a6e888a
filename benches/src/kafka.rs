//! The harness's own Kafka clients: topic creation, the preload producer, the paced producer of
//! the steady-state run, the passthrough copier and the results reader.
//!
//! Every consumer here uses `assign()` (no group rebalance: a first group join costs about half of
//! `session.timeout.ms` on the local broker) and finds a topic's end by librdkafka's partition-EOF
//! event, because the local broker's watermark query reports the last batch's base offset + 1.

use anyhow::{anyhow, bail, Context, Result};
use ks_kafka::DeliveryTracker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use ks_kafka::now_ms;

fn base(brokers: &str) -> ClientConfig {
    ks_kafka::client_config(brokers)
}

/// Creates each `(topic, partitions)` that is missing.
pub fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(ks_client::kafka::ensure_topics(brokers, topics))
        .context("cannot create the benchmark topics")
}

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("cannot fetch metadata of {topic}"))?;
    let parts = ks_kafka::partition_ids(&md, topic);
    if parts.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    Ok(parts)
}

/// A consumer assigned to every partition of `topic` from the beginning, reporting EOF.
fn assigned_consumer(brokers: &str, topic: &str) -> Result<(BaseConsumer, Vec<i32>)> {
    let mut config = base(brokers);
    // Read as the engine's stream consumer reads (bounded prefetch, refills never postponed):
    // with librdkafka's defaults the bare copy stalled a second whenever its queue passed
    // 100 000 messages a partition, and the servers beat the copy of their own input.
    ks_kafka::with_stream_prefetch(&mut config);
    let consumer: BaseConsumer = config
        // A group id is required by librdkafka even with assign(); nothing is ever committed.
        .set("group.id", format!("ks-bench-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // The reader is measuring equipment: a fetch must not sit at the broker for the default
        // 500 ms when a result is already there to be timed.
        .set("fetch.wait.max.ms", "10")
        .create()
        .context("cannot create a consumer")?;
    let parts = partitions_of(&consumer, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("cannot assign partitions")?;
    Ok((consumer, parts))
}

/// A producer that waits for room instead of dropping, and fails loudly on any lost message.
pub struct Sender {
    producer: BaseProducer<DeliveryTracker>,
}

impl Sender {
    /// `linger_ms` trades latency for batching: the preload batches hard, the paced run does not.
    pub fn connect(brokers: &str, linger_ms: u32) -> Result<Sender> {
        let producer = base(brokers)
            .set("linger.ms", linger_ms.to_string())
            .set("message.timeout.ms", "60000")
            .set("queue.buffering.max.messages", "200000")
            .set("compression.type", "none")
            .create_with_context(DeliveryTracker::default())
            .context("cannot create a producer")?;
        Ok(Sender { producer })
    }

    /// Queues one message to `partition` (explicit, so every partition gets the same share).
    pub fn send(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        payload: &[u8],
        timestamp: Option<i64>,
    ) -> Result<()> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        // Back-pressure: serve delivery reports until the broker has acked some.
        ks_kafka::send_with_backoff(
            record,
            |r| self.producer.send(r),
            || {
                self.producer.poll(Duration::from_millis(5));
                true
            },
        )
        .map_err(|e| anyhow!("cannot send to {topic}: {e}"))?;
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Waits for every queued message; an error if any was not delivered.
    pub fn flush(&self) -> Result<()> {
        self.producer
            .flush(Duration::from_secs(120))
            .context("messages still unacknowledged at flush")?;
        let ctx = self.producer.context();
        let failed = ctx.failed();
        if failed > 0 {
            let first = ctx.first_error().map(|f| f.to_string()).unwrap_or_default();
            bail!("{failed} messages were not delivered (first: {first})");
        }
        Ok(())
    }
}

/// Publishes `count` records to `partitions` partitions round-robin, cycling through `payloads`.
pub fn preload(
    brokers: &str,
    topic: &str,
    partitions: i32,
    payloads: &[Vec<u8>],
    count: u64,
) -> Result<()> {
    if payloads.is_empty() || partitions < 1 {
        bail!("nothing to preload");
    }
    let sender = Sender::connect(brokers, 20)?;
    for i in 0..count {
        let payload = &payloads[(i % payloads.len() as u64) as usize];
        sender.send(topic, (i % partitions as u64) as i32, None, payload, None)?;
    }
    sender.flush()
}

/// Copies every record of `from` to the same partition of `to` (key, payload and timestamp as
/// they are) until every partition reports EOF and `expected` records are copied: the cheapest
/// consume-produce loop the broker serves, i.e. its practical limit for a stream processor.
pub fn passthrough(brokers: &str, from: &str, to: &str, expected: u64) -> Result<u64> {
    let (consumer, parts) = assigned_consumer(brokers, from)?;
    // The engine's producer settings (linger 5 ms), so the comparison is about the processing.
    let sender = Sender::connect(brokers, 5)?;
    let mut at_eof: HashSet<i32> = HashSet::new();
    let mut copied = 0u64;
    let deadline = Instant::now() + Duration::from_secs(900);
    while !(copied >= expected && at_eof.len() == parts.len()) {
        if Instant::now() > deadline {
            bail!("passthrough: copied {copied} of {expected} records before the deadline");
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                at_eof.remove(&m.partition());
                sender.send(
                    to,
                    m.partition(),
                    m.key(),
                    m.payload().unwrap_or_default(),
                    m.timestamp().to_millis(),
                )?;
                copied += 1;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_eof.insert(p);
            }
            Some(Err(e)) => bail!("passthrough: cannot read {from}: {e}"),
        }
    }
    sender.flush()?;
    Ok(copied)
}

/// What the results reader saw.
#[derive(Debug, Default, Clone)]
pub struct ReadOutcome {
    pub count: u64,
    /// When the first and the last result arrived here.
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    /// Arrival wall time minus the result's Kafka timestamp (the input's create time, which
    /// the sink carries over), in arrival order.
    pub latencies_ms: Vec<f64>,
    /// Results the server wrote without a model (`"model":null`): these skipped scoring.
    pub unscored: u64,
    /// Arrival of each result, seconds after the reader started, in arrival order: what
    /// [`crate::report::sustained_rate`] measures.
    pub arrivals_s: Vec<f64>,
    /// Results per model name, when the reader was asked to track them
    /// ([`ResultsReader::start_tracking_models`]; the swap mode's proof that swaps took effect).
    pub models: BTreeMap<String, u64>,
}

impl ReadOutcome {
    /// First to last arrival, in seconds.
    pub fn span_s(&self) -> f64 {
        match (self.first, self.last) {
            (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// The sustained rate over the middle of the results (see
    /// [`crate::report::sustained_rate`]).
    pub fn sustained_rate(&self) -> Option<f64> {
        crate::report::sustained_rate(&self.arrivals_s, crate::report::TRIM)
    }
}

/// A thread reading a results topic from the beginning while the system under test writes it.
pub struct ResultsReader {
    pub count: Arc<AtomicU64>,
    /// The origin of [`ReadOutcome::arrivals_s`].
    pub started: Instant,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<ReadOutcome>>,
}

impl ResultsReader {
    /// Starts reading `topic` (which must exist) until `expected` results or [`Self::finish`].
    pub fn start(brokers: &str, topic: &str, expected: u64) -> Result<ResultsReader> {
        Self::spawn(brokers, topic, expected, false)
    }

    /// As [`Self::start`], also counting the results of each model name.
    pub fn start_tracking_models(
        brokers: &str,
        topic: &str,
        expected: u64,
    ) -> Result<ResultsReader> {
        Self::spawn(brokers, topic, expected, true)
    }

    fn spawn(
        brokers: &str,
        topic: &str,
        expected: u64,
        track_models: bool,
    ) -> Result<ResultsReader> {
        let (consumer, _) = assigned_consumer(brokers, topic)?;
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        let started = Instant::now();
        let handle = std::thread::Builder::new()
            .name("results-reader".into())
            .spawn(move || read_results(consumer, expected, &c, &s, started, track_models))?;
        Ok(ResultsReader {
            count,
            started,
            stop,
            handle,
        })
    }

    pub fn done(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops reading (if still running) and returns what was read.
    pub fn finish(self) -> Result<ReadOutcome> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .map_err(|_| anyhow!("the results reader panicked"))?
    }
}

fn read_results(
    consumer: BaseConsumer,
    expected: u64,
    count: &AtomicU64,
    stop: &AtomicBool,
    started: Instant,
    track_models: bool,
) -> Result<ReadOutcome> {
    let capacity = expected.min(10_000_000) as usize;
    let mut out = ReadOutcome {
        latencies_ms: Vec::with_capacity(capacity),
        arrivals_s: Vec::with_capacity(capacity),
        ..ReadOutcome::default()
    };
    while out.count < expected && !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(50)) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Ok(m)) => {
                let arrived = Instant::now();
                let wall = now_ms();
                out.first.get_or_insert(arrived);
                out.last = Some(arrived);
                out.arrivals_s
                    .push(arrived.duration_since(started).as_secs_f64());
                if let Some(ts) = m.timestamp().to_millis() {
                    out.latencies_ms.push((wall - ts) as f64);
                }
                if m.payload().is_some_and(is_unscored) {
                    out.unscored += 1;
                }
                if track_models {
                    if let Some(name) = m.payload().and_then(model_name) {
                        *out.models.entry(name.to_string()).or_default() += 1;
                    }
                }
                out.count += 1;
                count.store(out.count, Ordering::Relaxed);
            }
            Some(Err(e)) => bail!("cannot read results: {e}"),
        }
    }
    Ok(out)
}

/// Whether a `ScoreResult` JSON says no model scored it. A byte search, not a parse: the reader
/// shares two cores with the server and must stay cheap.
pub fn is_unscored(payload: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"model\":null";
    payload.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// The `model` of a `ScoreResult` JSON, by byte search (as [`is_unscored`]); `None` for a
/// result without a model or a payload that is not one.
pub fn model_name(payload: &[u8]) -> Option<&str> {
    const NEEDLE: &[u8] = b"\"model\":\"";
    let at = payload.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let rest = payload.get(at..)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(rest.get(..end)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_found() {
        assert_eq!(
            model_name(br#"{"dataType":"wine","model":"tree-swap2","prediction":5.0}"#),
            Some("tree-swap2")
        );
        assert_eq!(model_name(br#"{"model":null}"#), None);
        assert_eq!(model_name(br#"{"model":"unterminated"#), None);
        assert_eq!(model_name(b""), None);
    }

    #[test]
    fn unscored_results_are_recognised() {
        assert!(is_unscored(
            br#"{"dataType":"wine","model":null,"prediction":null,"error":"no model"}"#
        ));
        assert!(!is_unscored(
            br#"{"dataType":"wine","model":"tree","prediction":5.0}"#
        ));
        assert!(!is_unscored(b""));
    }

    #[test]
    fn span_needs_two_arrivals() {
        let mut o = ReadOutcome::default();
        assert_eq!(o.span_s(), 0.0);
        let t = Instant::now();
        o.first = Some(t);
        o.last = Some(t + Duration::from_millis(1500));
        assert!((o.span_s() - 1.5).abs() < 1e-9);
    }
}
