//! The benchmark run: preload once, then each mode against the same data topic.

use crate::cli::Options;
use crate::copier::{Copier, CopyReport};
use crate::http::Load;
use crate::kafka::{self, ReadOutcome, ResultsReader, Sender};
use crate::report::{self, p50_p99, ModeResult};
use crate::server::{self, Profiler, ServerKind, ServerProcess, ServerSpec};
use crate::swap;
use anyhow::{bail, Context, Result};
use ks_broker::{BrokerKind, BrokerOptions};
use ks_client::catalog::{self, ModelFile};
use ks_proto::Message;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DATA_PARTITIONS: i32 = 4;

/// What every mode shares.
struct Ctx {
    opts: Options,
    brokers: String,
    /// Prefix of every topic, application id and directory of this run, so runs never collide.
    run_id: String,
    work_dir: PathBuf,
    /// ks-server, if a selected mode runs it.
    ks_server_bin: Option<PathBuf>,
    /// as-server, if a selected mode runs it.
    as_server_bin: Option<PathBuf>,
    /// The Kafka Streams peer's classpath, if kstreams runs.
    kstreams_classpath: Option<String>,
    data_topic: String,
    model_name: String,
    /// The encoded `ModelDescriptor`, published to each server's own models topic.
    descriptor: Vec<u8>,
}

impl Ctx {
    /// The binary that runs `kind`, found before the run starts.
    fn binary(&self, kind: &ServerKind) -> Result<PathBuf> {
        let bin = match kind {
            ServerKind::KsServer(_) => &self.ks_server_bin,
            ServerKind::AsServer(_) => &self.as_server_bin,
            ServerKind::KStreams => return Ok(server::java_binary(self.opts.java.as_deref())),
        };
        bin.clone()
            .with_context(|| format!("{} was not located for this run", kind.binary_name()))
    }

