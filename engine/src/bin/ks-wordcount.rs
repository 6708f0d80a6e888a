//! `ks-wordcount`: the engine's example application (a replay-safe count per key), run as a
//! separate process by the tests that kill an instance mid-stream.

#[path = "../../tests/support/dedup_count.rs"]
mod dedup_count;

use dedup_count::dedup_count_topology;
use ks_engine::stores::StoreKind;
use ks_engine::{ErrorHandling, KafkaStreams, ProcessingGuarantee, StreamsConfig, StreamsState};
use std::process::ExitCode;
use std::time::Duration;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
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
        eprintln!("usage: ks-wordcount --brokers B --application-id A --state-dir D --input T --output T [--store memory|rocksdb|file] [--guarantee at_least_once|exactly_once] [--commit-ms N] [--instance-id I] [--dead-letter T] [--num-standby-replicas N]");
        return ExitCode::from(2);
    };
    let kind: StoreKind = match arg(&args, "--store")
        .unwrap_or_else(|| "rocksdb".into())
        .parse()
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("ks-wordcount: {e}");
            return ExitCode::from(2);
        }
    };
    let guarantee: ProcessingGuarantee = match arg(&args, "--guarantee")
        .unwrap_or_else(|| "at_least_once".into())
        .parse()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("ks-wordcount: {e}");
            return ExitCode::from(2);
        }
    };
    let commit_ms: u64 = arg(&args, "--commit-ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut config = StreamsConfig::new(app, brokers)
        .with_state_dir(state_dir)
        .with_processing_guarantee(guarantee)
        .with_commit_interval(Duration::from_millis(commit_ms))
        .with_session_timeout(Duration::from_secs(6));
    if let Some(n) = arg(&args, "--num-standby-replicas") {
        match n.parse() {
            Ok(n) => config = config.with_num_standby_replicas(n),
            Err(e) => {
                eprintln!("ks-wordcount: --num-standby-replicas {n:?}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(id) = arg(&args, "--instance-id") {
        config = config.with_instance_id(id);
    }
    if let Some(t) = arg(&args, "--dead-letter") {
        config = config.with_error_handling(ErrorHandling::DeadLetter { topic: t });
    }
    let topology = match dedup_count_topology(&input, &output, kind) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ks-wordcount: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut streams = match KafkaStreams::new(topology, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ks-wordcount: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = streams.start() {
        eprintln!("ks-wordcount: {e}");
        return ExitCode::FAILURE;
    }
    println!("started {}", streams.instance_id());
    let mut last = u64::MAX;
    let mut last_committed = Default::default();
    let mut last_partitions = Vec::new();
    let mut last_restores = std::collections::BTreeMap::new();
    let mut last_standby = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        // Events with wall-clock milliseconds, for the failover benchmark (ks-bench).
        let now = ks_kafka::now_ms();
        let partitions = streams.assigned_partitions();
        if partitions != last_partitions {
            let list: Vec<String> = partitions.iter().map(|(_, p)| p.to_string()).collect();
            println!("at {now} assigned [{}]", list.join(","));
            last_partitions = partitions;
        }
        let restores = streams.metrics().task_restores();
        for (task, r) in &restores {
            if last_restores.get(task) != Some(r) {
                println!(
                    "at {now} restored task {task} records {} from_standby {} ready_ms {}",
                    r.records,
                    r.from_standby,
                    r.time_to_ready.as_millis()
                );
            }
        }
        last_restores = restores;
        let standby: Vec<(i32, Option<u64>)> = streams
            .standby_partitions()
            .into_iter()
            .map(|p| (p.partition, p.lag))
            .collect();
        if standby != last_standby {
            let list: Vec<String> = standby
                .iter()
                .map(|(p, lag)| format!("{p}:{}", lag.map_or("?".to_string(), |l| l.to_string())))
                .collect();
            println!("at {now} standby [{}]", list.join(","));
            last_standby = standby;
        }
        let processed = streams
            .metrics()
            .processed
            .load(std::sync::atomic::Ordering::Relaxed);
        if processed != last {
            println!(
                "processed {processed} partitions {:?}",
                streams.assigned_partitions()
            );
            last = processed;
        }
        let committed = streams.committed_offsets();
        if committed != last_committed {
            // One line per commit that completed: tests compare it with the group's offsets.
            let list: Vec<String> = committed
                .iter()
                .map(|((t, p), o)| format!("{t}:{p}={o}"))
                .collect();
            println!("committed {}", list.join(","));
            last_committed = committed;
        }
        match streams.state() {
            StreamsState::Error(e) => {
                eprintln!("ks-wordcount: {e}");
                let _ = streams.close();
                return ExitCode::FAILURE;
            }
            StreamsState::NotRunning => return ExitCode::SUCCESS,
            _ => {}
        }
    }
}
