//! Issue #14: a DSL windowed count over 4 partitions, exactly-once on Apache Kafka, killed
//! (`kill -9`) twice mid-stream — restarted once on its state dir and once on a wiped one
//! (restore from the changelog) — ends with the same windows as an uninterrupted run of the
//! same topology and as the counts computed from the input here. Under exactly-once no window
//! is counted twice: per window, the committed output only ever grows.
//!
//! Apache Kafka, not tansu: tansu's read_committed readers see aborted records, so only Kafka
//! can show that the killed instance's open transaction left nothing behind.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;
#[path = "support/windowed_count.rs"]
mod windowed_count;

use common::*;
use ks_engine::stores::StoreKind;
use ks_engine::{KafkaStreams, ProcessingGuarantee};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use windowed_count::windowed_count_topology;

const WINDOW_MS: i64 = 10_000;
const GRACE_MS: i64 = 5_000;
const KEYS: usize = 50;
const RECORDS: usize = 2_000;
/// Event times start here, a window start: a record timestamp of 0 tells librdkafka "now".
const BASE_MS: i64 = 1_000_000_000;

/// Record `i`: one of 50 keys, event time 100 ms per record (2 000 records span 20 windows);
/// every 7th is 3 s out of order, within the 5 s grace, so no record is ever late and the count
/// of a window does not depend on how processing was cut.
fn record(i: usize) -> (String, String, i64) {
    let mut ts = BASE_MS + i as i64 * 100;
    if i % 7 == 3 {
        ts = (ts - 3_000).max(BASE_MS);
    }
    (format!("k{}", (i * 31) % KEYS), format!("v{i}"), ts)
}

fn records(range: std::ops::Range<usize>) -> Vec<(String, String, i64)> {
    range.map(record).collect()
}

/// The oracle: the count per (key, window start) of every input record.
fn expected() -> BTreeMap<(String, i64), i64> {
    let mut m = BTreeMap::new();
    for (k, _, ts) in records(0..RECORDS) {
        *m.entry((k, ts / WINDOW_MS * WINDOW_MS)).or_insert(0) += 1;
    }
    m
}

/// The last committed count per (key, window start) in `topic`; fails if a window's counts
/// ever stay equal or go down (a record counted twice, or an aborted count left visible).
fn final_windows(bs: &str, topic: &str) -> BTreeMap<(String, i64), i64> {
    let mut last: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in read_all_committed(bs, topic) {
        let key = r.raw_key.unwrap();
        let (k, start) = key.split_at(key.len() - 8);
        let window = (
            String::from_utf8(k.to_vec()).unwrap(),
            i64::from_be_bytes(start.try_into().unwrap()),
        );
        let count = i64::from_be_bytes(r.raw_value.unwrap().as_slice().try_into().unwrap());
        let prev = last.insert(window.clone(), count).unwrap_or(0);
        assert!(
            count > prev,
            "{topic}: window {window:?} went {prev} -> {count}"
        );
    }
    last
}

/// An instance of `ks-windowed-count` (always instance id `n1`, so each successor fences its
/// killed predecessor's transactional id and aborts its open transaction), and its stdout
/// lines on a channel so the test can wait for them with a timeout.
fn spawn(bs: &str, app: &str, input: &str, output: &str, dir: &Path) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ks-windowed-count"))
        .args(["--brokers", bs, "--application-id", app])
        .args(["--input", input, "--output", output, "--instance-id", "n1"])
        // Commits 2 s apart: a kill 1 s after one lands in an open transaction. No record
        // cache, so every count goes to the store, the changelog and the output at once: a
        // replay after the kill would count twice if the aborted writes survived.
        // (With at_least_once this test fails: a replayed record counts twice.)
        .args(["--guarantee", "exactly_once"])
        .args(["--commit-ms", "2000", "--cache-bytes", "0"])
        .args(["--window-ms", &WINDOW_MS.to_string()])
        .args(["--grace-ms", &GRACE_MS.to_string()])
        .arg("--state-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The input records a `committed t:p=o,...` line covers.
fn committed_total(line: &str) -> Option<i64> {
    let list = line.strip_prefix("committed ")?;
    Some(
        list.split(',')
            .filter_map(|e| e.rsplit_once('=')?.1.parse::<i64>().ok())
            .sum(),
    )
}

/// Waits for a commit covering more than `beyond` input records; returns what it covers.
/// Restore lines seen on the way are added to `restored`.
fn wait_for_commit(lines: &Receiver<String>, beyond: i64, restored: &mut u64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no commit beyond {beyond} input records: {e}"));
        if let Some(n) = line
            .strip_prefix("restored task ")
            .and_then(|l| l.rsplit_once(" records "))
            .and_then(|(_, n)| n.parse::<u64>().ok())
        {
            *restored += n;
        }
        match committed_total(&line) {
            Some(total) if total > beyond => return total,
            _ => {}
        }
    }
}

