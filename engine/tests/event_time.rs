//! Event time: a pluggable timestamp extractor (per source or the configured default) sets
//! each record's time; a record whose extracted time is invalid goes to the error handler; a
//! task reading co-partitioned inputs takes their records in timestamp order, not fetch order
//! (waiting up to `max.task.idle.ms` for an empty input); and stream time survives a restart,
//! committed with the input offsets.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::timestamp::TimestampExtractor;
use ks_engine::{
    Error, ErrorHandling, KafkaStreams, Processor, ProcessorContext, Record, RecordMetadata,
    Topology, TopologyTestDriver,
};
use std::time::Duration;

/// Event time from the value, `t=<ms>`.
struct TimeInValue;

impl TimestampExtractor for TimeInValue {
    fn extract(&self, md: &RecordMetadata, r: &Record, _: i64) -> ks_engine::Result<i64> {
        let v = r.value.as_deref().unwrap_or_default();
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.strip_prefix("t="))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::processing(md.topic.clone(), "no t=<ms> in the value"))
    }
}

/// Forwards `<topic> <timestamp> <stream time>` for every record.
struct Describe;

impl Processor for Describe {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        let text = format!(
            "{} {} {}",
            ctx.topic().unwrap_or("?"),
            ctx.timestamp(),
            ctx.stream_time()
        );
        ctx.forward(r.with_value(Some(text.into_bytes())));
        Ok(())
    }
}

/// `sources` (each reading its own topic) → Describe → `out`.
fn describe_topology(sources: &[&str], out: &str, extract_at_source: bool) -> Topology {
    let mut t = Topology::new();
    for s in sources {
        t.add_source(&format!("src-{s}"), &[s]).unwrap();
        if extract_at_source {
            t.set_timestamp_extractor(&format!("src-{s}"), TimeInValue)
                .unwrap();
        }
    }
    let parents: Vec<String> = sources.iter().map(|s| format!("src-{s}")).collect();
    let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
    t.add_processor("describe", supplier(|| Describe), &parents)
        .unwrap()
        .add_sink("out", out, &["describe"])
        .unwrap();
    t
}

/// (topic, timestamp, stream time) of each output value, in order.
fn described(values: impl Iterator<Item = Option<String>>) -> Vec<(String, i64, i64)> {
    values
        .map(|v| {
            let v = v.unwrap();
            let mut parts = v.split(' ');
            let topic = parts.next().unwrap().to_string();
            let ts = parts.next().unwrap().parse().unwrap();
            let st = parts.next().unwrap().parse().unwrap();
            (topic, ts, st)
        })
        .collect()
}

#[test]
fn a_source_extractor_sets_event_time_and_stream_time() {
    let t = describe_topology(&["in"], "out", true);
    let mut d = TopologyTestDriver::new(&t, 0).unwrap();
    d.pipe_input("in", None, Some(b"t=500"), 1).unwrap();
    d.pipe_input("in", None, Some(b"t=300"), 2).unwrap();
    let out = d.read_all_output("out");
    // The record's own timestamps (1, 2) are replaced by the extracted ones; stream time
    // never goes back.
    assert_eq!(
        out.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
        vec![500, 300]
    );
    assert_eq!(
        described(
            out.iter()
                .map(|r| Some(String::from_utf8(r.value.clone().unwrap()).unwrap()))
        ),
        vec![("in".into(), 500, 500), ("in".into(), 300, 500)]
    );
    let err = d.pipe_input("in", None, Some(b"t=-7"), 3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTimestamp {
                timestamp: -7,
                offset: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_data_error(), "it goes to the error handler");
    assert!(t
        .clone()
        .set_timestamp_extractor("describe", TimeInValue)
        .is_err());
}

#[test]
fn records_with_an_invalid_timestamp_follow_the_handler() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, out, dlq, app) = (unique("in"), unique("out"), unique("dlq"), unique("ts"));
    create_topics(bs, &[(&input, 1), (&out, 1), (&dlq, 1)]);
    let records: Vec<(String, String)> = ["t=10", "t=-1", "t=30"]
        .iter()
        .map(|v| ("k".to_string(), v.to_string()))
        .collect();
    produce(bs, &input, &records);
    let dir = tempfile::tempdir().unwrap();
    // The configured default extractor (no source has its own).
    let config = test_config(&app, bs, dir.path())
        .with_timestamp_extractor(TimeInValue)
        .with_error_handling(ErrorHandling::DeadLetter { topic: dlq.clone() });
    let mut streams = KafkaStreams::new(describe_topology(&[&input], &out, false), config).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || read_all(bs, &dlq)
        .len()
        == 1
        && read_all(bs, &out).len() == 2));
    let got = described(read_all(bs, &out).into_iter().map(|r| r.value));
    let times: Vec<i64> = got.iter().map(|(_, ts, _)| *ts).collect();
    assert_eq!(times, vec![10, 30]);
    let dead = &read_all(bs, &dlq)[0];
    assert_eq!(dead.value.as_deref(), Some("t=-1"));
    let error = dead
        .headers
        .iter()
        .find(|(k, _)| k == "ks.error")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(error.contains("invalid timestamp -1"), "{error}");
    streams.close().unwrap();
}

