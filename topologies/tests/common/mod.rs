//! Shared scenario for the server tests: a broker, unique topics, a server on a free port,
//! publishing through ks-client's library, reading topics back.
#![allow(dead_code)]

use ks_client::kafka::{read_topic, Publisher, ReadMessage};
use ks_models::Model;
use ks_proto::{Message, ModelDescriptor, ModelType, WineRecord};
use ks_serving::ScoreResult;
use ks_topologies::server::{Server, ServerConfig};
use ks_topologies::topology::{StoreVariant, Topics};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

pub struct Env {
    pub broker: ks_broker::Broker,
    pub topics: Topics,
    pub app: String,
    pub publisher: Publisher,
}

impl Env {
    pub fn new() -> Env {
        let _ = env_logger::builder().is_test(true).try_init();
        let broker = ks_broker::Broker::tansu().unwrap();
        let publisher = Publisher::connect(broker.bootstrap_servers()).unwrap();
        Env {
            topics: Topics {
                data: unique("data"),
                models: unique("models"),
                results: unique("results"),
                errors: unique("errors"),
            },
            app: unique("app"),
            broker,
            publisher,
        }
    }

    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    pub fn config(&self, store: StoreVariant, state_dir: &Path) -> ServerConfig {
        let mut c = ServerConfig::new(store, self.bootstrap());
        c.application_id = self.app.clone();
        c.port = 0;
        c.state_dir = state_dir.to_path_buf();
        c.topics = self.topics.clone();
        c.commit_interval = Some(Duration::from_millis(200));
        c.session_timeout = Duration::from_secs(6);
        c
    }

    pub fn start(&self, store: StoreVariant, state_dir: &Path) -> Server {
        Server::start(self.config(store, state_dir)).unwrap()
    }

