//! exactly_once on the real broker: counts exact with transactions, a processing failure
//! aborts and the input is processed again, a zombie is fenced by its successor, and a kill -9
//! mid-transaction leaves the group's offsets at the last committed transaction.
//!
//! The local broker (tansu) returns no aborted-transaction ranges in Fetch, so read_committed
//! consumers also see aborted records. These tests therefore assert on what it lets us observe:
//! committed offsets and the state stores (which never take an aborted write, see
//! `runtime/txn_store.rs`), not on the absence of aborted records in output topics.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

#[path = "support/dedup_count.rs"]
mod dedup_count;
use common::*;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    Error, ErrorHandling, KafkaStreams, ProcessingGuarantee, Processor, ProcessorContext, Record,
    StreamsState, Topology,
};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A plain count (no replay protection): exact totals need exactly-once.
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

fn counts(streams: &KafkaStreams) -> Vec<(String, u64)> {
    streams
        .store("counts")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).parse().unwrap(),
            )
        })
        .collect()
}

fn eos_config(app: &str, bs: &str, dir: &std::path::Path) -> ks_engine::StreamsConfig {
    test_config(app, bs, dir).with_processing_guarantee(ProcessingGuarantee::ExactlyOnce)
}

#[test]
fn transactions_commit_output_changelog_and_offsets_together() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("eos"));
    create_topics(bs, &[(&input, 2), (&output, 2)]);
    produce(bs, &input, &keyed(200, 4, 0));
    let dir = tempfile::tempdir().unwrap();
    let mut streams = KafkaStreams::new(
        count_topology(&input, &output),
        eos_config(&app, bs, dir.path()),
    )
    .unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || committed(
        bs, &app, &input, 2
    )
    .iter()
    .sum::<i64>()
        == 200));
    assert_eq!(
        counts(&streams),
        vec![
            ("w0".into(), 50),
            ("w1".into(), 50),
            ("w2".into(), 50),
            ("w3".into(), 50)
        ]
    );
    streams.close().unwrap();
    assert_eq!(read_all(bs, &output).len(), 200);
    let changelog = read_all(bs, &format!("{app}-counts-changelog"));
    assert_eq!(changelog.len(), 200);
}

#[test]
fn a_processing_failure_aborts_and_the_input_is_processed_again() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("eos"));
    create_topics(bs, &[(&input, 1), (&output, 1)]);
    let mut records = keyed(40, 2, 0);
    records.push(("w0".into(), "poison".into()));
    produce(bs, &input, &records);
    let dir = tempfile::tempdir().unwrap();
    // A commit interval longer than the test: the poison is in the same transaction as the
    // records before it, so all of them are aborted.
    let config = eos_config(&app, bs, dir.path()).with_commit_interval(Duration::from_secs(600));
    let mut streams = KafkaStreams::new(count_topology(&input, &output), config).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || matches!(
        streams.state(),
        StreamsState::Error(_)
    )));
    let _ = streams.close();
    assert_eq!(
        committed(bs, &app, &input, 1),
        vec![-1001],
        "nothing of the aborted transaction is committed"
    );

    // The successor processes everything again; the aborted increments never reached the store.
    let config =
        eos_config(&app, bs, dir.path()).with_error_handling(ErrorHandling::LogAndContinue);
    let mut streams = KafkaStreams::new(count_topology(&input, &output), config).unwrap();
    streams.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || committed(
        bs, &app, &input, 1
    ) == vec![41]));
    assert_eq!(counts(&streams), vec![("w0".into(), 20), ("w1".into(), 20)]);
    streams.close().unwrap();
}

#[test]
fn a_zombie_is_fenced_when_its_successor_starts() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("eos"));
    create_topics(bs, &[(&input, 1), (&output, 1)]);
    produce(bs, &input, &keyed(20, 2, 0));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut zombie = KafkaStreams::new(
        count_topology(&input, &output),
        eos_config(&app, bs, dir_a.path()).with_instance_id("node-1"),
    )
    .unwrap();
    zombie.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || committed(
        bs, &app, &input, 1
    ) == vec![20]));

    // The successor takes the same instance id (so the same transactional id).
    let mut successor = KafkaStreams::new(
        count_topology(&input, &output),
        eos_config(&app, bs, dir_b.path()).with_instance_id("node-1"),
    )
    .unwrap();
    successor.start().unwrap();
    // Let the successor's first join finish before the zombie leaves: a member leaving while
    // another's first JoinGroup is pending can hold that join until the rebalance timeout.
    assert!(wait_until(Duration::from_secs(30), || successor
        .metrics()
        .rebalances
        .load(Ordering::Relaxed)
        > 0));
    // The zombie learns it is fenced at its next transaction that reaches the broker (an empty
    // one does not), so keep feeding it input until then.
    let mut produced = 20;
    let fenced = wait_until(Duration::from_secs(60), || {
        if matches!(zombie.state(), StreamsState::Error(ref e) if e.contains("fenced")) {
            return true;
        }
        produce(bs, &input, &keyed(5, 2, produced));
        produced += 5;
        false
    });
    assert!(fenced, "zombie state: {:?}", zombie.state());
    // Fenced means stopped cleanly: close reports the failure, nothing hangs.
    assert!(matches!(zombie.close(), Err(Error::NotRunning(_))));
    let total = produced as i64;
    assert!(
        wait_until(Duration::from_secs(60), || committed(bs, &app, &input, 1)
            == vec![total]),
        "committed {:?} of {total}; successor {:?} holds {:?}",
        committed(bs, &app, &input, 1),
        successor.state(),
        successor.assigned_partitions()
    );
    assert_eq!(successor.state(), StreamsState::Running);
    successor.close().unwrap();
}

#[test]
fn kill_9_mid_transaction_leaves_offsets_at_the_last_commit() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("eos"));
    create_topics(bs, &[(&input, 1), (&output, 1)]);
    produce(bs, &input, &keyed(50, 5, 0));
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ks-wordcount"))
        .args([
            "--brokers",
            bs,
            "--application-id",
            &app,
            "--input",
            &input,
            "--output",
            &output,
        ])
        .args([
            "--guarantee",
            "exactly_once",
            "--commit-ms",
            "1500",
            "--instance-id",
            "n1",
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait for the first commit to cover the first 50, then open a transaction and kill.
    let mut last_commit = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(c) = line.strip_prefix("committed ") {
            last_commit = c.to_string();
            if c.ends_with("=50") {
                break;
            }
        }
    }
    produce(bs, &input, &keyed(30, 5, 50));
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever the child printed last is what the group has: the open transaction's input
    // offsets did not leak into the committed offsets.
    let group = committed(bs, &app, &input, 1)[0];
    assert_eq!(last_commit, format!("{input}:0={group}"));
    assert!(group == 50 || group == 80, "committed {group}");

    // The successor (same instance id) aborts the open transaction and finishes the input.
    let mut successor = KafkaStreams::new(
        dedup_count::dedup_count_topology(&input, &output, StoreKind::RocksDb).unwrap(),
        eos_config(&app, bs, dir.path()).with_instance_id("n1"),
    )
    .unwrap();
    successor.start().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || committed(bs, &app, &input, 1)
            == vec![80]),
        "committed {:?}; successor {:?} holds {:?}, processed {}",
        committed(bs, &app, &input, 1),
        successor.state(),
        successor.assigned_partitions(),
        successor.metrics().processed.load(Ordering::Relaxed)
    );
    assert!(successor.metrics().processed.load(Ordering::Relaxed) == (80 - group) as u64);
    successor.close().unwrap();
}
