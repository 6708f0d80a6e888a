//! What the end-to-end reliability tests share: brokers (Apache Kafka, single node or a
//! three-node cluster), unique topic names, the workspace binaries run as child processes (so
//! they can be killed with SIGKILL), input preloading, HTTP probes, and the accounting of results
//! against inputs (missing, duplicates) that every test prints.
#![allow(dead_code)]

use ks_client::kafka::{ensure_topics, read_topic, Publisher};
use ks_proto::{Message, ModelDescriptor, ModelType};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TREE: &str = "winequalityDesisionTreeRegression.pmml";
pub const PARTITIONS: i32 = 4;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// A binary of the workspace, built by `cargo test --workspace` next to this test's own
/// directory (`target/<profile>/`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cond()
}

/// One test's topics and application id on a broker.
pub struct Scenario {
    pub bootstrap: String,
    pub data: String,
    pub models: String,
    pub results: String,
    pub errors: String,
    pub app: String,
    pub started: Instant,
}

impl Scenario {
    /// Unique names, and the data (4 partitions) and model topics created on `bootstrap`.
    pub fn new(bootstrap: &str) -> Scenario {
        let _ = env_logger::builder().is_test(true).try_init();
        let s = Scenario {
            bootstrap: bootstrap.to_string(),
            data: unique("data"),
            models: unique("models"),
            results: unique("results"),
            errors: unique("errors"),
            app: unique("app"),
            started: Instant::now(),
        };
        block_on(ensure_topics(
            bootstrap,
            &[(&s.data, PARTITIONS), (&s.models, 1)],
        ))
        .expect("creating the data and model topics");
        s
    }

    pub fn publisher(&self) -> Publisher {
        Publisher::connect(&self.bootstrap).expect("a producer")
    }

    /// Publishes a model file of data/ for data type `wine`.
    pub fn publish_model(&self, file: &str) {
        let bytes = std::fs::read(data_dir().join(file)).expect("the model file");
        let name = file.split('.').next().unwrap_or(file);
        let md = ModelDescriptor::with_data(name, "", "wine", ModelType::Pmml, bytes);
        let p = self.publisher();
        p.send(&self.models, Some(b"wine"), &md.encode_to_vec())
            .expect("sending the model");
        p.flush(Duration::from_secs(30)).expect("the model acked");
    }

    /// Publishes `n` wine records (keyless, so they spread over the partitions).
    pub fn preload(&self, n: usize) {
        let rows =
            ks_client::catalog::wine_records(&data_dir().join("winequality_red.csv"), "wine")
                .expect("the wine data");
        let bytes: Vec<Vec<u8>> = rows.iter().map(|r| r.encode_to_vec()).collect();
        let p = self.publisher();
        for i in 0..n {
            p.send(&self.data, None, &bytes[i % bytes.len()])
                .expect("sending a record");
        }
        p.flush(Duration::from_secs(120))
            .expect("every record acked");
    }

    pub fn spawn_server(&self, store: &str, guarantee: &str, state_dir: &Path) -> ServerProcess {
        ServerProcess::spawn(self, store, guarantee, state_dir)
    }

    /// Every input position of the data topic.
    pub fn inputs(&self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        read_topic(
            &self.bootstrap,
            &self.data,
            true,
            Duration::from_secs(300),
            |m| {
                out.push((m.partition, m.offset));
                true
            },
            &|| false,
        )
        .expect("reading the data topic");
        out
    }

    /// How many results (read_committed) name each input position; results that name no
    /// position count under (-1, -1).
    pub fn results_by_input(&self) -> HashMap<(i32, i64), u32> {
        let mut out: HashMap<(i32, i64), u32> = HashMap::new();
        read_topic(
            &self.bootstrap,
            &self.results,
            true,
            Duration::from_secs(300),
            |m| {
                let v: serde_json::Value =
                    serde_json::from_slice(&m.payload).unwrap_or(serde_json::Value::Null);
                let pos = (
                    v["partition"].as_i64().map_or(-1, |p| p as i32),
                    v["offset"].as_i64().unwrap_or(-1),
                );
                assert!(
                    v["model"].is_string(),
                    "a result without a model: {}",
                    String::from_utf8_lossy(&m.payload)
                );
                *out.entry(pos).or_default() += 1;
                true
            },
            &|| false,
        )
        .expect("reading the results topic");
        out
    }

    /// Compares results with inputs.
    pub fn count(&self) -> Counts {
        let inputs = self.inputs();
        let results = self.results_by_input();
        Counts::of(&inputs, &results, self.started.elapsed())
    }

    /// Counts until no input is missing (results behind an open transaction or a slow commit
    /// arrive a little later) or `timeout` passes, then prints the line CI logs show.
    pub fn final_count(&self, test: &str, broker: &str, timeout: Duration) -> Counts {
        let deadline = Instant::now() + timeout;
        let mut counts = self.count();
        while counts.missing > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(2));
            counts = self.count();
        }
        counts.print(test, broker);
        counts
    }
}

pub struct Counts {
    pub inputs: usize,
    pub results: usize,
    pub missing: usize,
    pub duplicates: usize,
    pub seconds: f64,
}

impl Counts {
    pub fn of(inputs: &[(i32, i64)], results: &HashMap<(i32, i64), u32>, took: Duration) -> Counts {
        let missing = inputs.iter().filter(|k| !results.contains_key(k)).count();
        let total: usize = results.values().map(|n| *n as usize).sum();
        Counts {
            inputs: inputs.len(),
            results: total,
            missing,
            duplicates: total - results.len(),
            seconds: took.as_secs_f64(),
        }
    }

