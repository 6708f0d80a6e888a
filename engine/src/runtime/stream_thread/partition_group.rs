//! Timestamp order across a task's inputs (Kafka Streams' `PartitionGroup` and `RecordQueue`).
//!
//! A task that reads several partitions (the co-partitioned inputs of a join or a merge) gets
//! their records in fetch order: a whole batch of one topic, then one of the other. Processing
//! them so would join a record with the other side's state as of some later time. So such a
//! task buffers its records per partition and always takes the buffered record with the
//! smallest timestamp; while one of its partitions has nothing buffered it waits for it up to
//! `max.task.idle.ms` (from when that partition ran empty) before going on without it. Tasks
//! of one partition process straight from the poll and never come here.
//!
//! A partition with `MAX_BUFFERED` records waiting is paused on the consumer until half of
//! them are processed (Kafka Streams' `buffered.records.per.partition`), so a partition that
//! the task waits for does not make the others buffer without bound.

use crate::record::{Record, RecordMetadata};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Records buffered per partition before it is paused.
pub(super) const MAX_BUFFERED: usize = 1000;

/// A record waiting in its partition's queue, with its extracted timestamp.
pub(super) struct Buffered {
    pub timestamp: i64,
    pub metadata: RecordMetadata,
    pub record: Record,
}

struct Queue {
    topic: String,
    partition: i32,
    records: VecDeque<Buffered>,
    /// When the queue last ran empty (or the group started).
    empty_since: Instant,
    paused: bool,
}

/// The queues of one task's input partitions.
pub(super) struct PartitionGroup {
    queues: Vec<Queue>,
}

/// What `push` asks of the consumer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pressure {
    None,
    /// The partition reached `MAX_BUFFERED`: pause it.
    Pause,
}

impl PartitionGroup {
    pub fn new(partitions: &[(String, i32)], now: Instant) -> PartitionGroup {
        PartitionGroup {
            queues: partitions
                .iter()
                .map(|(topic, partition)| Queue {
                    topic: topic.clone(),
                    partition: *partition,
                    records: VecDeque::new(),
                    empty_since: now,
                    paused: false,
                })
                .collect(),
        }
    }

    /// Buffers `b` in its partition's queue (a partition the task does not read is added).
    pub fn push(&mut self, b: Buffered, now: Instant) -> Pressure {
        let at = self
            .queues
            .iter()
            .position(|q| q.partition == b.metadata.partition && q.topic == b.metadata.topic);
        let at = at.unwrap_or_else(|| {
            self.queues.push(Queue {
                topic: b.metadata.topic.clone(),
                partition: b.metadata.partition,
                records: VecDeque::new(),
                empty_since: now,
                paused: false,
            });
            self.queues.len() - 1
        });
        let q = &mut self.queues[at];
        q.records.push_back(b);
        if q.records.len() >= MAX_BUFFERED && !q.paused {
            q.paused = true;
            return Pressure::Pause;
        }
        Pressure::None
    }

    /// The next record to process: the smallest buffered timestamp (the first queue on a
    /// tie), unless a queue ran empty less than `idle` ago (`None`: never wait).
    pub fn next(&mut self, now: Instant, idle: Option<Duration>) -> Option<Buffered> {
        if let Some(idle) = idle {
            let waiting = self.queues.iter().any(|q| {
                q.records.is_empty() && now.saturating_duration_since(q.empty_since) < idle
            });
            if waiting {
                return None;
            }
        }
        let q = self
            .queues
            .iter_mut()
            .filter(|q| !q.records.is_empty())
            .min_by_key(|q| q.records.front().map_or(i64::MAX, |b| b.timestamp))?;
        let b = q.records.pop_front();
        if q.records.is_empty() {
            q.empty_since = now;
        }
        b
    }

    /// Paused partitions drained to half of `MAX_BUFFERED`: resume them.
    pub fn take_resumable(&mut self) -> Vec<(String, i32)> {
        self.queues
            .iter_mut()
            .filter(|q| q.paused && q.records.len() <= MAX_BUFFERED / 2)
            .map(|q| {
                q.paused = false;
                (q.topic.clone(), q.partition)
            })
            .collect()
    }

