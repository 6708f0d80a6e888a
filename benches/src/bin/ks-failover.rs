//! `ks-failover`: the failover benchmark (see `ks_bench::failover` and `benches/README.md`).
//! Runs the same failover with 0 and with 1 standby replica, alternating, `--repeat` times,
//! on one broker, and reports each run and the medians.

use anyhow::{bail, Context, Result};
use clap::Parser;
use ks_bench::failover::{run_once, FailoverRun};
use ks_broker::{BrokerKind, BrokerOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(about = "Failover of a killed instance with and without standby replicas")]
struct Options {
    /// The broker to start: tansu (embedded) or kafka (Apache Kafka, KRaft).
    #[arg(long, default_value = "tansu")]
    broker: String,
    /// Use this running broker instead of starting one.
    #[arg(long)]
    brokers: Option<String>,
    /// Distinct keys in the store (spread over 4 partitions).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Failovers per standby setting.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The ks-wordcount binary (default: next to this one).
    #[arg(long)]
    wordcount_bin: Option<PathBuf>,
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn run(opts: Options) -> Result<()> {
    let binary = match opts.wordcount_bin {
        Some(b) => b,
        None => {
            let exe = std::env::current_exe().context("cannot locate this executable")?;
            let b = exe.with_file_name("ks-wordcount");
            if !b.is_file() {
                bail!(
                    "no ks-wordcount next to {} (cargo build --release -p ks-engine --bin \
                     ks-wordcount, or pass --wordcount-bin)",
                    exe.display()
                );
            }
            b
        }
    };
    let (_broker, brokers) = match opts.brokers {
        Some(b) => (None, b),
        None => {
            let kind: BrokerKind = opts.broker.parse().context("--broker")?;
            let b = ks_broker::Broker::start(kind, BrokerOptions::default())
                .with_context(|| format!("cannot start a local {kind} broker"))?;
            let addr = b.bootstrap_servers().to_string();
            eprintln!("ks-failover: started a local {kind} broker at {addr}");
            (Some(b), addr)
        }
    };
    let work = tempfile_dir()?;
    let mut runs: Vec<FailoverRun> = Vec::new();
    for i in 0..opts.repeat {
        for replicas in [0, 1] {
            eprintln!(
                "ks-failover: run {}/{} with {replicas} standby replica(s), {} keys",
                i + 1,
                opts.repeat,
                opts.keys
            );
            let r = run_once(&binary, &brokers, opts.keys, replicas, &work)?;
            println!("{}", serde_json::to_string(&r)?);
            runs.push(r);
        }
    }
    println!(
        "{:<9} {:>13} {:>11} {:>10} {:>17}",
        "standbys", "detection_ms", "restore_ms", "total_ms", "restored_records"
    );
    let mut medians = Vec::new();
    for replicas in [0, 1] {
        let of = |f: fn(&FailoverRun) -> u64| {
            median(
                runs.iter()
                    .filter(|r| r.standby_replicas == replicas)
                    .map(f)
                    .collect(),
            )
        };
        let m = (
            of(|r| r.detection_ms),
            of(|r| r.restore_ms),
            of(|r| r.total_ms),
            of(|r| r.restored_records),
        );
        println!(
            "{replicas:<9} {:>13} {:>11} {:>10} {:>17}",
            m.0, m.1, m.2, m.3
        );
        medians.push(m);
    }
    if let [cold, warm] = medians.as_slice() {
        println!(
            "restore with a standby: {:.1}x shorter ({} ms vs {} ms), {:.0}x fewer records",
            cold.1 as f64 / warm.1.max(1) as f64,
            warm.1,
            cold.1,
            cold.3 as f64 / warm.3.max(1) as f64
        );
    }
    // The state directories go; the instances' logs stay for a look at what took the time.
    if let Ok(entries) = std::fs::read_dir(&work) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    eprintln!("ks-failover: instance logs in {}", work.display());
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("ks-failover-{}", ks_kafka::now_ms()));
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

fn main() -> ExitCode {
    match run(Options::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-failover: {e:#}");
            ExitCode::FAILURE
        }
    }
}
