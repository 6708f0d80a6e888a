//! Shared scenario: a broker, unique topics, as-server in process or as a subprocess,
//! publishing through ks-client, reading topics back, expected scores from ks-models.
#![allow(dead_code)]

use ks_client::kafka::{read_topic, Publisher, ReadMessage};
use ks_models::Model;
use ks_proto::{Message, ModelDescriptor, ModelType, WineRecord};
use ks_reactive::server::{Config, Mode};
use ks_serving::{ScoreResult, Topics};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

pub const TREE: &str = "winequalityDecisionTreeClassification.pmml";
pub const LINEAR: &str = "winequalityLinearRegression.pmml";

pub struct Env {
    pub broker: ks_broker::Broker,
    pub topics: Topics,
    pub group: String,
    pub publisher: Publisher,
}

impl Env {
    pub fn new() -> Env {
        Env::with_result_partitions(1)
    }

    /// A data topic of 2 partitions and a results topic of `results` partitions.
    pub fn with_result_partitions(results: i32) -> Env {
        let _ = env_logger::builder().is_test(true).try_init();
        let broker = ks_broker::Broker::tansu().unwrap();
        let publisher = Publisher::connect(broker.bootstrap_servers()).unwrap();
        let topics = Topics {
            data: unique("data"),
            models: unique("models"),
            results: unique("results"),
            errors: unique("errors"),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(ks_client::kafka::ensure_topics(
            broker.bootstrap_servers(),
            &[
                (topics.data.as_str(), 2),
                (topics.models.as_str(), 1),
                (topics.results.as_str(), results),
                (topics.errors.as_str(), 1),
            ],
        ))
        .unwrap();
        Env {
            topics,
            group: unique("group"),
            broker,
            publisher,
        }
    }

    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    pub fn config(&self, mode: Mode, state_dir: &Path) -> Config {
        let mut c = Config::new(mode, self.bootstrap());
        c.port = 0;
        c.state_dir = state_dir.to_path_buf();
        c.topics = self.topics.clone();
        c.group_id = self.group.clone();
        c.session_timeout = Duration::from_secs(6);
        c.commit_interval = Duration::from_millis(200);
        c
    }

    /// Starts the as-server binary; returns it and its HTTP address.
    pub fn spawn(&self, mode: &str, state_dir: &Path, extra: &[&str]) -> (Child, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_as-server"))
            .args(["--mode", mode, "--port", "0", "--brokers", self.bootstrap()])
            .args([
                "--session-timeout-ms",
                "6000",
                "--commit-interval-ms",
                "200",
            ])
            .args(["--group-id", &self.group])
            .arg("--state-dir")
            .arg(state_dir)
            .args(["--data-topic", &self.topics.data])
            .args(["--models-topic", &self.topics.models])
            .args(["--results-topic", &self.topics.results])
            .args(["--errors-topic", &self.topics.errors])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(!addr.is_empty(), "no address in {line:?}");
        (child, addr)
    }

    /// Publishes model file `file` of data/ under data type `wine`; returns its name.
    pub fn publish_model(&self, file: &str) -> String {
        let model_type = if file.ends_with(".pb") {
            ModelType::Tensorflow
        } else {
            ModelType::Pmml
        };
        let name = Path::new(file)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let md = ModelDescriptor::with_data(
            &name,
            &format!("{name} model"),
            "wine",
            model_type,
            std::fs::read(data_dir().join(file)).unwrap(),
        );
        self.publisher
            .send(&self.topics.models, Some(b"wine"), &md.encode_to_vec())
            .unwrap();
        self.publisher.flush(Duration::from_secs(10)).unwrap();
        name
    }

    /// Publishes rows `from..from+n` of the wine CSV (keyless).
    pub fn publish_records(&self, from: usize, n: usize) {
        let rows = wine_rows();
        for i in from..from + n {
            let r = &rows[i % rows.len()];
            self.publisher
                .send(&self.topics.data, None, &r.encode_to_vec())
                .unwrap();
        }
        self.publisher.flush(Duration::from_secs(30)).unwrap();
    }

    /// Rows `from..from+n`, row `i` keyed `i` and sent to data partition `i % 2`.
    pub fn publish_keyed_records(&self, from: usize, n: usize) {
        let rows = wine_rows();
        for i in from..from + n {
            let r = &rows[i % rows.len()];
            self.publisher
                .send_to_partition(
                    &self.topics.data,
                    (i % 2) as i32,
                    Some(i.to_string().as_bytes()),
                    &r.encode_to_vec(),
                )
                .unwrap();
        }
        self.publisher.flush(Duration::from_secs(30)).unwrap();
    }

    pub fn publish_raw_data(&self, payload: &[u8]) {
        self.publisher
            .send(&self.topics.data, None, payload)
            .unwrap();
        self.publisher.flush(Duration::from_secs(10)).unwrap();
    }

    pub fn read(&self, topic: &str) -> Vec<ReadMessage> {
        let mut out = Vec::new();
        read_topic(
            self.bootstrap(),
            topic,
            true,
            Duration::from_secs(30),
            |m| {
                out.push(m);
                true
            },
            &|| false,
        )
        .unwrap();
        out
    }

    pub fn results(&self) -> Vec<ScoreResult> {
        self.read(&self.topics.results)
            .iter()
            .map(|m| serde_json::from_slice(&m.payload).unwrap())
            .collect()
    }

    /// Waits until the results topic holds at least `n` results and returns them.
    pub fn wait_results(&self, n: usize, timeout: Duration) -> Vec<ScoreResult> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.results();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The data records by (partition, offset).
    pub fn data_by_position(&self) -> HashMap<(i32, i64), WineRecord> {
        self.read(&self.topics.data)
            .into_iter()
            .filter_map(|m| {
                WineRecord::decode(m.payload.as_slice())
                    .ok()
                    .map(|w| ((m.partition, m.offset), w))
            })
            .collect()
    }

    /// Checks every scored result against ks-models on the same record.
    pub fn check_results(&self, results: &[ScoreResult], file: &str) {
        let model = model(file);
        let data = self.data_by_position();
        for r in results {
            let wine = &data[&(r.partition, r.offset)];
            assert_eq!(r.prediction, expected_prediction(&model, wine), "{r:?}");
        }
    }
}

pub fn wine_rows() -> Vec<WineRecord> {
    ks_client::catalog::wine_records(&data_dir().join("winequality_red.csv"), "wine").unwrap()
}

pub fn model(file: &str) -> Model {
    let t = if file.ends_with(".pb") {
        ModelType::Tensorflow
    } else {
        ModelType::Pmml
    };
    Model::from_bytes(t, &std::fs::read(data_dir().join(file)).unwrap()).unwrap()
}

/// What ks-score gives for `record` with `model`: the primary prediction as JSON.
pub fn expected_prediction(model: &Model, record: &WineRecord) -> serde_json::Value {
    let p = model.score(&ks_models::Record::from_wine(record)).unwrap();
    ks_serving::value_json(p.value())
}

pub fn http_get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent.get(&format!("http://{addr}{path}")).call().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (status, json)
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
