//! `ks-server --config FILE` on Apache Kafka with a SASL/PLAIN listener: the file's security
//! properties reach every client (right credentials serve records; wrong ones fail at start
//! with the broker's reason and no retry storm), flags and environment override the file, and
//! an unknown key is an error naming it.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_broker::{Broker, BrokerKind, BrokerOptions};
use ks_client::kafka::Publisher;
use ks_topologies::topology::Topics;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USERS: [(&str, &str); 2] = [("admin", "admin-secret"), ("alice", "alice-secret")];

fn sasl_broker() -> Broker {
    Broker::start(
        BrokerKind::Kafka,
        BrokerOptions {
            sasl_plain_users: USERS
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            ..BrokerOptions::default()
        },
    )
    .unwrap()
}

fn write_config(dir: &Path, env: &Env, sasl: &str, password: &str) -> std::path::PathBuf {
    let t = &env.topics;
    let text = format!(
        "# Kafka Streams names\n\
         application.id={app}\n\
         bootstrap.servers={sasl}\n\
         # overridden by KS_THREADS in the environment (0 would be refused)\n\
         num.stream.threads=0\n\
         processing.guarantee=at_least_once\n\
         state.dir={state}\n\
         commit.interval.ms=200\n\
         session.timeout.ms=6000\n\
         num.standby.replicas=0\n\
         cache.max.bytes.buffering=10485760\n\
         # overridden by --port 0 (port 1 cannot be bound)\n\
         ks.http.port=1\n\
         ks.topic.data={data}\n\
         ks.topic.models={models}\n\
         ks.topic.results={results}\n\
         ks.topic.errors={errors}\n\
         # passed through to librdkafka, every client\n\
         security.protocol=SASL_PLAINTEXT\n\
         sasl.mechanism=PLAIN\n\
         sasl.username=alice\n\
         sasl.password={password}\n\
         # one kind of client only\n\
         consumer.fetch.wait.max.ms=100\n\
         producer.linger.ms=5\n\
         admin.socket.timeout.ms=10000\n",
        app = env.app,
        state = dir.join("state").display(),
        data = t.data,
        models = t.models,
        results = t.results,
        errors = t.errors,
    );
    let path = dir.join("ks-server.properties");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn_server(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ks-server"))
        .args(["--config"])
        .arg(config)
        .args(["--port", "0"])
        .env("KS_THREADS", "1")
        .env_remove("KS_BROKERS")
        .env_remove("KS_APPLICATION_ID")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The address the server prints once it serves.
fn wait_running(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().unwrap().unwrap();
    // Keep draining so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let rest = line
        .split("http://")
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"));
    rest.split('/').next().unwrap().to_string()
}

fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(ks_topologies::http::get(addr, path)) {
        Ok((status, body)) => (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        ),
        Err(e) => (0, serde_json::Value::String(e.to_string())),
    }
}

fn failed_authentications(broker: &Broker) -> usize {
    std::fs::read_to_string(broker.log_path())
        .unwrap_or_default()
        .matches("Failed authentication")
        .count()
}

#[test]
fn right_credentials_serve_and_wrong_ones_fail_at_start_without_retrying() {
    let _ = env_logger::builder().is_test(true).try_init();
    let broker = sasl_broker();
    let sasl = broker.sasl_bootstrap_servers().unwrap();
    // The test itself publishes over the PLAINTEXT listener; the server only has SASL.
    let publisher = Publisher::connect(broker.bootstrap_servers()).unwrap();
    let env = Env {
        topics: Topics {
            data: unique("data"),
            models: unique("models"),
            results: unique("results"),
            errors: unique("errors"),
        },
        app: unique("app"),
        broker,
        publisher,
    };
    let dir = tempfile::tempdir().unwrap();

    // Wrong password: a clear error at start, the broker's reason, and no retry storm.
    let before = failed_authentications(&env.broker);
    let bad = write_config(dir.path(), &env, &sasl, "not-her-password");
    let mut child = spawn_server(&bad);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ks-server kept running with wrong credentials"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("authentication with") && stderr.contains(&sasl),
        "{stderr}"
    );
    assert!(stderr.contains("Invalid username or password"), "{stderr}");
    // librdkafka may try each bootstrap connection once or twice before the check gives up;
    // a retry storm would be dozens.
    std::thread::sleep(Duration::from_secs(2));
    let attempts = failed_authentications(&env.broker) - before;
    assert!(
        (1..=4).contains(&attempts),
        "{attempts} failed authentications"
    );
    println!(
        "wrong credentials: exit {status} after {:?}, {attempts} failed authentication(s) on the broker: {}",
        started.elapsed(),
        stderr.lines().last().unwrap_or("")
    );

    // Right password: serves records read over SASL.
    let good = write_config(dir.path(), &env, &sasl, "alice-secret");
    let mut child = spawn_server(&good);
    let addr = wait_running(&mut child);
    let name = env.publish_model("winequalityDecisionTreeClassification.pmml");
    assert!(
        wait_until(Duration::from_secs(60), || {
            get(&addr, "/models").1.to_string().contains(&name)
        }),
        "the model never arrived over SASL"
    );
    env.publish_records(0, 20);
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (status, stats) = get(&addr, "/state/value");
            status == 200 && stats["usage"].as_u64().unwrap_or(0) >= 20
        }),
        "records were not scored over SASL: {:?}",
        get(&addr, "/state/value")
    );
    println!("right credentials: model {name} served and 20 records scored at {addr}");
    // SIGTERM: a clean stop.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.properties");
    std::fs::write(
        &path,
        "application.id=x\nsecurity.protocol=SASL_PLAINTEXT\nnum.stream.thread=2\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ks-server"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(":3: unknown or invalid property `num.stream.thread`"),
        "{stderr}"
    );
    // A bad value of one of ks-server's own keys names the key too.
    std::fs::write(&path, "num.stream.threads=many\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ks-server"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`num.stream.threads`: bad value"),
        "{stderr}"
    );
}

#[test]
fn log_format_json_writes_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    // An unreachable broker: the start-up check runs (and logs) before failing.
    let out = Command::new(env!("CARGO_BIN_EXE_ks-server"))
        .args([
            "--log-format",
            "json",
            "--brokers",
            "127.0.0.1:1",
            "--port",
            "0",
        ])
        .env("RUST_LOG", "debug")
        .env("KS_STATE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logged: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!logged.is_empty(), "{stderr}");
    for l in &logged {
        assert!(
            l["level"].is_string() && l["msg"].is_string() && l["ts"].is_i64(),
            "{l}"
        );
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_ks-server"))
        .args(["--log-format", "yaml"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
