//! Stream-time punctuation follows record timestamps; wall-clock punctuation follows the
//! (mock) clock. Both run through the test driver.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_engine::dsl::StreamsBuilder;
use ks_engine::stores::{I64Serde, Serde, StoreKind, StoreSpec};
use ks_engine::{
    processor, Error, Processor, ProcessorContext, PunctuationType, Record, Result, Topology,
    TopologyTestDriver,
};
use std::time::Duration;

/// Schedules one punctuation and reports each firing downstream: key = the kind, value = the
/// timestamp it fired with, timestamp = what the context said the time was.
struct Ticker {
    kind: PunctuationType,
    every: Duration,
}

impl Processor for Ticker {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        ctx.schedule(self.every, self.kind)
    }

    fn process(&mut self, _: &mut ProcessorContext<'_>, _: Record) -> Result<()> {
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        kind: PunctuationType,
        ts: i64,
    ) -> Result<()> {
        // Punctuation is not about a record: there must be no source metadata.
        let tag = if ctx.record_metadata().is_none() {
            "no-metadata"
        } else {
            "metadata"
        };
        let key = format!("{kind:?}/{tag}");
        ctx.forward(Record::new(
            Some(key.into_bytes()),
            Some(ts.to_be_bytes().to_vec()),
            ctx.timestamp(),
        ));
        Ok(())
    }
}

fn ticker(kind: PunctuationType, every_ms: u64) -> Result<Topology> {
    let every = Duration::from_millis(every_ms);
    let mut t = Topology::new();
    t.add_source("in", &["in"])?
        .add_processor(
            "ticker",
            processor::supplier(move || Ticker { kind, every }),
            &["in"],
        )?
        .add_sink("out", "ticks", &["ticker"])?;
    Ok(t)
}

fn fired(d: &mut TopologyTestDriver) -> Vec<i64> {
    d.read_all_output("ticks")
        .into_iter()
        .filter_map(|r| r.value.and_then(|v| I64Serde.decode(&v).ok()))
        .collect()
}

#[test]
fn stream_time_punctuation_fires_as_record_timestamps_advance() -> Result<()> {
    let mut d = TopologyTestDriver::new(&ticker(PunctuationType::StreamTime, 10)?, 0)?;
    // The first record sets stream time and fires; then once per 10 ms of stream time.
    for ts in [100, 105, 109, 110, 119, 120] {
        d.pipe_input("in", None, Some(b"x"), ts)?;
    }
    assert_eq!(fired(&mut d), vec![100, 110, 120]);
    Ok(())
}

#[test]
fn stream_time_punctuation_ignores_the_wall_clock() -> Result<()> {
    let mut d = TopologyTestDriver::new(&ticker(PunctuationType::StreamTime, 10)?, 0)?;
    d.advance_wall_clock(Duration::from_secs(3600))?;
    assert!(fired(&mut d).is_empty(), "no record, no stream time");
    d.pipe_input("in", None, Some(b"x"), 5)?;
    d.advance_wall_clock(Duration::from_secs(3600))?;
    assert_eq!(fired(&mut d), vec![5]);
    Ok(())
}

#[test]
fn out_of_order_records_do_not_move_stream_time_back() -> Result<()> {
    let mut d = TopologyTestDriver::new(&ticker(PunctuationType::StreamTime, 10)?, 0)?;
    d.pipe_input("in", None, Some(b"x"), 50)?;
    d.pipe_input("in", None, Some(b"x"), 0)?;
    d.pipe_input("in", None, Some(b"x"), 59)?;
    d.pipe_input("in", None, Some(b"x"), 60)?;
    assert_eq!(fired(&mut d), vec![50, 60]);
    Ok(())
}

#[test]
fn a_jump_in_stream_time_fires_once_not_once_per_missed_interval() -> Result<()> {
    let mut d = TopologyTestDriver::new(&ticker(PunctuationType::StreamTime, 10)?, 0)?;
    d.pipe_input("in", None, Some(b"x"), 0)?;
    d.pipe_input("in", None, Some(b"x"), 1_000)?;
    d.pipe_input("in", None, Some(b"x"), 1_005)?;
    d.pipe_input("in", None, Some(b"x"), 1_010)?;
    assert_eq!(fired(&mut d), vec![0, 1_000, 1_010]);
    Ok(())
}

