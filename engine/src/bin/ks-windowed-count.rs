//! `ks-windowed-count`: a DSL windowed count (tumbling windows, RocksDB store, exactly-once by
//! default), run as a separate process by the test that kills it mid-stream
//! (`tests/windowed_count_survives_kill.rs`). Prints `committed <topic>:<p>=<offset>,...` after
//! every commit that completed, as `ks-wordcount` does, and `restored task <id> records <n>`
//! when a task's stores were restored.

#[path = "../../tests/support/windowed_count.rs"]
mod windowed_count;

use ks_engine::stores::StoreKind;
use ks_engine::{KafkaStreams, ProcessingGuarantee, StreamsConfig, StreamsState};
use std::process::ExitCode;
use std::time::Duration;
use windowed_count::windowed_count_topology;

const USAGE: &str = "usage: ks-windowed-count --brokers B --application-id A --state-dir D --input T --output T [--instance-id I] [--store memory|rocksdb|file] [--guarantee at_least_once|exactly_once] [--commit-ms N] [--cache-bytes N] [--window-ms N] [--grace-ms N]";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The value of `name` parsed, `default` when absent; a value that does not parse is an error.
fn parsed<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    match arg(args, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| format!("{name} {v:?}: {e}")),
    }
}

fn main() -> ExitCode {
    if let Err(e) = ks_logging::init(
        ks_logging::LogFormat::Text,
        "warn,librdkafka=error,rdkafka=error",
    ) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let (Some(brokers), Some(app), Some(state_dir), Some(input), Some(output)) = (
        arg(&args, "--brokers"),
        arg(&args, "--application-id"),
        arg(&args, "--state-dir"),
        arg(&args, "--input"),
        arg(&args, "--output"),
    ) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let options = (|| -> Result<_, String> {
        Ok((
            parsed(&args, "--store", StoreKind::RocksDb)?,
            parsed(&args, "--guarantee", ProcessingGuarantee::ExactlyOnce)?,
            parsed(&args, "--commit-ms", 500u64)?,
            parsed(&args, "--cache-bytes", 0usize)?,
            parsed(&args, "--window-ms", 10_000u64)?,
            parsed(&args, "--grace-ms", 5_000u64)?,
        ))
    })();
    let (kind, guarantee, commit_ms, cache_bytes, window_ms, grace_ms) = match options {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ks-windowed-count: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = StreamsConfig::new(app, brokers)
        .with_state_dir(state_dir)
        .with_processing_guarantee(guarantee)
        .with_commit_interval(Duration::from_millis(commit_ms))
        .with_cache_max_bytes_buffering(cache_bytes)
        .with_session_timeout(Duration::from_secs(6));
    if let Some(id) = arg(&args, "--instance-id") {
        config = config.with_instance_id(id);
    }
    let topology = match windowed_count_topology(
        &input,
        &output,
        kind,
        Duration::from_millis(window_ms),
        Duration::from_millis(grace_ms),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ks-windowed-count: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut streams = match KafkaStreams::new(topology, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ks-windowed-count: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = streams.start() {
        eprintln!("ks-windowed-count: {e}");
        return ExitCode::FAILURE;
    }
    println!("started {}", streams.instance_id());
    let mut last_committed = Default::default();
    let mut last_restores = std::collections::BTreeMap::new();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let restores = streams.metrics().task_restores();
        for (task, r) in &restores {
            if last_restores.get(task) != Some(r) {
                // The test checks that a run on a wiped state dir restored from the changelog.
                println!("restored task {task} records {}", r.records);
            }
        }
        last_restores = restores;
        let committed = streams.committed_offsets();
        if committed != last_committed {
            // One line per commit that completed: the test kills after one of them.
            let list: Vec<String> = committed
                .iter()
                .map(|((t, p), o)| format!("{t}:{p}={o}"))
                .collect();
            println!("committed {}", list.join(","));
            last_committed = committed;
        }
        match streams.state() {
            StreamsState::Error(e) => {
                eprintln!("ks-windowed-count: {e}");
                let _ = streams.close();
                return ExitCode::FAILURE;
            }
            StreamsState::NotRunning => return ExitCode::SUCCESS,
            _ => {}
        }
    }
}