fn kill_9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_windowed_count_killed_twice_ends_with_the_windows_of_an_uninterrupted_run() {
    let broker = ks_broker::Broker::kafka().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, out, out_ref) = (unique("in"), unique("out"), unique("out-ref"));
    let (app, app_ref) = (unique("wcount"), unique("wcount-ref"));
    create_topics(bs, &[(&input, 4), (&out, 4), (&out_ref, 4)]);
    let (dir, wiped, dir_ref) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );

    // The uninterrupted run: the same topology in this process, never stopped, with the record
    // cache on (counts go out at each commit, inside its transaction).
    let topology = windowed_count_topology(
        &input,
        &out_ref,
        StoreKind::RocksDb,
        Duration::from_millis(WINDOW_MS as u64),
        Duration::from_millis(GRACE_MS as u64),
    )
    .unwrap();
    let config = test_config(&app_ref, bs, dir_ref.path())
        .with_processing_guarantee(ProcessingGuarantee::ExactlyOnce)
        .with_cache_max_bytes_buffering(1 << 20);
    let mut reference = KafkaStreams::new(topology, config).unwrap();
    reference.start().unwrap();

    // First half, in two parts: the second arrives after the first commit, so the kill lands
    // while a transaction is open.
    produce_at(bs, &input, &records(0..800));
    let mut restored = 0;
    let (child, lines) = spawn(bs, &app, &input, &out, dir.path());
    let first = wait_for_commit(&lines, 0, &mut restored);
    produce_at(bs, &input, &records(800..1_000));
    std::thread::sleep(Duration::from_millis(800));
    kill_9(child);
    let at_kill = committed(bs, &app, &input, 4).iter().sum::<i64>();
    assert!(at_kill >= first, "group at {at_kill}, child said {first}");

    // Restart on the same state dir (dirty under exactly-once: wiped and restored), go past
    // the first kill's offsets, then kill again mid-transaction.
    let (child, lines) = spawn(bs, &app, &input, &out, dir.path());
    wait_for_commit(&lines, at_kill, &mut restored);
    produce_at(bs, &input, &records(1_000..1_400));
    std::thread::sleep(Duration::from_millis(800));
    kill_9(child);
    let at_second_kill = committed(bs, &app, &input, 4).iter().sum::<i64>();

    // The last instance starts on an empty state dir: everything it knows of the first 1 400
    // records' windows comes from the changelog.
    restored = 0;
    let (child, lines) = spawn(bs, &app, &input, &out, wiped.path());
    produce_at(bs, &input, &records(1_400..RECORDS));
    let total = RECORDS as i64;
    let mut got = at_second_kill;
    while got < total {
        got = wait_for_commit(&lines, got, &mut restored);
    }
    assert!(
        at_second_kill == 0 || restored > 0,
        "the wiped instance restored nothing (group was at {at_second_kill})"
    );
    kill_9(child);
    assert_eq!(committed(bs, &app, &input, 4).iter().sum::<i64>(), total);
    eprintln!(
        "killed at {at_kill} and {at_second_kill} committed input records; \
         the wiped instance restored {restored} changelog records"
    );

    // The reference's own view of its commits (a group query may see the offsets of its
    // transaction in flight as unstable).
    let finished = wait_until(Duration::from_secs(60), || {
        reference.committed_offsets().values().sum::<i64>() == total
    });
    assert!(
        finished,
        "the uninterrupted run did not finish: {:?}, committed {:?}",
        reference.state(),
        reference.committed_offsets()
    );
    reference.close().unwrap();

    let oracle = expected();
    assert_eq!(oracle.len(), 20 * KEYS, "every key in every window");
    assert_eq!(
        final_windows(bs, &out_ref),
        oracle,
        "uninterrupted run vs the input"
    );
    assert_eq!(final_windows(bs, &out), oracle, "killed twice vs the input");
    // The kills did land in open transactions: their counts are in the output topic, aborted,
    // and read_committed hid them.
    let (all, committed_only) = (
        read_all_with(bs, &out, Some("read_uncommitted")).len(),
        read_all_committed(bs, &out).len(),
    );
    assert_eq!(
        committed_only, RECORDS,
        "one committed count per input record"
    );
    assert!(all > committed_only, "no aborted output: {all} records");
}