    /// Partitions paused for back-pressure.
    #[cfg(test)]
    pub fn paused(&self) -> Vec<(String, i32)> {
        self.queues
            .iter()
            .filter(|q| q.paused)
            .map(|q| (q.topic.clone(), q.partition))
            .collect()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(|q| q.records.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, offset: i64, timestamp: i64) -> Buffered {
        Buffered {
            timestamp,
            metadata: RecordMetadata {
                topic: topic.into(),
                partition: 0,
                offset,
            },
            record: Record {
                key: None,
                value: None,
                timestamp,
                headers: Vec::new(),
            },
        }
    }

    fn parts() -> Vec<(String, i32)> {
        vec![("a".into(), 0), ("b".into(), 0)]
    }

    #[test]
    fn takes_the_smallest_timestamp_across_partitions() {
        let t0 = Instant::now();
        let mut g = PartitionGroup::new(&parts(), t0);
        for (i, ts) in [10, 30, 50].into_iter().enumerate() {
            g.push(rec("a", i as i64, ts), t0);
        }
        for (i, ts) in [20, 40].into_iter().enumerate() {
            g.push(rec("b", i as i64, ts), t0);
        }
        let mut order = Vec::new();
        while let Some(b) = g.next(t0, None) {
            order.push(b.timestamp);
        }
        assert_eq!(order, vec![10, 20, 30, 40, 50]);
        assert!(g.is_empty());
    }

    #[test]
    fn waits_for_an_empty_partition_up_to_the_idle_time() {
        let t0 = Instant::now();
        let idle = Some(Duration::from_millis(100));
        let mut g = PartitionGroup::new(&parts(), t0);
        g.push(rec("a", 0, 10), t0);
        assert!(
            g.next(t0, idle).is_none(),
            "b may still bring an earlier record"
        );
        let later = t0 + Duration::from_millis(100);
        assert_eq!(g.next(later, idle).map(|b| b.timestamp), Some(10));
        // Zero idle time never waits; None never waits either.
        let mut g = PartitionGroup::new(&parts(), t0);
        g.push(rec("a", 0, 10), t0);
        assert!(g.next(t0, Some(Duration::ZERO)).is_some());
    }

    #[test]
    fn a_drained_partition_is_waited_for_again() {
        let t0 = Instant::now();
        let idle = Some(Duration::from_millis(100));
        let mut g = PartitionGroup::new(&parts(), t0);
        let t1 = t0 + Duration::from_millis(200);
        g.push(rec("a", 0, 10), t1);
        g.push(rec("a", 1, 11), t1);
        g.push(rec("b", 0, 12), t1);
        assert_eq!(g.next(t1, idle).map(|b| b.timestamp), Some(10));
        assert_eq!(g.next(t1, idle).map(|b| b.timestamp), Some(11));
        // a ran empty just now: b's record waits for a.
        assert!(g.next(t1, idle).is_none());
    }

    #[test]
    fn a_full_partition_is_paused_until_half_drained() {
        let t0 = Instant::now();
        let mut g = PartitionGroup::new(&parts(), t0);
        let mut pressure = Vec::new();
        for i in 0..MAX_BUFFERED {
            pressure.push(g.push(rec("a", i as i64, i as i64), t0));
        }
        assert_eq!(pressure.last(), Some(&Pressure::Pause));
        assert_eq!(
            pressure.iter().filter(|p| **p == Pressure::Pause).count(),
            1
        );
        assert_eq!(g.paused(), vec![("a".to_string(), 0)]);
        for _ in 0..MAX_BUFFERED / 2 - 1 {
            g.next(t0, None);
        }
        assert!(g.take_resumable().is_empty());
        g.next(t0, None);
        assert_eq!(g.take_resumable(), vec![("a".to_string(), 0)]);
        assert!(g.paused().is_empty());
    }
}