#[test]
fn co_partitioned_inputs_are_processed_in_timestamp_order() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (a, b, out, app) = (unique("a"), unique("b"), unique("out"), unique("order"));
    create_topics(bs, &[(&a, 1), (&b, 1), (&out, 1)]);
    // All of a first, then all of b: fetch order is a's batch, then b's.
    let odd: Vec<(String, String)> = (0..300)
        .map(|i| ("k".into(), format!("t={}", 2 * i + 1)))
        .collect();
    let even: Vec<(String, String)> = (0..300)
        .map(|i| ("k".into(), format!("t={}", 2 * i + 2)))
        .collect();
    produce(bs, &a, &odd);
    produce(bs, &b, &even);
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&app, bs, dir.path()).with_max_task_idle(Some(Duration::from_secs(2)));
    let mut streams = KafkaStreams::new(describe_topology(&[&a, &b], &out, true), config).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || read_all(bs, &out)
        .len()
        == 600));
    let got = described(read_all(bs, &out).into_iter().map(|r| r.value));
    let times: Vec<i64> = got.iter().map(|(_, ts, _)| *ts).collect();
    assert_eq!(
        times,
        (1..=600).collect::<Vec<i64>>(),
        "timestamp order, not fetch order"
    );
    // Every record was processed at its own time: stream time never ran ahead of it.
    assert!(got.iter().all(|(_, ts, st)| ts == st));
    streams.close().unwrap();
}

/// Two runs of one application, the second on a fresh state directory: the second sees the
/// stream time the first reached, from the commit alone.
fn stream_time_resumes(broker: &ks_broker::Broker) {
    let bs = broker.bootstrap_servers();
    let (input, out, app) = (unique("in"), unique("out"), unique("resume"));
    create_topics(bs, &[(&input, 1), (&out, 1)]);
    let run = |records: &[&str], outputs: usize| {
        let records: Vec<(String, String)> = records
            .iter()
            .map(|v| ("k".to_string(), v.to_string()))
            .collect();
        produce(bs, &input, &records);
        let dir = tempfile::tempdir().unwrap();
        let mut streams = KafkaStreams::new(
            describe_topology(&[&input], &out, true),
            test_config(&app, bs, dir.path()),
        )
        .unwrap();
        streams.start().unwrap();
        assert!(wait_until(Duration::from_secs(60), || read_all(bs, &out)
            .len()
            == outputs));
        streams.close().unwrap();
    };
    run(&["t=1000", "t=5000"], 2);
    run(&["t=2000"], 3);
    let got = described(read_all(bs, &out).into_iter().map(|r| r.value));
    assert_eq!(
        got.iter().map(|(_, ts, st)| (*ts, *st)).collect::<Vec<_>>(),
        vec![(1000, 1000), (5000, 5000), (2000, 5000)],
        "after the restart stream time is still 5000"
    );
}

/// Apache Kafka: tansu drops the metadata of committed offsets, so there stream time starts
/// over after a restart (as it did before it was committed at all).
#[test]
fn stream_time_survives_a_restart_on_kafka() {
    stream_time_resumes(&ks_broker::Broker::kafka().unwrap());
}
