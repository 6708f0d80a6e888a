//! The stream thread takes what its consumer has fetched in batches of at most
//! `max.poll.records`, tells each task's processors below the source which of their records
//! come ([`Processor::prepare`]: only that task's partition, in fetch order), then runs every
//! record in order: nothing is lost, repeated or reordered by the batching.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::{KafkaStreams, Processor, ProcessorContext, Record, Topology, Upcoming};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

const RECORDS: usize = 4_000;
const MAX_POLL_RECORDS: usize = 100;

#[derive(Default)]
struct Seen {
    /// Each hint: its (partition, offset)s.
    hints: Vec<Vec<(i32, i64)>>,
    /// Each processed record: partition, offset, and whether the processor's last hint named it.
    processed: Vec<(i32, i64, bool)>,
}

struct Recorder {
    seen: Arc<Mutex<Seen>>,
    hinted: Vec<(i32, i64)>,
}

impl Processor for Recorder {
    fn prepare(
        &mut self,
        _ctx: &mut ProcessorContext<'_>,
        upcoming: &[Upcoming<'_>],
    ) -> ks_engine::Result<()> {
        self.hinted = upcoming
            .iter()
            .map(|u| (u.metadata.partition, u.metadata.offset))
            .collect();
        self.seen.lock().hints.push(self.hinted.clone());
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        let m = ctx.record_metadata().cloned().unwrap();
        let hinted = self.hinted.contains(&(m.partition, m.offset));
        self.seen
            .lock()
            .processed
            .push((m.partition, m.offset, hinted));
        ctx.forward(r);
        Ok(())
    }
}

#[test]
fn poll_batches_are_prepared_per_task_and_run_in_order() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("batch"));
    create_topics(bs, &[(&input, 2), (&output, 2)]);
    // All on the topic before the start: the consumer fetches far ahead of the thread.
    produce(bs, &input, &keyed(RECORDS, 16, 0));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut t = Topology::new();
    let s = seen.clone();
    t.add_source("in", &[&input])
        .unwrap()
        .add_processor(
            "recorder",
            supplier(move || Recorder {
                seen: s.clone(),
                hinted: Vec::new(),
            }),
            &["in"],
        )
        .unwrap()
        .add_sink("out", &output, &["recorder"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path()).with_max_poll_records(MAX_POLL_RECORDS);
    let mut streams = KafkaStreams::new(t, config).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || seen
        .lock()
        .processed
        .len()
        >= RECORDS));
    streams.close().unwrap();

    let seen = seen.lock();
    assert_eq!(seen.processed.len(), RECORDS);
    // Per partition: every offset once, in order.
    let mut total = 0;
    for partition in 0..2 {
        let offsets: Vec<i64> = seen
            .processed
            .iter()
            .filter(|(p, _, _)| *p == partition)
            .map(|(_, o, _)| *o)
            .collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
        total += offsets.len();
    }
    assert_eq!(total, RECORDS);
    // A hint names one task's partition only, in fetch order, at most a batch of records.
    for hint in &seen.hints {
        assert!(
            hint.len() >= 2 && hint.len() <= MAX_POLL_RECORDS,
            "{hint:?}"
        );
        assert!(hint.iter().all(|(p, _)| *p == hint[0].0), "{hint:?}");
        assert!(hint.windows(2).all(|w| w[0].1 + 1 == w[1].1), "{hint:?}");
    }
    // A backlog goes in batches: most records were announced before they arrived.
    let hinted = seen.processed.iter().filter(|(_, _, h)| *h).count();
    assert!(
        hinted * 2 >= RECORDS,
        "{hinted} of {RECORDS} hinted in {} batches",
        seen.hints.len()
    );
    assert_eq!(read_all(bs, &output).len(), RECORDS);
}