    /// Publishes model file `file` of data/ under data type `wine`; returns its name.
    pub fn publish_model(&self, file: &str) -> String {
        let path = data_dir().join(file);
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
            std::fs::read(path).unwrap(),
        );
        self.publish_raw_model(&md.encode_to_vec());
        name
    }

    pub fn publish_raw_model(&self, bytes: &[u8]) {
        self.publisher
            .send(&self.topics.models, Some(b"wine"), bytes)
            .unwrap();
        self.publisher.flush(Duration::from_secs(10)).unwrap();
    }

    /// Publishes rows `from..from+n` of the wine CSV (keyless, so they spread over partitions).
    pub fn publish_records(&self, from: usize, n: usize) {
        let rows = wine_rows();
        for i in from..from + n {
            let r = &rows[i % rows.len()];
            // Round-robin over the server's data partitions (ServerConfig's default, 4): the
            // sticky partitioner may put a whole keyless batch in one partition.
            self.publisher
                .send_to_partition(&self.topics.data, (i % 4) as i32, None, &r.encode_to_vec())
                .unwrap();
        }
        self.publisher.flush(Duration::from_secs(10)).unwrap();
    }

    /// As `publish_records`, each record keyed by its index, so the records spread over the
    /// data topic's partitions by key hash (unkeyed records may all stick to one partition).
    #[allow(dead_code)] // not every test binary sharing this module uses it
    pub fn publish_keyed_records(&self, from: usize, n: usize) {
        let rows = wine_rows();
        for i in from..from + n {
            let r = &rows[i % rows.len()];
            self.publisher
                .send(
                    &self.topics.data,
                    Some(i.to_string().as_bytes()),
                    &r.encode_to_vec(),
                )
                .unwrap();
        }
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

    /// The data records by (partition, offset), as the server saw them.
    pub fn data_by_position(&self) -> HashMap<(i32, i64), WineRecord> {
        self.read(&self.topics.data)
            .into_iter()
            .map(|m| {
                (
                    (m.partition, m.offset),
                    WineRecord::decode(m.payload.as_slice()).unwrap(),
                )
            })
            .collect()
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

pub fn http_get(server: &Server, path: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = rt
        .block_on(ks_topologies::http::get(server.http_addr(), path))
        .unwrap();
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

/// The full single-server scenario, the same for every store: returns the env, the server and
/// how many records it scored, for restart checks.
pub fn serve_and_check(store: StoreVariant, state_dir: &Path) -> (Env, Server, u64) {
    let env = Env::new();
    let server = env.start(store, state_dir);

    // Before any model: "no model" results.
    env.publish_records(0, 5);
    let early = env.wait_results(5, Duration::from_secs(60));
    assert_eq!(early.len(), 5);
    assert!(early
        .iter()
        .all(|r| r.model.is_none() && r.error.as_deref() == Some("no model")));

    // A model arrives and is built; /models lists it.
    let file = "winequalityDesisionTreeRegression.pmml";
    let name = env.publish_model(file);
    assert!(wait_until(Duration::from_secs(30), || {
        let (status, models) = http_get(&server, "/models");
        status == 200
            && models
                .as_array()
                .is_some_and(|a| a.iter().any(|m| m["name"] == name.as_str()))
    }));

    // Every record is scored by it, exactly as ks-score scores the same row.
    env.publish_records(5, 100);
    let results = env.wait_results(105, Duration::from_secs(60));
    assert_eq!(results.len(), 105);
    let data = env.data_by_position();
    let reference = model(file);
    let scored: Vec<&ScoreResult> = results.iter().filter(|r| r.model.is_some()).collect();
    assert_eq!(scored.len(), 100);
    for r in &scored {
        assert_eq!(r.model.as_deref(), Some(name.as_str()));
        let input = &data[&(r.partition, r.offset)];
        assert_eq!(
            r.prediction,
            expected_prediction(&reference, input),
            "record {}:{}",
            r.partition,
            r.offset
        );
        assert!(r.duration_us.is_some_and(|d| d > 0.0));
    }

    // Results spread as the input does: each in its input's partition (the results topic has
    // as many as the data topic), keeping the input's key (none: the records are keyless).
    let messages = env.read(&env.topics.results);
    let mut used = std::collections::BTreeSet::new();
    for m in &messages {
        let r: ScoreResult = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            m.partition, r.partition,
            "result of {}:{}",
            r.partition, r.offset
        );
        assert_eq!(m.key, None);
        used.insert(m.partition);
    }
    assert!(used.len() > 1, "every result in partitions {used:?}");

    // /state/value: the model and the right usage count (statistics flush within a second).
    let usage_is = |n: u64| {
        let (status, v) = http_get(&server, "/state/value");
        status == 200 && v["name"] == name.as_str() && v["usage"] == n
    };
    assert!(
        wait_until(Duration::from_secs(10), || usage_is(100)),
        "{:?}",
        http_get(&server, "/state/value")
    );
    let (_, v) = http_get(&server, "/state/value/wine");
    assert_eq!(v["description"], format!("{name} model"));
    assert!(v["min"].as_f64().unwrap() > 0.0 && v["min"].as_f64() <= v["max"].as_f64());
    let (status, err) = http_get(&server, "/state/value/beer");
    assert_eq!(status, 404);
    assert!(err["error"].is_string());

    // /state/instances: this instance with every data partition.
    let (status, instances) = http_get(&server, "/state/instances");
    assert_eq!(status, 200);
    let list = instances.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["port"], server.http_addr().port());
    assert_eq!(list[0]["partitions"].as_array().unwrap().len(), 4);

    // Bad data and a bad model go to the errors topic; the model keeps serving.
    env.publisher
        .send(&env.topics.data, None, b"\xff\xfe not protobuf")
        .unwrap();
    env.publish_raw_model(
        &ModelDescriptor::with_data(
            "broken",
            "",
            "wine",
            ModelType::Pmml,
            b"<PMML><oops".to_vec(),
        )
        .encode_to_vec(),
    );
    env.publish_records(105, 10);
    let results = env.wait_results(115, Duration::from_secs(60));
    assert_eq!(
        results
            .iter()
            .filter(|r| r.model.as_deref() == Some(name.as_str()))
            .count(),
        110
    );
    assert!(wait_until(Duration::from_secs(20), || env
        .read(&env.topics.errors)
        .len()
        >= 2));
    let errors = env.read(&env.topics.errors);
    let reason = |m: &ReadMessage| String::from_utf8_lossy(&m.payload).into_owned();
    assert!(
        errors.iter().any(|m| reason(m).contains("broken")),
        "a model error names the model"
    );
    assert!(
        errors.iter().any(|m| m.payload.starts_with(b"\xff\xfe")),
        "the bad record itself is kept"
    );
    assert!(wait_until(Duration::from_secs(10), || usage_is(110)));
    let (status, metrics) = http_get(&server, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("ks_scores_total 110")),
        "{metrics}"
    );
    (env, server, 110)
}

/// A persistent variant comes back with the model and its statistics without the model being
/// sent again, and goes on counting.
pub fn restart_keeps_model_and_stats(env: &Env, store: StoreVariant, dir: &Path, scored: u64) {
    let server = env.start(store, dir);
    let back = wait_until(Duration::from_secs(30), || {
        let (status, v) = http_get(&server, "/state/value");
        status == 200 && v["usage"] == scored && v["name"] == "winequalityDesisionTreeRegression"
    });
    assert!(back, "{:?}", http_get(&server, "/state/value"));
    assert!(wait_until(Duration::from_secs(30), || {
        http_get(&server, "/models")
            .1
            .as_array()
            .is_some_and(|a| a.len() == 1)
    }));
    env.publish_records(200, 10);
    assert!(wait_until(Duration::from_secs(30), || http_get(
        &server,
        "/state/value"
    )
    .1["usage"]
        == scored + 10));
    server.shutdown().unwrap();
}
