//! At-least-once: output forwarded by a wall-clock punctuation and by `close()` after the last
//! record-driven commit is flushed and committed at a clean shutdown — every emitted record is on
//! the topic (the producer is flushed, not dropped with queued messages).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::{KafkaStreams, Processor, ProcessorContext, PunctuationType, Record, Topology};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Emits a record per punctuation (every 20 ms) and a burst at close, counting what it emits.
const CLOSE_BURST: usize = 2_000;

struct Ticker {
    emitted: Arc<AtomicU64>,
}

impl Ticker {
    fn emit(&self, ctx: &mut ProcessorContext<'_>, what: &str) {
        let n = self.emitted.fetch_add(1, Ordering::SeqCst);
        ctx.forward(Record {
            key: Some(format!("{what}-{n}").into_bytes()),
            value: Some(vec![0u8; 512]),
            timestamp: 0,
            headers: Vec::new(),
        });
    }
}

impl Processor for Ticker {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> ks_engine::Result<()> {
        ctx.schedule(Duration::from_millis(20), PunctuationType::WallClockTime)
    }

    fn process(&mut self, _ctx: &mut ProcessorContext<'_>, _r: Record) -> ks_engine::Result<()> {
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        _kind: PunctuationType,
        _ts: i64,
    ) -> ks_engine::Result<()> {
        self.emit(ctx, "tick");
        Ok(())
    }

    fn close(&mut self, ctx: &mut ProcessorContext<'_>) -> ks_engine::Result<()> {
        for _ in 0..CLOSE_BURST {
            self.emit(ctx, "close");
        }
        Ok(())
    }
}

#[test]
fn punctuation_and_close_output_reach_the_topic() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("tick"));
    create_topics(bs, &[(&input, 1), (&output, 1)]);
    let emitted = Arc::new(AtomicU64::new(0));
    let mut t = Topology::new();
    let e = emitted.clone();
    t.add_source("in", &[&input])
        .unwrap()
        .add_processor(
            "ticker",
            supplier(move || Ticker { emitted: e.clone() }),
            &["in"],
        )
        .unwrap()
        .add_sink("out", &output, &["ticker"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No record ever arrives, so no commit is record-driven; and the producer holds what it is
    // given for 20 s unless flushed, so only a flush before the end gets it to the broker.
    let config = test_config(&app, bs, dir.path())
        .with_commit_interval(Duration::from_secs(600))
        .with_property("linger.ms", "20000");
    let mut streams = KafkaStreams::new(t, config).unwrap();
    streams.start().unwrap();
    assert!(streams.wait_for_assignment(Duration::from_secs(60), |a| !a.is_empty()));
    assert!(wait_until(Duration::from_secs(30), || emitted
        .load(Ordering::SeqCst)
        >= 20));
    streams.close().unwrap();
    let emitted = emitted.load(Ordering::SeqCst) as usize;
    assert!(emitted >= CLOSE_BURST + 20);
    assert_eq!(read_all(bs, &output).len(), emitted);
}