    pub fn print(&self, test: &str, broker: &str) {
        print_counts(&format!(
            "test={test} broker={broker} inputs={} results={} missing={} duplicates={} seconds={:.1}",
            self.inputs, self.results, self.missing, self.duplicates, self.seconds
        ));
    }
}

/// One `COUNTS …` line on the real standard output: the test harness captures `println!` of
/// passing tests, and CI logs must show these figures.
pub fn print_counts(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "COUNTS {line}");
    let _ = out.flush();
}

/// A `ks-server` child process on its own HTTP port, killed on drop.
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl ServerProcess {
    fn spawn(s: &Scenario, store: &str, guarantee: &str, state_dir: &Path) -> ServerProcess {
        let port = ks_broker::free_port().expect("a free port");
        let log = std::env::temp_dir().join(format!("{}-{port}.log", s.app));
        let out = std::fs::File::create(&log).expect("the server log");
        let err = out.try_clone().expect("the server log");
        // At-least-once commits every second here (Kafka Streams' 30 s would make every kill
        // replay half a minute); exactly-once keeps its 100 ms default.
        let mut cmd = Command::new(workspace_bin("ks-server"));
        cmd.args(["--store", store, "--processing-guarantee", guarantee])
            .args(["--brokers", &s.bootstrap, "--application-id", &s.app])
            .args(["--port", &port.to_string(), "--session-timeout-ms", "6000"])
            .args(["--data-topic", &s.data, "--models-topic", &s.models])
            .args(["--results-topic", &s.results, "--errors-topic", &s.errors])
            .arg("--state-dir")
            .arg(state_dir)
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if guarantee == "at_least_once" {
            cmd.args(["--commit-interval-ms", "1000"]);
        }
        let child = cmd.spawn().expect("spawning ks-server");
        ServerProcess { child, port, log }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET path` on this server: status and JSON body (None when it does not answer).
    pub fn get(&self, path: &str) -> Option<(u16, serde_json::Value)> {
        http_get(self.port, path)
    }

    /// The merged usage count of the wine model, 0 until there is one.
    pub fn usage(&self) -> u64 {
        self.get("/state/value")
            .and_then(|(status, v)| (status == 200).then(|| v["usage"].as_u64()).flatten())
            .unwrap_or(0)
    }

    /// Records this process has taken in since it started (`ks_records_total` of /metrics).
    pub fn records_seen(&self) -> u64 {
        let Some((200, serde_json::Value::String(text))) = self.get("/metrics") else {
            return 0;
        };
        text.lines()
            .find_map(|l| l.strip_prefix("ks_records_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until this process has taken in `n` records.
    pub fn wait_records_seen(&mut self, n: u64, timeout: Duration) -> u64 {
        self.wait_for("records taken in", n, timeout, Self::records_seen)
    }

    /// Waits until usage reaches `n`.
    pub fn wait_usage(&mut self, n: u64, timeout: Duration) -> u64 {
        self.wait_for("usage", n, timeout, Self::usage)
    }

    /// Waits until `measure` reaches `n`; fails the test with the server's log tail if the
    /// server exits or `timeout` passes.
    fn wait_for(
        &mut self,
        what: &str,
        n: u64,
        timeout: Duration,
        measure: fn(&Self) -> u64,
    ) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let got = measure(self);
            if got >= n {
                return got;
            }
            assert!(
                self.is_running(),
                "ks-server exited; log:\n{}",
                self.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "{what} {got} < {n} after {timeout:?}; log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn http_get(port: u16, path: &str) -> Option<(u16, serde_json::Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .ok()?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().ok()?;
    Some((
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    ))
}

/// The leader of `topic[partition]` as the cluster reports it.
pub fn leader_of(bootstrap: &str, topic: &str, partition: i32) -> Option<i32> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let p = t.partitions().iter().find(|p| p.id() == partition)?;
    (p.leader() >= 0).then_some(p.leader())
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// The kill -9 scenario of one ks-server variant on Apache Kafka: `inputs` records and a model
/// preloaded, the server killed with SIGKILL at three points of the stream (by its usage count)
/// and restarted on the same state dir each time, then run to the end. Returns the counts and
/// the final usage.
pub fn kill_three_times(test: &str, store: &str, guarantee: &str, inputs: usize) -> (Counts, u64) {
    let broker = ks_broker::Broker::kafka().expect("an Apache Kafka broker");
    let s = Scenario::new(broker.bootstrap_servers());
    s.publish_model(TREE);
    s.preload(inputs);
    let dir = tempfile::tempdir().expect("a state dir");
    let n = inputs as u64;
    // Each incarnation is killed after taking in a different number of records.
    for (i, at) in [n / 7, n / 5, n / 4].into_iter().enumerate() {
        let mut server = s.spawn_server(store, guarantee, dir.path());
        let seen = server.wait_records_seen(at, Duration::from_secs(600));
        server.kill9();
        println!("{test}: kill {} after {seen} records in", i + 1);
    }
    let mut server = s.spawn_server(store, guarantee, dir.path());
    let usage = server.wait_usage(n, Duration::from_secs(600));
    // Every input has a result once the committed results cover them all.
    let counts = s.final_count(test, "kafka", Duration::from_secs(120));
    // Usage as the stores hold it after the last commit.
    std::thread::sleep(Duration::from_millis(1500));
    let usage = server.usage().max(usage);
    println!("{test}: final usage {usage}");
    assert!(server.is_running(), "log:\n{}", server.log_tail());
    (counts, usage)
}
