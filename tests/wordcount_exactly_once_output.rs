//! The engine's exactly-once word count, asserted on its output topic with read_committed on
//! Apache Kafka (tansu shows aborted records to read_committed readers, so this could only be
//! asserted on stores and offsets there):
//! - `ks-wordcount --guarantee exactly_once` killed with SIGKILL twice mid-stream: every key's
//!   counts 1..=n appear exactly once each;
//! - a processing failure aborts a transaction that already wrote output: none of it is visible,
//!   and the successor's output counts each record once.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    Error, ErrorHandling, KafkaStreams, ProcessingGuarantee, Processor, ProcessorContext, Record,
    StreamsConfig, StreamsState, Topology,
};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEYS: usize = 50;

fn produce_keyed(bootstrap: &str, topic: &str, from: usize, n: usize) {
    let p = ks_client::kafka::Publisher::connect(bootstrap).unwrap();
    for i in from..from + n {
        let key = format!("w{}", i % KEYS);
        p.send(topic, Some(key.as_bytes()), format!("{i}").as_bytes())
            .unwrap();
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

/// The committed output, per key in offset order.
fn committed_counts(bootstrap: &str, topic: &str) -> BTreeMap<String, Vec<u64>> {
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    ks_client::kafka::read_topic(
        bootstrap,
        topic,
        true,
        Duration::from_secs(120),
        |m| {
            let key = String::from_utf8_lossy(m.key.as_deref().unwrap_or_default()).into_owned();
            let n = String::from_utf8_lossy(&m.payload).parse().unwrap_or(0);
            by_key.entry(key).or_default().push(n);
            true
        },
        &|| false,
    )
    .unwrap();
    by_key
}

/// Each key's counts are 1, 2, …, n with nothing repeated; returns (results, duplicates).
fn check_exact(by_key: &BTreeMap<String, Vec<u64>>, per_key: u64) -> (usize, usize) {
    let total: usize = by_key.values().map(Vec::len).sum();
    let mut duplicates = 0;
    for (key, counts) in by_key {
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        duplicates += counts.len() - sorted.len();
        let expected: Vec<u64> = (1..=per_key).collect();
        assert_eq!(sorted, expected, "counts of {key}");
    }
    (total, duplicates)
}

#[test]
fn kill_9_twice_leaves_each_count_exactly_once_in_the_output() {
    const INPUTS: usize = 100_000;
    let broker = ks_broker::Broker::kafka().unwrap();
    let bs = broker.bootstrap_servers().to_string();
    let started = Instant::now();
    let (input, output, app) = (unique("words"), unique("counts"), unique("wc"));
    block_on(ks_client::kafka::ensure_topics(
        &bs,
        &[(&input, PARTITIONS), (&output, PARTITIONS)],
    ))
    .unwrap();
    produce_keyed(&bs, &input, 0, INPUTS);
    let dir = tempfile::tempdir().unwrap();
    let spawn = |stdout: Stdio| {
        Command::new(workspace_bin("ks-wordcount"))
            .args(["--brokers", &bs, "--application-id", &app])
            .args(["--input", &input, "--output", &output])
            .args(["--guarantee", "exactly_once", "--instance-id", "wc-1"])
            .arg("--state-dir")
            .arg(dir.path())
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(stdout)
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(std::env::temp_dir().join(format!("{app}.log")))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .unwrap()
    };
    let output_len = || -> usize { committed_counts(&bs, &output).values().map(Vec::len).sum() };
    // Killed mid-transaction: after a commit covering 20 000 (then 50 000) inputs, at the next
    // progress line. ks-wordcount prints "committed t:p=o,…" per commit and "processed N".
    for at in [20_000i64, 50_000] {
        let mut child = spawn(Stdio::piped());
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next = |timeout: Duration| rx.recv_timeout(timeout).ok();
        let mut committed = None;
        while let Some(l) = next(Duration::from_secs(120)) {
            let Some(list) = l.strip_prefix("committed ") else {
                continue;
            };
            let total: i64 = list
                .split(',')
                .filter_map(|e| e.rsplit_once('=')?.1.parse::<i64>().ok())
                .sum();
            if total >= at {
                committed = Some(total);
                break;
            }
        }
        // Into the next transaction if there is more to do (there may not be).
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut more = None;
        while more.is_none() && Instant::now() < deadline {
            more = next(Duration::from_millis(200)).filter(|l| l.starts_with("processed "));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        println!(
            "killed ks-wordcount after a commit of {committed:?} inputs, then {more:?}; {} committed outputs",
            output_len()
        );
        assert!(
            committed.is_some(),
            "ks-wordcount ended before committing {at}"
        );
    }
    let mut child = spawn(Stdio::null());
    assert!(wait_until(Duration::from_secs(300), || output_len() >= INPUTS));
    // A little longer: anything beyond the inputs would be a duplicate.
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap();
    child.wait().unwrap();
    let by_key = committed_counts(&bs, &output);
    let (results, duplicates) = check_exact(&by_key, (INPUTS / KEYS) as u64);
    print_counts(&format!(
        "test=wordcount_exactly_once_output/kill broker=kafka inputs={INPUTS} results={results} missing={} duplicates={duplicates} seconds={:.1}",
        INPUTS - (results - duplicates),
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(duplicates, 0);
    assert_eq!(results, INPUTS);
}

/// A plain count: only exactly-once keeps its output exact across a replay.
struct Count;

impl Processor for Count {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> ks_engine::Result<()> {
        if r.value.as_deref() == Some(b"poison") {
            return Err(Error::processing("count", "poison record"));
        }
        let key = r.key.clone().unwrap_or_default();
        let store = ctx.store("counts")?;
        let n: u64 = store
            .get(&key)?
            .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0)
            + 1;
        store.put(&key, n.to_string().as_bytes())?;
        ctx.forward(r.with_value(Some(n.to_string().into_bytes())));
        Ok(())
    }
}

fn count_topology(input: &str, output: &str) -> Topology {
    let mut t = Topology::new();
    t.add_source("in", &[input])
        .unwrap()
        .add_processor("count", supplier(|| Count), &["in"])
        .unwrap()
        .add_state_store(StoreSpec::new("counts", StoreKind::RocksDb), &["count"])
        .unwrap()
        .add_sink("out", output, &["count"])
        .unwrap();
    t
}

#[test]
fn an_aborted_transaction_leaves_no_output() {
    let started = Instant::now();
    let broker = ks_broker::Broker::kafka().unwrap();
    let bs = broker.bootstrap_servers().to_string();
    let (input, output, app) = (unique("in"), unique("out"), unique("eos"));
    block_on(ks_client::kafka::ensure_topics(
        &bs,
        &[(&input, 1), (&output, 1)],
    ))
    .unwrap();
    // 200 records, then a poison record in the same transaction (the commit interval is longer
    // than the test), then 100 more.
    produce_keyed(&bs, &input, 0, 200);
    let p = ks_client::kafka::Publisher::connect(&bs).unwrap();
    p.send(&input, Some(b"w0"), b"poison").unwrap();
    p.flush(Duration::from_secs(30)).unwrap();
    produce_keyed(&bs, &input, 200, 100);
    let dir = tempfile::tempdir().unwrap();
    let config = |handling| {
        StreamsConfig::new(&app, &bs)
            .with_state_dir(dir.path())
            .with_session_timeout(Duration::from_secs(6))
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnce)
            .with_error_handling(handling)
    };
    let mut failing = KafkaStreams::new(
        count_topology(&input, &output),
        config(ErrorHandling::LogAndFail).with_commit_interval(Duration::from_secs(600)),
    )
    .unwrap();
    failing.start().unwrap();
    assert!(wait_until(Duration::from_secs(120), || matches!(
        failing.state(),
        StreamsState::Error(_)
    )));
    let _ = failing.close();
    // The 200 outputs before the poison were sent inside the aborted transaction.
    assert!(
        committed_counts(&bs, &output).is_empty(),
        "a read_committed reader sees none of the aborted output"
    );

    let mut successor = KafkaStreams::new(
        count_topology(&input, &output),
        config(ErrorHandling::LogAndContinue),
    )
    .unwrap();
    successor.start().unwrap();
    let len = || -> usize { committed_counts(&bs, &output).values().map(Vec::len).sum() };
    assert!(wait_until(Duration::from_secs(120), || len() >= 300));
    std::thread::sleep(Duration::from_secs(1));
    successor.close().unwrap();
    let by_key = committed_counts(&bs, &output);
    let (results, duplicates) = check_exact(&by_key, (300 / KEYS) as u64);
    print_counts(&format!(
        "test=wordcount_exactly_once_output/abort broker=kafka inputs=300 results={results} missing={} duplicates={duplicates} seconds={:.1}",
        300 - (results - duplicates),
        started.elapsed().as_secs_f64()
    ));
    assert_eq!((results, duplicates), (300, 0));
}