#[test]
fn wall_clock_punctuation_fires_on_advance_wall_clock_not_on_records() -> Result<()> {
    let mut d = TopologyTestDriver::new(&ticker(PunctuationType::WallClockTime, 1_000)?, 10_000)?;
    for ts in [0, 50_000, 999_999] {
        d.pipe_input("in", None, Some(b"x"), ts)?;
    }
    assert!(
        fired(&mut d).is_empty(),
        "record timestamps do not drive the wall clock"
    );
    d.advance_wall_clock(Duration::from_millis(999))?;
    assert!(fired(&mut d).is_empty());
    d.advance_wall_clock(Duration::from_millis(1))?;
    assert_eq!(fired(&mut d), vec![11_000]);
    d.advance_wall_clock(Duration::from_millis(5_500))?;
    assert_eq!(fired(&mut d), vec![16_500], "missed intervals fire once");
    d.advance_wall_clock(Duration::from_millis(500))?;
    assert_eq!(fired(&mut d), vec![17_000]);
    assert_eq!(d.wall_clock(), 17_000);
    Ok(())
}

#[test]
fn punctuation_runs_without_record_metadata_and_at_stream_time() -> Result<()> {
    let mut d = TopologyTestDriver::new(&ticker(PunctuationType::StreamTime, 10)?, 0)?;
    d.pipe_input("in", None, Some(b"x"), 42)?;
    let out = d.read_output("ticks").unwrap();
    assert_eq!(out.key.as_deref(), Some(&b"StreamTime/no-metadata"[..]));
    assert_eq!(out.timestamp, 42);
    Ok(())
}

#[test]
fn zero_interval_is_rejected_at_init() -> Result<()> {
    let err = TopologyTestDriver::new(&ticker(PunctuationType::WallClockTime, 0)?, 0);
    assert!(matches!(err, Err(Error::InvalidConfig(_))));
    Ok(())
}

/// Counts records per key in a store and emits the totals every wall-clock second, the
/// "buffer then flush" pattern punctuation exists for.
struct PeriodicTotals;

impl Processor for PeriodicTotals {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime)
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let totals = ctx.typed_store("totals", ks_engine::stores::BytesSerde, I64Serde)?;
        let Some(key) = r.key else { return Ok(()) };
        let n = totals.get(&key)?.unwrap_or(0);
        totals.put(&key, &(n + 1))?;
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        _: PunctuationType,
        ts: i64,
    ) -> Result<()> {
        let totals = ctx.store("totals")?;
        for (k, v) in totals.all()? {
            ctx.forward(Record::new(Some(k.clone()), Some(v), ts));
            totals.delete(&k)?;
        }
        Ok(())
    }
}

#[test]
fn wall_clock_punctuation_flushes_a_store_through_dsl_process() -> Result<()> {
    let b = StreamsBuilder::new();
    b.add_state_store(StoreSpec::new("totals", StoreKind::InMemory));
    b.stream::<String, String>("clicks")
        .process::<String, i64>(processor::supplier(|| PeriodicTotals), &["totals"])
        .map_values(|n| format!("{n}"))
        .to("totals-out");
    let mut d = TopologyTestDriver::new(&b.build()?, 0)?;
    for k in ["a", "b", "a"] {
        d.pipe_input("clicks", Some(k.as_bytes()), Some(b"."), 5)?;
    }
    assert!(d.read_output("totals-out").is_none());
    d.advance_wall_clock(Duration::from_secs(1))?;
    let out: Vec<_> = d
        .read_all_output("totals-out")
        .into_iter()
        .map(|r| {
            (
                r.key.unwrap_or_default(),
                r.value.unwrap_or_default(),
                r.timestamp,
            )
        })
        .collect();
    assert_eq!(
        out,
        vec![
            (b"a".to_vec(), b"2".to_vec(), 1_000),
            (b"b".to_vec(), b"1".to_vec(), 1_000)
        ]
    );
    d.advance_wall_clock(Duration::from_secs(1))?;
    assert!(
        d.read_output("totals-out").is_none(),
        "the flush emptied the store"
    );
    Ok(())
}
