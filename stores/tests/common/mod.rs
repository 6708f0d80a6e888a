//! Helpers shared by the behaviour tests: a local broker, compacted changelog topics, raw
//! changelog producers, and a task context in a temporary state dir.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use ks_stores::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

pub const APP: &str = "storetest";

/// A unique store name per call, so tests never share a changelog topic.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future on this thread: rdkafka's admin and future producer complete on their own
/// threads, so no runtime is needed.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Creates a compacted topic (cleanup.policy=compact), like a changelog.
pub fn create_changelog(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = block_on(admin.create_topics([&new], &opts)).expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Produces records straight to a changelog partition, batched (linger) like a real producer,
/// and returns the offset of each.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[(Vec<u8>, Option<Vec<u8>>)],
) -> Vec<i64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "1000")
        .create()
        .expect("producer");
    let futures: Vec<_> = records
        .iter()
        .map(|(k, v)| {
            let mut r = FutureRecord::<[u8], [u8]>::to(topic)
                .partition(partition)
                .key(k);
            if let Some(v) = v {
                r = r.payload(v);
            }
            producer.send_result(r).expect("enqueue")
        })
        .collect();
    producer.flush(Duration::from_secs(30)).expect("flush");
    futures
        .into_iter()
        .map(|f| block_on(f).expect("delivery").expect("acked").offset)
        .collect()
}

pub fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

pub fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-{round}").into_bytes()
}

pub fn ctx(state_dir: &std::path::Path, partition: i32) -> StoreContext {
    StoreContext::new(state_dir, APP, format!("0_{partition}"), partition)
}

pub const KINDS: [StoreKind; 3] = [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File];
pub const PERSISTENT: [StoreKind; 2] = [StoreKind::RocksDb, StoreKind::File];