    /// What goes before the server's arguments: the JVM options, classpath and main class of
    /// the Kafka Streams peer; nothing for the Rust servers.
    fn launcher_args(&self, kind: &ServerKind) -> Result<Vec<String>> {
        match kind {
            ServerKind::KStreams => {
                let cp = self
                    .kstreams_classpath
                    .as_deref()
                    .context("the Kafka Streams peer was not built for this run")?;
                Ok(server::kstreams_launcher_args(
                    cp,
                    self.opts.kstreams_heap_mb,
                ))
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// The server every mode in `modes` runs (state_value and steady run ks-server).
fn kinds_of(modes: &[&str]) -> Vec<ServerKind> {
    modes
        .iter()
        .filter_map(|m| match *m {
            "state_value" | "steady" | "swap" => Some(ServerKind::KsServer("standard".into())),
            other => ServerKind::for_mode(other),
        })
        .collect()
}

fn progress(msg: &str) {
    eprintln!("ks-bench: {msg}");
}

/// The servers the selected modes run: only those must exist, found (the Kafka Streams peer:
/// built) before any data is loaded.
#[derive(Default)]
struct Binaries {
    ks_server: Option<PathBuf>,
    as_server: Option<PathBuf>,
    kstreams_classpath: Option<String>,
}

fn locate_binaries(opts: &Options, modes: &[&str]) -> Result<Binaries> {
    let mut b = Binaries::default();
    for kind in &kinds_of(modes) {
        match kind {
            ServerKind::KsServer(_) if b.ks_server.is_none() => {
                b.ks_server = Some(server::locate(opts.server_bin.as_deref(), kind)?);
            }
            ServerKind::AsServer(_) if b.as_server.is_none() => {
                b.as_server = Some(server::locate(opts.as_server_bin.as_deref(), kind)?);
            }
            ServerKind::KStreams if b.kstreams_classpath.is_none() => {
                if opts.kstreams_classpath.is_none() {
                    progress("kstreams: building the Kafka Streams peer (cached once built)");
                }
                b.kstreams_classpath = Some(server::kstreams_classpath(
                    opts.kstreams_classpath.as_deref(),
                )?);
            }
            _ => {}
        }
    }
    Ok(b)
}

/// The model (its file and encoded descriptor) and the encoded wine records to publish.
fn load_inputs(opts: &Options) -> Result<(ModelFile, Vec<u8>, Vec<Vec<u8>>)> {
    let data_dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(catalog::default_data_dir);
    let model_path = opts
        .model
        .clone()
        .unwrap_or_else(|| data_dir.join("winequalityDesisionTreeRegression.pmml"));
    let model = ModelFile {
        model_type: catalog::model_type_of(&model_path)?,
        path: model_path,
    };
    let descriptor = ks_client::provide::descriptor_for(&model, &opts.data_type)?.encode_to_vec();
    let payloads: Vec<Vec<u8>> =
        catalog::wine_records(&data_dir.join("winequality_red.csv"), &opts.data_type)?
            .iter()
            .map(|r| r.encode_to_vec())
            .collect();
    Ok((model, descriptor, payloads))
}

/// Runs the modes `opts` asks for, printing one JSON line per mode as it completes.
pub fn run(opts: Options) -> Result<()> {
    let modes = opts.modes()?;
    let binaries = locate_binaries(&opts, &modes)?;
    let (model, descriptor, payloads) = load_inputs(&opts)?;

    // Our own broker lives as long as this guard; a given one is used as it is.
    let (broker, brokers) = match &opts.brokers {
        Some(b) => (None, b.clone()),
        None => {
            let kind: BrokerKind = opts
                .broker
                .parse()
                .with_context(|| format!("--broker {}", opts.broker))?;
            let b = ks_broker::Broker::start(kind, BrokerOptions::default())
                .with_context(|| format!("cannot start a local {kind} broker"))?;
            let addr = b.bootstrap_servers().to_string();
            progress(&format!("started a local {kind} broker at {addr}"));
            (Some(b), addr)
        }
    };
    ks_client::kafka::require_broker(&brokers, Duration::from_secs(5))?;
    let run_id = format!("ksb-{}", kafka::now_ms());
    let work_dir = std::env::temp_dir().join(&run_id);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let ctx = Ctx {
        data_topic: format!("{run_id}-data"),
        model_name: model.name(),
        brokers,
        run_id,
        work_dir,
        ks_server_bin: binaries.ks_server,
        as_server_bin: binaries.as_server,
        kstreams_classpath: binaries.kstreams_classpath,
        descriptor,
        opts,
    };
    progress(&format!(
        "run {} (logs in {}), model {}, modes {}",
        ctx.run_id,
        ctx.work_dir.display(),
        ctx.model_name,
        modes.join(",")
    ));

    if modes.iter().any(|m| !has_own_topic(m)) {
        preload(&ctx, &payloads)?;
    }

    // Our own broker's pid; else a local tansu serving the given address, if any.
    let broker_pid = broker
        .as_ref()
        .and_then(|b| b.pid())
        .map(|p| p.to_string())
        .or_else(|| server::find_broker_pid(&ctx.brokers));
    let cpu_of = |pid: Option<&str>| pid.and_then(server::process_cpu_seconds);
    let repeat = ctx.opts.repeat;
    let mut lines: Vec<(&str, Value)> = Vec::new();
    // Interleaved: every mode once, then again, so each mode sees the machine's load of every
    // part of the run, not one stretch of it.
    for run in 1..=repeat {
        let mut passthrough_rate = None;
        for &mode in &modes {
            let label = if repeat > 1 {
                format!("{mode}-r{run}")
            } else {
                mode.to_string()
            };
            // The broker and the harness share the machine with the server: their CPU per mode
            // shows who was busy.
            let broker_before = cpu_of(broker_pid.as_deref());
            let harness_before = cpu_of(Some("self"));
            let mut result = run_mode(&ctx, mode, &label, &payloads)?;
            for (key, before, pid) in [
                ("broker_cpu_s", broker_before, broker_pid.as_deref()),
                ("harness_cpu_s", harness_before, Some("self")),
            ] {
                if let (Some(b), Some(a)) = (before, cpu_of(pid)) {
                    result
                        .extra
                        .insert(key.into(), Value::from(((a - b) * 100.0).round() / 100.0));
                }
            }
            if mode == "passthrough" {
                passthrough_rate = Some(result.records_per_s());
            }
            if !has_own_topic(mode) {
                result.relative_to(passthrough_rate);
            }
            if repeat > 1 {
                result.extra.insert("run".into(), Value::from(run));
            }
            let line = result.json_line();
            println!("{line}");
            lines.push((mode, serde_json::from_str(&line)?));
        }
    }
    if repeat > 1 {
        for &mode in &modes {
            let runs: Vec<Value> = lines
                .iter()
                .filter(|(m, _)| *m == mode)
                .map(|(_, v)| v.clone())
                .collect();
            println!("{}", report::summary_line(&report::summarize(mode, &runs)));
        }
    }
    if !ctx.opts.keep {
        let _ = std::fs::remove_dir_all(&ctx.work_dir);
    }
    Ok(())
}

/// The modes that feed a data topic of their own (paced, or a longer backlog) instead of reading
/// the preloaded one: their rate is not comparable with the passthrough's.
fn has_own_topic(mode: &str) -> bool {
    mode.starts_with("steady") || mode == "swap"
}

/// Loads the records every mode but [`has_own_topic`]'s reads into the data topic.
fn preload(ctx: &Ctx, payloads: &[Vec<u8>]) -> Result<()> {
    kafka::create_topics(&ctx.brokers, &[(&ctx.data_topic, DATA_PARTITIONS)])?;
    let t = Instant::now();
    kafka::preload(
        &ctx.brokers,
        &ctx.data_topic,
        DATA_PARTITIONS,
        payloads,
        ctx.opts.records,
    )?;
    progress(&format!(
        "preloaded {} records into {} in {:.1} s",
        ctx.opts.records,
        ctx.data_topic,
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Runs one mode.
/// Runs one mode; `label` (the mode, with the run number under `--repeat`) names its topics,
/// state directory and log.
fn run_mode(ctx: &Ctx, mode: &str, label: &str, payloads: &[Vec<u8>]) -> Result<ModeResult> {
    match mode {
        "passthrough" => run_passthrough(ctx, label),
        "memory" | "standard" | "custom" | "kstreams" | "as-stage" | "as-actor" => {
            let kind = ServerKind::for_mode(mode)
                .with_context(|| format!("{mode} is not a server mode"))?;
            run_server(ctx, mode, label, kind)
        }
        "state_value" => run_state_value(ctx, label),
        "steady_passthrough" => run_steady_passthrough(ctx, label, payloads),
        "steady" => run_steady(ctx, label, payloads),
        "swap" => run_swap(ctx, label, payloads),
        other => bail!("unknown mode {other}"),
    }
}

fn latency_fields(result: &mut ModeResult, outcome: &ReadOutcome, skip: usize) {
    let samples = outcome.latencies_ms.get(skip..).unwrap_or_default();
    (result.p50_ms, result.p99_ms) = p50_p99(samples);
}

/// The copier's own CPU and memory, as a server's are reported.
fn insert_copier(r: &mut ModeResult, copy: &CopyReport) {
    r.rss_mb = copy.rss_mb;
    insert_cpu_fields(r, Some(copy.cpu_s));
}

fn run_passthrough(ctx: &Ctx, label: &str) -> Result<ModeResult> {
    let out_topic = format!("{}-{label}-results", ctx.run_id);
    kafka::create_topics(&ctx.brokers, &[(&out_topic, DATA_PARTITIONS)])?;
    let reader = ResultsReader::start(&ctx.brokers, &out_topic, ctx.opts.records)?;
    progress(&format!("{label}: copying"));
    let copier = Copier::start(&ctx.brokers, &ctx.data_topic, &out_topic, ctx.opts.records)?;
    let copy = copier.finish(Duration::from_secs(ctx.opts.timeout_s))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader.done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let outcome = reader.finish()?;
    if outcome.count < copy.copied {
        bail!(
            "passthrough: copied {} records but read back only {}",
            copy.copied,
            outcome.count
        );
    }
    let mut r = ModeResult {
        mode: "passthrough".into(),
        records: outcome.count,
        seconds: outcome.span_s(),
        rate: outcome.sustained_rate(),
        ..ModeResult::default()
    };
    insert_copier(&mut r, &copy);
    latency_fields(&mut r, &outcome, 0);
    Ok(r)
}

/// A server with its own models, results and errors topics, and the reader of its results.
struct Session {
    server: ServerProcess,
    profiler: Option<Profiler>,
    reader: ResultsReader,
    spawned: Instant,
    /// The server's CPU time when the first result had arrived: what start-up cost.
    cpu_at_first_result: Option<f64>,
    label: String,
    /// The server's models topic (the swap mode publishes its swaps there).
    models_topic: String,
}

impl Session {
    /// Starts a server of `kind` for `label` on `data_topic` and publishes the model once it runs.
    fn open(
        ctx: &Ctx,
        label: &str,
        kind: ServerKind,
        data_topic: &str,
        expected: u64,
    ) -> Result<Self> {
        Self::open_reading(ctx, label, kind, data_topic, expected, false)
    }

    /// [`Session::open`], the reader also counting results per model when `track_models`.
    fn open_reading(
        ctx: &Ctx,
        label: &str,
        kind: ServerKind,
        data_topic: &str,
        expected: u64,
        track_models: bool,
    ) -> Result<Self> {
        let prefix = format!("{}-{label}", ctx.run_id);
        let (models, results, errors) = (
            format!("{prefix}-models"),
            format!("{prefix}-results"),
            format!("{prefix}-errors"),
        );
        kafka::create_topics(
            &ctx.brokers,
            &[(&models, 1), (&results, DATA_PARTITIONS), (&errors, 1)],
        )?;
        // Reading from before the server starts: arrival times are real time.
        let reader = if track_models {
            ResultsReader::start_tracking_models(&ctx.brokers, &results, expected)?
        } else {
            ResultsReader::start(&ctx.brokers, &results, expected)?
        };
        let spec = ServerSpec {
            binary: ctx.binary(&kind)?,
            launcher_args: ctx.launcher_args(&kind)?,
            kind: kind.clone(),
            brokers: ctx.brokers.clone(),
            application_id: prefix.clone(),
            port: ks_broker::free_port()?,
            state_dir: ctx.work_dir.join(format!("{label}-state")),
            data_topic: data_topic.to_string(),
            models_topic: models.clone(),
            results_topic: results,
            errors_topic: errors,
            threads: ctx.opts.threads,
            log: ctx.work_dir.join(format!("{label}.log")),
        };
        let spawned = Instant::now();
        let server = ServerProcess::start(&spec)?;
        // Published only now because the memory variant reads models from the topic's end. The
        // stream thread is still joining its group (about 3 s), so the model, built in
        // milliseconds, is in place before the first record; `unscored` would show otherwise.
        // (as-server reads its models topic from the beginning, so this is merely in time.)
        let sender = Sender::connect(&ctx.brokers, 0)?;
        sender.send(
            &models,
            0,
            Some(ctx.opts.data_type.as_bytes()),
            &ctx.descriptor,
            None,
        )?;
        sender.flush()?;
        progress(&format!(
            "{label}: {} up (pid {}, http {})",
            kind.describe(),
            server.pid(),
            server.http_addr
        ));
        let profiler = match &ctx.opts.perf {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                Some(Profiler::attach(
                    server.pid(),
                    &dir.join(format!("{label}.perf.data")),
                )?)
            }
            None => None,
        };
        Ok(Session {
            server,
            profiler,
            reader,
            spawned,
            cpu_at_first_result: None,
            label: label.to_string(),
            models_topic: models,
        })
    }

    /// Waits until the reader has every expected result, checking the server stays up.
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut next_report = Instant::now() + Duration::from_secs(10);
        while !self.reader.done() {
            if self.cpu_at_first_result.is_none() && self.reader.count.load(Ordering::Relaxed) > 0 {
                self.cpu_at_first_result = self.server.cpu_seconds();
            }
            if let Some(status) = self.server.exit_status() {
                bail!(
                    "{}: the server exited ({status}); log: {}",
                    self.label,
                    self.server.log.display()
                );
            }
            let now = Instant::now();
            if now > deadline {
                bail!(
                    "{}: only {} results within {} s; log: {}",
                    self.label,
                    self.reader.count.load(Ordering::Relaxed),
                    timeout.as_secs(),
                    self.server.log.display()
                );
            }
            if now > next_report {
                progress(&format!(
                    "{}: {} results",
                    self.label,
                    self.reader.count.load(Ordering::Relaxed)
                ));
                next_report = now + Duration::from_secs(10);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops the server; returns what it used and what the reader saw.
    fn close(self) -> Result<Closed> {
        if let Some(p) = self.profiler {
            p.stop();
        }
        let rss_mb = self.server.peak_rss_mb();
        let cpu_s = self.server.cpu_seconds();
        self.server.stop();
        Ok(Closed {
            rss_mb,
            cpu_s,
            outcome: self.reader.finish()?,
            spawned: self.spawned,
            cpu_at_first_result: self.cpu_at_first_result,
        })
    }
}

struct Closed {
    rss_mb: Option<f64>,
    /// The server's CPU time over its whole life (startup included).
    cpu_s: Option<f64>,
    outcome: ReadOutcome,
    spawned: Instant,
    cpu_at_first_result: Option<f64>,
}

impl Closed {
    /// The server's CPU per record, µs: what bounds its rate on a machine the broker shares.
    fn insert_cpu(&self, r: &mut ModeResult) {
        insert_cpu_fields(r, self.cpu_s);
        // Start-up left out: the CPU from the first result on (sampled within the wait
        // loop's 20 ms of it), per record. For a JVM this is most of the difference.
        if let Some(us) = self
            .cpu_at_first_result
            .zip(self.cpu_s)
            .and_then(|(first, cpu)| run_cpu_us_per_record(first, cpu, r.records))
        {
            r.extra
                .insert("run_cpu_us_per_record".into(), Value::from(us));
        }
    }
}

/// `cpu_s` (a process's CPU over its life) and `cpu_us_per_record` over `r.records`.
fn insert_cpu_fields(r: &mut ModeResult, cpu_s: Option<f64>) {
    let Some(cpu) = cpu_s.filter(|c| c.is_finite()) else {
        return;
    };
    r.extra
        .insert("cpu_s".into(), Value::from((cpu * 100.0).round() / 100.0));
    if r.records > 0 {
        let us = cpu * 1e6 / r.records as f64;
        r.extra.insert(
            "cpu_us_per_record".into(),
            Value::from((us * 10.0).round() / 10.0),
        );
    }
}

/// CPU µs per record between the first result (`first_s` of server CPU) and the end (`end_s`),
/// rounded to 0.1 µs; `None` without records or with a clock that went backwards.
fn run_cpu_us_per_record(first_s: f64, end_s: f64, records: u64) -> Option<f64> {
    (records > 0 && end_s >= first_s)
        .then(|| ((end_s - first_s) * 1e6 / records as f64 * 10.0).round() / 10.0)
}

/// One server (`kind`) scoring the preloaded data topic from offset 0: memory, standard, custom,
/// kstreams, as-stage, as-actor.
fn run_server(ctx: &Ctx, mode: &str, label: &str, kind: ServerKind) -> Result<ModeResult> {
    let mut session = Session::open(ctx, label, kind, &ctx.data_topic, ctx.opts.records)?;
    session.wait(Duration::from_secs(ctx.opts.timeout_s))?;
    let closed = session.close()?;
    let (outcome, spawned) = (&closed.outcome, closed.spawned);
    let mut r = ModeResult {
        mode: mode.into(),
        records: outcome.count,
        seconds: outcome.span_s(),
        rate: outcome.sustained_rate(),
        rss_mb: closed.rss_mb,
        ..ModeResult::default()
    };
    closed.insert_cpu(&mut r);
    latency_fields(&mut r, outcome, 0);
    r.extra
        .insert("model".into(), Value::from(ctx.model_name.clone()));
    r.extra
        .insert("unscored".into(), Value::from(outcome.unscored));
    if let Some(first) = outcome.first {
        let startup = first.duration_since(spawned).as_secs_f64();
        r.extra.insert(
            "startup_s".into(),
            Value::from((startup * 10.0).round() / 10.0),
        );
    }
    Ok(r)
}

fn run_state_value(ctx: &Ctx, label: &str) -> Result<ModeResult> {
    let store = ctx.opts.http_store.as_str();
    let kind = ServerKind::KsServer(store.to_string());
    let mut session = Session::open(ctx, label, kind, &ctx.data_topic, ctx.opts.records)?;
    // Load starts with the first result: the server is then scoring at full rate.
    let deadline = Instant::now() + Duration::from_secs(60);
    while session.reader.count.load(Ordering::Relaxed) == 0 {
        if Instant::now() > deadline || session.reader.done() {
            bail!("state_value: no result within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let path = format!("/state/value/{}", ctx.opts.data_type);
    let load = Load::start(
        &session.server.http_addr,
        &path,
        ctx.opts.http_clients,
        ctx.opts.http_rate,
    )?;
    let waited = session.wait(Duration::from_secs(ctx.opts.timeout_s));
    let http = load.finish();
    waited?;
    let closed = session.close()?;
    let outcome = &closed.outcome;
    let mut r = ModeResult {
        mode: "state_value".into(),
        records: outcome.count,
        seconds: outcome.span_s(),
        rate: outcome.sustained_rate(),
        rss_mb: closed.rss_mb,
        ..ModeResult::default()
    };
    closed.insert_cpu(&mut r);
    (r.p50_ms, r.p99_ms) = p50_p99(&http.latencies_ms);
    let requests = http.latencies_ms.len() as u64;
    r.extra.insert("store".into(), Value::from(store));
    r.extra.insert("requests".into(), Value::from(requests));
    r.extra.insert(
        "requests_per_s".into(),
        Value::from((requests as f64 / http.seconds.max(1e-9)).round()),
    );
    r.extra
        .insert("http_errors".into(), Value::from(http.errors));
    r.extra
        .insert("http_clients".into(), Value::from(ctx.opts.http_clients));
    r.extra
        .insert("unscored".into(), Value::from(outcome.unscored));
    Ok(r)
}

/// Warm-up, then `--steady-rate` records/s for `--steady-seconds` into `data_topic`, whose
/// results `count` tracks. Returns how long the paced publishing took.
fn paced_input(
    ctx: &Ctx,
    label: &str,
    data_topic: &str,
    payloads: &[Vec<u8>],
    count: &AtomicU64,
    gone: &mut dyn FnMut() -> bool,
) -> Result<f64> {
    // linger 5 ms, as the engine's producer: with linger 0 every record is a batch of its own,
    // and the local broker serves single-record batches so slowly that even the bare copy falls
    // seconds behind at 2000 records/s (measured: p50 5 s with linger 0, 22 ms with 5).
    let sender = Sender::connect(&ctx.brokers, 5)?;
    // One record per partition, answered once the processor owns every partition and is caught
    // up; their latency holds the group join and is left out.
    for p in 0..DATA_PARTITIONS {
        sender.send(data_topic, p, None, &payloads[0], None)?;
    }
    sender.flush()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) < STEADY_WARM_UP {
        if Instant::now() > deadline || gone() {
            bail!("{label}: the warm-up records were not answered within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    progress(&format!(
        "{label}: {} records/s for {} s",
        ctx.opts.steady_rate, ctx.opts.steady_seconds
    ));
    let total = ctx.opts.steady_rate * ctx.opts.steady_seconds;
    let interval = Duration::from_secs_f64(1.0 / ctx.opts.steady_rate as f64);
    let started = Instant::now();
    for i in 0..total {
        // A fixed schedule: a late send goes at once, so the offered rate stays the asked one.
        let at = started + interval.mul_f64(i as f64);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let payload = &payloads[(i % payloads.len() as u64) as usize];
        sender.send(
            data_topic,
            (i % DATA_PARTITIONS as u64) as i32,
            None,
            payload,
            None,
        )?;
    }
    let publish_s = started.elapsed().as_secs_f64();
    sender.flush()?;
    Ok(publish_s)
}

const STEADY_WARM_UP: u64 = DATA_PARTITIONS as u64;

fn steady_result(mode: &str, ctx: &Ctx, publish_s: f64, outcome: &ReadOutcome) -> ModeResult {
    let mut r = ModeResult {
        mode: mode.into(),
        records: ctx.opts.steady_rate * ctx.opts.steady_seconds,
        seconds: publish_s,
        ..ModeResult::default()
    };
    latency_fields(&mut r, outcome, STEADY_WARM_UP as usize);
    r
}

/// The broker's own latency floor at the steady rate: the passthrough copy of a paced input.
fn run_steady_passthrough(ctx: &Ctx, label: &str, payloads: &[Vec<u8>]) -> Result<ModeResult> {
    let prefix = format!("{}-{label}", ctx.run_id);
    let (data_topic, out_topic) = (format!("{prefix}-data"), format!("{prefix}-results"));
    kafka::create_topics(
        &ctx.brokers,
        &[
            (&data_topic, DATA_PARTITIONS),
            (&out_topic, DATA_PARTITIONS),
        ],
    )?;
    let expected = STEADY_WARM_UP + ctx.opts.steady_rate * ctx.opts.steady_seconds;
    let reader = ResultsReader::start(&ctx.brokers, &out_topic, expected)?;
    let mut copier = Copier::start(&ctx.brokers, &data_topic, &out_topic, expected)?;
    // The copier only exits early when it fails; its error then comes from `finish`.
    let publish_s = paced_input(
        ctx,
        "steady_passthrough",
        &data_topic,
        payloads,
        &reader.count,
        &mut || copier.is_finished(),
    );
    let copy = copier.finish(Duration::from_secs(ctx.opts.timeout_s));
    let publish_s = publish_s?;
    let copy = copy?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader.done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let outcome = reader.finish()?;
    let mut r = steady_result("steady_passthrough", ctx, publish_s, &outcome);
    insert_copier(&mut r, &copy);
    Ok(r)
}

fn run_steady(ctx: &Ctx, label: &str, payloads: &[Vec<u8>]) -> Result<ModeResult> {
    let store = ctx.opts.steady_store.as_str();
    let data_topic = format!("{}-{label}-data", ctx.run_id);
    kafka::create_topics(&ctx.brokers, &[(&data_topic, DATA_PARTITIONS)])?;
    let expected = STEADY_WARM_UP + ctx.opts.steady_rate * ctx.opts.steady_seconds;
    let kind = ServerKind::KsServer(store.to_string());
    let mut session = Session::open(ctx, label, kind, &data_topic, expected)?;
    let publish_s = {
        let reader = &session.reader;
        paced_input(
            ctx,
            "steady",
            &data_topic,
            payloads,
            &reader.count,
            &mut || reader.done(),
        )?
    };
    session.wait(Duration::from_secs(ctx.opts.timeout_s))?;
    let closed = session.close()?;
    let mut r = steady_result("steady", ctx, publish_s, &closed.outcome);
    r.rss_mb = closed.rss_mb;
    insert_cpu_fields(&mut r, closed.cpu_s);
    r.extra.insert("store".into(), Value::from(store));
    r.extra
        .insert("unscored".into(), Value::from(closed.outcome.unscored));
    Ok(r)
}

/// The model files a swap alternates between: the run's model and a second wine model (the
/// linear regression, or the tree when the run's model is that), so consecutive swaps change
/// the model's kind, not only its name.
fn swap_models(ctx: &Ctx) -> Result<[(ModelFile, Vec<u8>); 2]> {
    let data_dir = ctx
        .opts
        .data_dir
        .clone()
        .unwrap_or_else(catalog::default_data_dir);
    let first = ctx
        .opts
        .model
        .clone()
        .unwrap_or_else(|| data_dir.join("winequalityDesisionTreeRegression.pmml"));
    let linear = data_dir.join("winequalityLinearRegression.pmml");
    let second = if first == linear {
        data_dir.join("winequalityDesisionTreeRegression.pmml")
    } else {
        linear
    };
    let load = |path: PathBuf| -> Result<(ModelFile, Vec<u8>)> {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = ModelFile {
            model_type: catalog::model_type_of(&path)?,
            path,
        };
        Ok((file, bytes))
    };
    Ok([load(first)?, load(second)?])
}

/// Publishes swap `n`: the model files alternate, each swap under a name of its own.
fn publish_swap(
    ctx: &Ctx,
    sender: &Sender,
    topic: &str,
    models: &[(ModelFile, Vec<u8>); 2],
    n: u64,
) -> Result<()> {
    let (file, bytes) = &models[(n % 2) as usize];
    let name = swap::swap_name(&file.name(), n);
    let descriptor = ks_proto::ModelDescriptor::with_data(
        &name,
        &format!("swap {n} of ks-bench"),
        &ctx.opts.data_type,
        file.model_type,
        bytes.clone(),
    );
    sender.send(
        topic,
        0,
        Some(ctx.opts.data_type.as_bytes()),
        &descriptor.encode_to_vec(),
        None,
    )?;
    sender.flush()
}

/// ks-server (`--swap-store`) scoring a backlog of `--swap-records` at full rate, with phases of
/// `--swap-phase-s` alternating steady and swapping (see [`swap`]). `records_per_s` is the rate
/// during swaps, `ratio` its share of the steady phases' rate.
fn run_swap(ctx: &Ctx, label: &str, payloads: &[Vec<u8>]) -> Result<ModeResult> {
    let store = ctx.opts.swap_store.as_str();
    let data_topic = format!("{}-{label}-data", ctx.run_id);
    let records = ctx.opts.swap_records;
    kafka::create_topics(&ctx.brokers, &[(&data_topic, DATA_PARTITIONS)])?;
    let t = Instant::now();
    kafka::preload(
        &ctx.brokers,
        &data_topic,
        DATA_PARTITIONS,
        payloads,
        records,
    )?;
    progress(&format!(
        "{label}: preloaded {records} records in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let models = swap_models(ctx)?;
    let phase_s = ctx.opts.swap_phase_s as f64;
    let kind = ServerKind::KsServer(store.to_string());
    let mut session = Session::open_reading(ctx, label, kind, &data_topic, records, true)?;

    // The schedule starts a second after the first result: the server is then at full rate.
    let deadline = Instant::now() + Duration::from_secs(60);
    while session.reader.count.load(Ordering::Relaxed) == 0 {
        if Instant::now() > deadline || session.reader.done() {
            bail!("{label}: no result within 60 s");
        }
        if let Some(status) = session.server.exit_status() {
            bail!("{label}: the server exited ({status})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let origin = session.reader.started;
    let start_s = origin.elapsed().as_secs_f64() + SWAP_WARM_UP_S;
    let sender = Sender::connect(&ctx.brokers, 0)?;
    let mut swaps = 0u64;
    let mut k = 0u64;
    'schedule: loop {
        let p = swap::phase(start_s, phase_s, k);
        // One publish at each whole second of a swapping phase; a steady phase only waits.
        let seconds = if p.swapping { ctx.opts.swap_phase_s } else { 1 };
        for j in 0..seconds {
            let at = origin + Duration::from_secs_f64(p.start_s + j as f64);
            while Instant::now() < at {
                if session.reader.done() {
                    break 'schedule;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if session.reader.done() {
                break 'schedule;
            }
            if p.swapping {
                swaps += 1;
                publish_swap(ctx, &sender, &session.models_topic, &models, swaps)?;
            }
        }
        k += 1;
    }
    session.wait(Duration::from_secs(ctx.opts.timeout_s))?;
    let closed = session.close()?;
    let outcome = &closed.outcome;
    let usable_until = swap::tail_starts_at(&outcome.arrivals_s, report::TRIM).unwrap_or(0.0);
    let tally = swap::tally(&outcome.arrivals_s, start_s, phase_s, usable_until);
    if tally.pairs == 0 {
        bail!(
            "{label}: the backlog of {records} records lasted less than one steady and one \
             swapping phase of {phase_s} s; raise --swap-records"
        );
    }
    let swapped_in = outcome
        .models
        .keys()
        .filter(|m| m.contains("-swap"))
        .count();
    let mut r = ModeResult {
        mode: "swap".into(),
        records: outcome.count,
        seconds: tally.swap_s,
        rate: tally.swap_rate(),
        ratio: tally.ratio().map(|x| (x * 1000.0).round() / 1000.0),
        rss_mb: closed.rss_mb,
        ..ModeResult::default()
    };
    closed.insert_cpu(&mut r);
    latency_fields(&mut r, outcome, 0);
    let round = |x: Option<f64>| x.map(|v| v.round());
    r.extra.insert(
        "steady_records_per_s".into(),
        Value::from(round(tally.steady_rate())),
    );
    r.extra
        .insert("phase_pairs".into(), Value::from(tally.pairs));
    r.extra.insert("phase_s".into(), Value::from(phase_s));
    r.extra.insert("swaps".into(), Value::from(swaps));
    r.extra
        .insert("swapped_in".into(), Value::from(swapped_in as u64));
    r.extra.insert("store".into(), Value::from(store));
    r.extra
        .insert("unscored".into(), Value::from(outcome.unscored));
    Ok(r)
}

/// Seconds from the first result to the swap schedule's start.
const SWAP_WARM_UP_S: f64 = 1.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_cpu_leaves_start_up_out() {
        assert_eq!(run_cpu_us_per_record(8.0, 10.0, 20_000), Some(100.0));
        assert_eq!(run_cpu_us_per_record(1.0, 1.0, 10), Some(0.0));
        assert_eq!(run_cpu_us_per_record(2.0, 1.0, 10), None);
        assert_eq!(run_cpu_us_per_record(0.0, 1.0, 0), None);
    }

    #[test]
    fn only_the_servers_of_the_selected_modes_are_needed() {
        let ks = ServerKind::KsServer("standard".into());
        let stage = ServerKind::AsServer("stage".into());
        let actor = ServerKind::AsServer("actor".into());
        assert!(kinds_of(&["passthrough", "steady_passthrough"]).is_empty());
        assert_eq!(
            kinds_of(&["passthrough", "as-stage", "as-actor"]),
            vec![stage, actor]
        );
        assert_eq!(kinds_of(&["standard"]), vec![ks.clone()]);
        assert_eq!(
            kinds_of(&["passthrough", "kstreams"]),
            vec![ServerKind::KStreams]
        );
        assert_eq!(
            kinds_of(&["state_value", "steady", "swap"]),
            vec![ks.clone(), ks.clone(), ks]
        );
    }
}
