//! The processing handler sees only data errors: a store that fails under log-and-continue
//! fails the task instead of being skipped; an error raised by a punctuator goes through the
//! processing handler; output the producer refuses goes to the production handler (continue:
//! dropped and counted; fail, the default: the task fails).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{
    ChangelogRecord, KeyValueStore, LocalState, ReadOnlyKeyValueStore, StateStore, StoreContext,
    StoreFactory, StoreSpec, Visitor,
};
use ks_engine::{
    Error, ErrorHandling, KafkaStreams, Processor, ProcessorContext, ProductionErrorHandling,
    PunctuationType, Record, StreamsState, Topology,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A store whose disk is always full.
struct FullDisk;

impl StateStore for FullDisk {
    fn name(&self) -> &str {
        "full"
    }
    fn persistent(&self) -> bool {
        true
    }
    fn flush(&self) -> ks_engine::stores::Result<()> {
        Ok(())
    }
    fn close(&self) -> ks_engine::stores::Result<()> {
        Ok(())
    }
    fn restore_batch(&self, _: &[ChangelogRecord]) -> ks_engine::stores::Result<()> {
        Ok(())
    }
}

impl ReadOnlyKeyValueStore for FullDisk {
    fn get(&self, _: &[u8]) -> ks_engine::stores::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn scan(
        &self,
        _: Option<&[u8]>,
        _: Option<&[u8]>,
        _: Visitor<'_>,
    ) -> ks_engine::stores::Result<()> {
        Ok(())
    }
    fn approximate_num_entries(&self) -> ks_engine::stores::Result<u64> {
        Ok(0)
    }
}

impl KeyValueStore for FullDisk {
    fn put(&self, _: &[u8], _: &[u8]) -> ks_engine::stores::Result<()> {
        Err(ks_engine::stores::Error::Io {
            path: "/full".into(),
            source: std::io::Error::other("no space left on device"),
        })
    }
    fn put_if_absent(&self, k: &[u8], v: &[u8]) -> ks_engine::stores::Result<Option<Vec<u8>>> {
        self.put(k, v).map(|()| None)
    }
    fn delete(&self, _: &[u8]) -> ks_engine::stores::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

struct FullDiskFactory;

impl StoreFactory for FullDiskFactory {
    fn open(
        &self,
        _: &str,
        _: &StoreContext,
    ) -> ks_engine::stores::Result<(Arc<dyn KeyValueStore>, LocalState)> {
        Ok((Arc::new(FullDisk), LocalState::Fresh))
    }
    fn wipe(&self, _: &str, _: &StoreContext) -> ks_engine::stores::Result<()> {
        Ok(())
    }
}

/// Writes each record to its store, or (with `big`) forwards a 2 MB value; its punctuator
/// fails with a data error every time.
struct Writer {
    big: bool,
}

impl Processor for Writer {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> ks_engine::Result<()> {
        ctx.schedule(Duration::from_millis(20), PunctuationType::WallClockTime)
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        if self.big {
            let value = if r.value.as_deref() == Some(b"big") {
                vec![7u8; 2 << 20]
            } else {
                b"small".to_vec()
            };
            ctx.forward(r.with_value(Some(value)));
            return Ok(());
        }
        ctx.store("s")?.put(b"k", b"v")?;
        Ok(())
    }
    fn punctuate(
        &mut self,
        _: &mut ProcessorContext<'_>,
        _: PunctuationType,
        _: i64,
    ) -> ks_engine::Result<()> {
        Err(Error::processing(
            "writer",
            "the punctuator rejects its input",
        ))
    }
}

fn run(
    store: Option<StoreSpec>,
    big: bool,
    handling: ErrorHandling,
    production: ProductionErrorHandling,
    records: &[(String, String)],
) -> (KafkaStreams, ks_broker::Broker, String) {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers().to_string();
    let (input, output, app) = (unique("in"), unique("out"), unique("handlers"));
    create_topics(&bs, &[(&input, 1), (&output, 1)]);
    produce(&bs, &input, records);
    let mut t = Topology::new();
    t.add_source("in", &[&input])
        .unwrap()
        .add_processor("w", supplier(move || Writer { big }), &["in"])
        .unwrap()
        .add_sink("out", &output, &["w"])
        .unwrap();
    if let Some(spec) = store {
        t.add_state_store(spec, &["w"]).unwrap();
    }
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let config = test_config(&app, &bs, dir.path())
        .with_error_handling(handling)
        .with_production_error_handling(production);
    let mut streams = KafkaStreams::new(t, config).unwrap();
    streams.start().unwrap();
    (streams, broker, output)
}

#[test]
fn a_failing_store_fails_the_task_even_under_log_and_continue() {
    let spec = StoreSpec::custom("s", Arc::new(FullDiskFactory)).with_logging(false);
    let (streams, _broker, _) = run(
        Some(spec),
        false,
        ErrorHandling::LogAndContinue,
        ProductionErrorHandling::Fail,
        &keyed(5, 1, 0),
    );
    assert!(
        wait_until(Duration::from_secs(60), || matches!(
            streams.state(),
            StreamsState::Error(ref e) if e.contains("no space left")
        )),
        "{:?}",
        streams.state()
    );
    assert_eq!(streams.metrics().processed.load(Ordering::Relaxed), 0);
}

#[test]
fn punctuation_errors_go_through_the_processing_handler() {
    let (mut streams, _broker, _) = run(
        None,
        true,
        ErrorHandling::LogAndContinue,
        ProductionErrorHandling::Fail,
        &keyed(5, 1, 0),
    );
    assert!(wait_until(Duration::from_secs(60), || streams
        .metrics()
        .errors
        .load(Ordering::Relaxed)
        > 5));
    assert_eq!(streams.state(), StreamsState::Running);
    streams.close().unwrap();

    let (streams, _broker, _) = run(
        None,
        true,
        ErrorHandling::LogAndFail,
        ProductionErrorHandling::Fail,
        &keyed(5, 1, 0),
    );
    assert!(wait_until(Duration::from_secs(60), || matches!(
        streams.state(),
        StreamsState::Error(ref e) if e.contains("punctuator")
    )));
}

#[test]
fn refused_output_goes_to_the_production_handler() {
    let records = vec![
        ("k".to_string(), "small".to_string()),
        ("k".to_string(), "big".to_string()),
        ("k".to_string(), "small".to_string()),
    ];
    let (mut streams, broker, output) = run(
        None,
        true,
        ErrorHandling::LogAndContinue,
        ProductionErrorHandling::Continue,
        &records,
    );
    assert!(wait_until(Duration::from_secs(60), || streams
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        == 3));
    streams.close().unwrap();
    assert_eq!(streams.metrics().dropped_records.load(Ordering::Relaxed), 1);
    assert_eq!(read_all(broker.bootstrap_servers(), &output).len(), 2);

    let (streams, _broker, _) = run(
        None,
        true,
        ErrorHandling::LogAndContinue,
        ProductionErrorHandling::Fail,
        &records,
    );
    assert!(wait_until(Duration::from_secs(60), || matches!(
        streams.state(),
        StreamsState::Error(_)
    )));
}
