//! [`DeliveryTracker`]: a producer context that accounts for every delivery report.

use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A message the broker did not acknowledge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{topic}[{partition}]: {reason}")]
pub struct DeliveryFailure {
    /// The topic it was sent to.
    pub topic: String,
    /// The partition (-1 when librdkafka had not picked one).
    pub partition: i32,
    /// What librdkafka reported.
    pub reason: String,
}

/// Counts acknowledged and failed deliveries, keeps the highest acknowledged offset per
/// partition (for checkpoints) and the first failure since it was last taken.
///
/// The locks are held only to update a map entry; a panic cannot happen under them, and a
/// poisoned lock is still read (the data is a counter map, always consistent).
#[derive(Default)]
pub struct DeliveryTracker {
    acked: AtomicU64,
    failed: AtomicU64,
    offsets: Mutex<BTreeMap<String, BTreeMap<i32, i64>>>,
    first_error: Mutex<Option<DeliveryFailure>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DeliveryTracker {
    /// Messages acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Messages the broker did not acknowledge since the last [`DeliveryTracker::take_failures`].
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The first unacknowledged message since the last [`DeliveryTracker::take_failures`].
    pub fn first_error(&self) -> Option<DeliveryFailure> {
        lock(&self.first_error).clone()
    }

    /// How many messages failed and the first failure, resetting both.
    pub fn take_failures(&self) -> (u64, Option<DeliveryFailure>) {
        let mut first = lock(&self.first_error);
        (self.failed.swap(0, Ordering::SeqCst), first.take())
    }

    /// The highest acknowledged offset of `topic[partition]`.
    pub fn acked_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.offsets).get(topic)?.get(&partition).copied()
    }

    /// The highest acknowledged offset of every partition written to.
    pub fn acked_offsets(&self) -> BTreeMap<(String, i32), i64> {
        lock(&self.offsets)
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, o)| ((t.clone(), *p), *o)))
            .collect()
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let mut offsets = lock(&self.offsets);
                let partitions = match offsets.get_mut(m.topic()) {
                    Some(p) => p,
                    None => offsets.entry(m.topic().to_string()).or_default(),
                };
                let slot = partitions.entry(m.partition()).or_insert(m.offset());
                *slot = (*slot).max(m.offset());
            }
            Err((e, m)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.first_error).get_or_insert_with(|| DeliveryFailure {
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    reason: e.to_string(),
                });
            }
        }
    }
}
