//! `ks-server --log-format json`: every line of a task's work names the task (a `task` field
//! from the engine's task span: its start, and the error handling of one of its records), and
//! each stream thread reports its progress at info every `log.summary.interval.ms`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn json_lines_of_a_task_carry_its_name_and_progress_is_logged() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let t = &env.topics;
    let config = dir.path().join("ks-server.properties");
    std::fs::write(
        &config,
        format!(
            "application.id={}\nbootstrap.servers={}\nstate.dir={}\ncommit.interval.ms=200\n\
             session.timeout.ms=6000\nlog.summary.interval.ms=1000\nks.store=memory\n\
             ks.topic.data={}\nks.topic.models={}\nks.topic.results={}\nks.topic.errors={}\n",
            env.app,
            env.bootstrap(),
            dir.path().join("state").display(),
            t.data,
            t.models,
            t.results,
            t.errors
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ks-server"))
        .arg("--config")
        .arg(&config)
        .args(["--port", "0", "--log-format", "json"])
        .env_remove("KS_BROKERS")
        .env_remove("KS_APPLICATION_ID")
        .env_remove("KS_STORE")
        .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    env.publish_model("winequalityDecisionTreeClassification.pmml");
    env.publish_records(0, 40);
    // A bad record in partition 2: dead-lettered with a warning, inside its task.
    env.publisher
        .send_to_partition(&t.data, 2, None, b"not a wine record")
        .unwrap();
    env.publisher.flush(Duration::from_secs(10)).unwrap();

    let mut ready_tasks = Vec::new();
    let mut summary = None;
    let mut processor_warning = None;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline
        && (ready_tasks.is_empty() || summary.is_none() || processor_warning.is_none())
    {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let msg = v["msg"].as_str().unwrap_or_default().to_string();
        // "…: task 0_1 ready (stores restored) in 3 ms"
        if let Some(rest) = msg.split(": task ").nth(1) {
            if rest.contains(" ready") {
                let id = rest.split(' ').next().unwrap().to_string();
                assert_eq!(v["task"], id.as_str(), "{line}");
                ready_tasks.push(id);
            }
        }
        if msg.contains("records in the last") {
            let n: u64 = msg
                .split("processed ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if n > 0 {
                assert!(msg.contains("records/s"), "{line}");
                summary = Some(line.clone());
            }
        }
        if v["level"] == "WARN" && msg.contains("dead-lettering") {
            assert!(
                v["task"].as_str().is_some_and(|t| t.ends_with("_2")),
                "the error handler's line names the record's task: {line}"
            );
            processor_warning = Some(line.clone());
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let tail = seen[seen.len().saturating_sub(30)..].join("\n");
    assert!(!ready_tasks.is_empty(), "no task became ready:\n{tail}");
    assert!(summary.is_some(), "no progress summary line:\n{tail}");
    assert!(
        processor_warning.is_some(),
        "no warning for the bad record:\n{tail}"
    );
    println!(
        "tasks ready: {ready_tasks:?}\nsummary: {}\nbad record: {}",
        summary.unwrap(),
        processor_warning.unwrap()
    );
}
