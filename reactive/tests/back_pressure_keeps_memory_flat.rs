//! Back pressure: with a deliberately slow model (`--slow-score-ms`, a hidden test hook) and a
//! 100k-record backlog in the data topic, the as-server process reads only what it can score:
//! its resident memory stays flat and most of the backlog stays in the broker.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn check(mode: &str) {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    env.publish_model(TREE);
    let started = Instant::now();
    env.publish_records(0, 100_000);
    eprintln!(
        "{mode}: backlog of 100k published in {:?}",
        started.elapsed()
    );

    let (mut child, addr) = env.spawn(mode, dir.path(), &["--slow-score-ms", "5"]);
    // Let it join, fill its buffers and reach a steady state before the baseline.
    assert!(wait_until(Duration::from_secs(20), || {
        http_get(&addr, "/state/wine").1["usage"]
            .as_u64()
            .unwrap_or(0)
            > 200
    }));
    let baseline = rss_kib(child.id());
    let mut peak = baseline;
    for _ in 0..16 {
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(rss_kib(child.id()));
    }
    let scored = http_get(&addr, "/state/wine").1["usage"].as_u64().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("{mode}: RSS baseline {baseline} KiB, peak {peak} KiB, {scored} scored");
    assert!(
        peak - baseline < 30 * 1024,
        "RSS grew {} KiB",
        peak - baseline
    );
    // Scoring is the bottleneck: at most one record per 5 ms has been scored.
    assert!(scored < 100_000 / 4, "{scored}");
}

#[test]
fn stage_mode_memory_stays_flat_under_a_backlog() {
    check("stage");
}

#[test]
fn actor_mode_memory_stays_flat_under_a_backlog() {
    check("actor");
}
