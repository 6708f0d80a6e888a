//! The HTTP API over real sockets, against a fake `ServingQueries`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_serving::ServingStats;
use ks_topologies::http::{self, get, render_metrics, Route, RouteError};
use ks_topologies::queries::{
    Health, InstanceInfo, MetricsSnapshot, ModelInfo, ServingQueries, TaskMetrics,
};
use ks_topologies::Error;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Fake {
    stats: HashMap<String, ServingStats>,
    /// Set after binding, since peers' ports are only known then.
    instances: Mutex<Vec<InstanceInfo>>,
    healthy: bool,
    /// Rebalancing or restoring: no state query is answered.
    restoring: bool,
    /// How far behind the fake's standby copies are (`None`: it holds no copy of some task).
    standby_lag: Option<u64>,
    metrics: MetricsSnapshot,
}

impl ServingQueries for Fake {
    fn queryable(&self) -> bool {
        !self.restoring
    }
    fn local_stats(&self, data_type: &str) -> Option<ServingStats> {
        self.stats.get(data_type).cloned()
    }
    fn stale_stats(&self, data_type: &str, max_lag: u64) -> Option<Option<ServingStats>> {
        self.standby_lag
            .filter(|lag| *lag <= max_lag)
            .map(|_| self.stats.get(data_type).cloned())
    }
    fn instances(&self) -> Vec<InstanceInfo> {
        self.instances.lock().map(|i| i.clone()).unwrap_or_default()
    }
    fn models(&self) -> Vec<ModelInfo> {
        vec![ModelInfo {
            data_type: "wine".into(),
            name: "tree".into(),
            description: "a decision tree".into(),
            model_type: "PMML".into(),
            version: "0:1".into(),
            loaded: 1_700_000_000_000,
            inputs: vec!["fixed acidity".into()],
            outputs: vec!["quality".into()],
        }]
    }
    fn health(&self) -> Health {
        Health {
            healthy: self.healthy,
            state: if self.healthy {
                "Running".into()
            } else {
                "Error(broker down)".into()
            },
            broker: "reachable".into(),
        }
    }
    fn metrics(&self) -> MetricsSnapshot {
        self.metrics.clone()
    }
}

fn stats(usage: u64, each_micros: f64) -> ServingStats {
    let mut s = ServingStats::new("tree", "a decision tree", "PMML", "0:1", 1000);
    for _ in 0..usage {
        s.record(each_micros);
    }
    s
}

fn instance(id: &str, port: u16, local: bool) -> InstanceInfo {
    InstanceInfo {
        instance_id: id.into(),
        host: "127.0.0.1".into(),
        port,
        stores: vec!["stats".into()],
        partitions: vec![("data".into(), 0)],
        local,
        standby_partitions: vec![],
    }
}

fn fake_with(stats_of: &[(&str, ServingStats)]) -> Fake {
    Fake {
        stats: stats_of
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        healthy: true,
        metrics: MetricsSnapshot {
            records: 50,
            scores: 42,
            no_model: 3,
            batched_scores: 9,
            errors: 5,
            models_loaded: 2,
            latency_buckets: vec![(0.001, 10), (0.01, 30), (0.1, 41), (f64::INFINITY, 42)],
            latency_sum_seconds: 0.25,
            latency_count: 42,
            lag: Some(7),
            tasks: Vec::new(),
        },
        ..Fake::default()
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("server stops")
            .expect("server task ends cleanly");
    }
}

async fn start(queries: Arc<dyn ServingQueries>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let (addr, task) = http::serve(queries, "127.0.0.1:0".parse().unwrap(), async move {
        let _ = stopped.await;
    })
    .await
    .expect("binds");
    assert_ne!(addr.port(), 0, "the real port is returned");
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

async fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = get(addr, path).await.expect("request succeeds");
    let json =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
    (status, json)
}

/// Status, headers (lower-cased names) and body of a raw request, for what `get` hides.
async fn raw_request(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn routes_parse() {
    let value = |dt: &str, local_only| Route::StateValue {
        data_type: dt.into(),
        local_only,
        max_lag: None,
    };
    assert_eq!(
        Route::parse("GET", "/state/value/wine", Some("max_lag=100&local=true")),
        Ok(Route::StateValue {
            data_type: "wine".into(),
            local_only: true,
            max_lag: Some(100),
        })
    );
    assert!(matches!(
        Route::parse("GET", "/state/value", Some("max_lag=-1")),
        Err(RouteError { status: 400, .. })
    ));
    assert_eq!(
        Route::parse("GET", "/state/value", None),
        Ok(value("wine", false))
    );
    assert_eq!(
        Route::parse("GET", "/state/value/beer", Some("local=true")),
        Ok(value("beer", true))
    );
    assert_eq!(
        Route::parse("GET", "/state/value/red%20wine", Some("x=1&local=false")),
        Ok(value("red wine", false))
    );
    assert_eq!(
        Route::parse("GET", "/state/instances", None),
        Ok(Route::Instances)
    );
    assert_eq!(Route::parse("GET", "/models", None), Ok(Route::Models));
    assert_eq!(Route::parse("GET", "/health", None), Ok(Route::Health));
    assert_eq!(Route::parse("GET", "/metrics", None), Ok(Route::Metrics));
    assert!(matches!(
        Route::parse("GET", "/nope", None),
        Err(RouteError { status: 404, .. })
    ));
    assert!(matches!(
        Route::parse("GET", "/state/value/a/b", None),
        Err(RouteError { status: 404, .. })
    ));
    assert!(matches!(
        Route::parse("GET", "", None),
        Err(RouteError { status: 404, .. })
    ));
    assert!(matches!(
        Route::parse("POST", "/models", None),
        Err(RouteError { status: 405, .. })
    ));
    assert!(matches!(
        Route::parse("DELETE", "/nope", None),
        Err(RouteError { status: 404, .. })
    ));
    for bad in [
        "/state/value/",
        "/state/value/%",
        "/state/value/%4",
        "/state/value/%zz",
        "/state/value/%C3%28",
    ] {
        assert!(
            matches!(
                Route::parse("GET", bad, None),
                Err(RouteError { status: 400, .. })
            ),
            "{bad}"
        );
    }
    let longest = "a".repeat(256);
    assert_eq!(
        Route::parse("GET", &format!("/state/value/{longest}"), None),
        Ok(value(&longest, false))
    );
    let too_long = "a".repeat(257);
    assert!(matches!(
        Route::parse("GET", &format!("/state/value/{too_long}"), None),
        Err(RouteError { status: 400, .. })
    ));
}

#[tokio::test]
async fn every_route_answers() {
    let fake = fake_with(&[("wine", stats(4, 10.0)), ("red wine", stats(1, 3.0))]);
    *fake.instances.lock().unwrap() = vec![instance("me", 1, true)];
    let server = start(Arc::new(fake)).await;
    let addr = server.addr;

    let (status, v) = get_json(addr, "/state/value").await;
    assert_eq!(status, 200);
    assert_eq!(v["name"], "tree");
    assert_eq!(v["description"], "a decision tree");
    assert_eq!(v["model_type"], "PMML");
    assert_eq!(v["version"], "0:1");
    assert_eq!(v["since"], 1000);
    assert_eq!(v["usage"], 4);
    assert_eq!(v["duration"], 40.0);
    assert_eq!(v["min"], 10.0);
    assert_eq!(v["max"], 10.0);
    assert_eq!(v["mean"], 10.0);
    assert!(
        v.get("unreachable").is_none(),
        "complete answers carry no unreachable list: {v}"
    );

    let (status, v) = get_json(addr, "/state/value/wine?local=true").await;
    assert_eq!((status, &v["usage"]), (200, &Value::from(4)));

    let (status, v) = get_json(addr, "/state/value/red%20wine").await;
    assert_eq!(
        (status, &v["usage"], &v["mean"]),
        (200, &Value::from(1), &Value::from(3.0))
    );

    let (status, v) = get_json(addr, "/state/instances").await;
    assert_eq!(status, 200);
    let instances: Vec<InstanceInfo> = serde_json::from_value(v).unwrap();
    assert_eq!(instances, vec![instance("me", 1, true)]);

    let (status, v) = get_json(addr, "/models").await;
    assert_eq!(status, 200);
    let models: Vec<ModelInfo> = serde_json::from_value(v).unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(
        (models[0].data_type.as_str(), models[0].name.as_str()),
        ("wine", "tree")
    );

    let (status, v) = get_json(addr, "/health").await;
    assert_eq!(
        (status, &v["healthy"], &v["state"]),
        (200, &Value::from(true), &Value::from("Running"))
    );

    let raw = raw_request(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{raw}"
    );

    server.stop().await;
}

#[tokio::test]
async fn errors_are_json() {
    let server = start(Arc::new(fake_with(&[("wine", stats(1, 1.0))]))).await;
    let addr = server.addr;

    let (status, v) = get_json(addr, "/no/such/thing").await;
    assert_eq!(status, 404);
    assert_eq!(v["path"], "/no/such/thing");
    assert!(v["error"].is_string());

    let (status, v) = get_json(addr, "/state/value/beer").await;
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap().contains("beer"), "{v}");
    assert_eq!(v["data_type"], "beer");

    for bad in [
        "/state/value/%zz",
        "/state/value/%",
        "/state/value/%E2%82",
        "/state/value/",
    ] {
        let (status, v) = get_json(addr, bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"].is_string(), "{bad}: {v}");
    }
    let (status, _) = get_json(addr, &format!("/state/value/{}", "x".repeat(257))).await;
    assert_eq!(status, 400);
    let (status, _) = get_json(addr, &format!("/state/value/{}", "%41".repeat(257))).await;
    assert_eq!(status, 400, "the limit applies after decoding");

    let raw = raw_request(
        addr,
        b"POST /models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    assert!(raw.to_ascii_lowercase().contains("allow: get"), "{raw}");
    assert!(raw.contains("\"error\""), "{raw}");

    // Garbage must not take the server down.
    for junk in [
        &b"\x00\xff\xfe garbage\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"GET /health HTTP/9.9\r\n\r\n",
    ] {
        let _ = raw_request(addr, junk).await;
    }
    let (status, _) = get_json(addr, "/health").await;
    assert_eq!(status, 200, "still serving after junk");

    server.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn unhealthy_is_503() {
    let fake = Fake {
        healthy: false,
        ..fake_with(&[])
    };
    let server = start(Arc::new(fake)).await;
    let (status, v) = get_json(server.addr, "/health").await;
    assert_eq!((status, &v["healthy"]), (503, &Value::from(false)));
    assert_eq!(v["state"], "Error(broker down)");
    server.stop().await;
}

#[tokio::test]
async fn state_queries_are_503_while_restoring() {
    let fake = Fake {
        restoring: true,
        ..fake_with(&[("wine", stats(2, 1.0))])
    };
    let server = start(Arc::new(fake)).await;
    for path in [
        "/state/value",
        "/state/value/wine",
        "/state/value?local=true",
    ] {
        let (status, v) = get_json(server.addr, path).await;
        assert_eq!(status, 503, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains("restoring"), "{v}");
    }
    server.stop().await;
}

#[tokio::test]
async fn stale_reads_are_answered_from_standby_copies_within_the_lag_bound() {
    let fake = Fake {
        restoring: true,
        standby_lag: Some(50),
        ..fake_with(&[("wine", stats(2, 1.0))])
    };
    let server = start(Arc::new(fake)).await;
    // Within the bound: answered here, even while restoring.
    let (status, v) = get_json(server.addr, "/state/value?max_lag=100").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"], 2, "{v}");
    // The copies are further behind than allowed: no stale answer, and no fresh one yet.
    let (status, v) = get_json(server.addr, "/state/value?max_lag=10").await;
    assert_eq!(status, 503, "{v}");
    let (status, v) = get_json(server.addr, "/state/value?max_lag=ten").await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("max_lag"), "{v}");
    server.stop().await;
}

/// Parses the text exposition format enough to check it: `name{labels} value` samples, after
/// `# HELP`/`# TYPE` lines that name the family.
fn prometheus_samples(text: &str) -> Vec<(String, f64)> {
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_string();
            assert!(
                matches!(parts.next(), Some("counter" | "gauge" | "histogram")),
                "{line}"
            );
            typed.push(name);
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let family = series.split('{').next().unwrap();
        assert!(
            typed.iter().any(|t| family == t
                || family
                    .strip_prefix(t.as_str())
                    .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))),
            "sample {line:?} before its TYPE line"
        );
        samples.push((series.to_string(), value));
    }
    samples
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let server = start(Arc::new(fake_with(&[]))).await;
    let (status, text) = get(server.addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    for line in [
        "ks_records_total 50",
        "ks_scores_total 42",
        "ks_no_model_total 3",
        "ks_batched_scores_total 9",
        "ks_errors_total 5",
        "ks_models_loaded_total 2",
        "ks_consumer_lag 7",
        "# TYPE ks_scores_total counter",
        "# TYPE ks_consumer_lag gauge",
        "# TYPE ks_score_latency_seconds histogram",
        "ks_score_latency_seconds_sum 0.25",
        "ks_score_latency_seconds_count 42",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let samples = prometheus_samples(&text);
    let buckets: Vec<(String, f64)> = samples
        .iter()
        .filter(|(s, _)| s.starts_with("ks_score_latency_seconds_bucket{le=\""))
        .cloned()
        .collect();
    assert_eq!(buckets.len(), 4);
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    assert_eq!(
        buckets.last().unwrap(),
        &(
            "ks_score_latency_seconds_bucket{le=\"+Inf\"}".to_string(),
            42.0
        )
    );
    server.stop().await;

    // No lag known: no gauge. Buckets missing +Inf get one.
    let text = render_metrics(&MetricsSnapshot {
        latency_buckets: vec![(0.5, 2)],
        latency_count: 3,
        ..MetricsSnapshot::default()
    });
    prometheus_samples(&text);
    assert!(!text.contains("ks_consumer_lag"), "{text}");
    assert!(!text.contains("ks_standby_lag_records"), "{text}");

    assert!(
        text.lines()
            .any(|l| l == "ks_score_latency_seconds_bucket{le=\"+Inf\"} 3"),
        "{text}"
    );
}

#[test]
fn per_task_metrics_are_prometheus_gauges() {
    // Per task: a standby copy's lag, and a restore's rate and time to ready.
    let per_task = render_metrics(&MetricsSnapshot {
        tasks: vec![
            TaskMetrics {
                task: "0_1".into(),
                standby_lag: Some(12),
                ..TaskMetrics::default()
            },
            TaskMetrics {
                task: "0_2".into(),
                restore_records_per_second: Some(5000.0),
                time_to_ready_seconds: Some(0.25),
                ..TaskMetrics::default()
            },
        ],
        ..MetricsSnapshot::default()
    });
    let samples = prometheus_samples(&per_task);
    for (series, value) in [
        ("ks_standby_lag_records{task=\"0_1\"}", 12.0),
        ("ks_task_restore_records_per_second{task=\"0_2\"}", 5000.0),
        ("ks_task_time_to_ready_seconds{task=\"0_2\"}", 0.25),
    ] {
        assert!(
            samples.contains(&(series.to_string(), value)),
            "{series} in {per_task}"
        );
    }
}

#[tokio::test]
async fn state_value_merges_the_peers() {
    let a = Arc::new(fake_with(&[
        ("wine", stats(3, 10.0)),
        ("only a", stats(1, 1.0)),
    ]));
    let b = Arc::new(fake_with(&[
        ("wine", stats(5, 2.0)),
        ("red wine", stats(2, 4.0)),
    ]));
    let server_a = start(a.clone()).await;
    let server_b = start(b.clone()).await;
    let (pa, pb) = (server_a.addr.port(), server_b.addr.port());
    *a.instances.lock().unwrap() = vec![instance("a", pa, true), instance("b", pb, false)];
    *b.instances.lock().unwrap() = vec![instance("a", pa, false), instance("b", pb, true)];

    for addr in [server_a.addr, server_b.addr] {
        let (status, v) = get_json(addr, "/state/value").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["usage"], 8, "{v}");
        assert_eq!(v["duration"], 40.0);
        assert_eq!(
            (&v["min"], &v["max"]),
            (&Value::from(2.0), &Value::from(10.0))
        );
        assert_eq!(v["mean"], 5.0);
        assert!(v.get("unreachable").is_none(), "{v}");

        let (status, v) = get_json(addr, "/state/value/wine?local=true").await;
        assert_eq!(status, 200);
        let local = if addr == server_a.addr { 3 } else { 5 };
        assert_eq!(v["usage"], local, "local=true answers alone");
    }

    // Held by one instance only, asked of the other; the data type needs encoding on the way.
    let (status, v) = get_json(server_a.addr, "/state/value/red%20wine").await;
    assert_eq!((status, &v["usage"]), (200, &Value::from(2)), "{v}");
    let (status, v) = get_json(server_b.addr, "/state/value/only%20a").await;
    assert_eq!((status, &v["usage"]), (200, &Value::from(1)), "{v}");
    let (status, v) = get_json(server_a.addr, "/state/value/beer").await;
    assert_eq!(status, 404, "nobody has it: {v}");
    assert!(v.get("unreachable").is_none(), "{v}");

    server_a.stop().await;
    server_b.stop().await;
}

#[tokio::test]
async fn unreachable_peers_are_reported_not_fatal() {
    // A port with nothing listening: refused at once.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_port = down.local_addr().unwrap().port();
    drop(down);
    // A port that accepts connections but never answers: only the timeout ends the wait.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();

    let fake = Arc::new(fake_with(&[("wine", stats(3, 10.0))]));
    let server = start(fake.clone()).await;
    *fake.instances.lock().unwrap() = vec![
        instance("me", server.addr.port(), true),
        instance("down", down_port, false),
        instance("silent", silent_port, false),
        // Not live instances: skipped, not reported.
        InstanceInfo {
            host: String::new(),
            ..instance("no host", 9, false)
        },
        instance("no port", 0, false),
    ];

    let started = Instant::now();
    let (status, v) = get_json(server.addr, "/state/value").await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"], 3, "local stats still answered: {v}");
    let unreachable: Vec<String> = serde_json::from_value(v["unreachable"].clone()).unwrap();
    assert_eq!(
        unreachable,
        vec![
            format!("127.0.0.1:{down_port}"),
            format!("127.0.0.1:{silent_port}")
        ]
    );
    assert!(
        took >= Duration::from_millis(900),
        "waited for the silent peer: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "peers asked at once, each bounded: {took:?}"
    );

    // Nothing here and peers unreachable: 404, still naming them.
    let (status, v) = get_json(server.addr, "/state/value/beer").await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["unreachable"].as_array().map(Vec::len), Some(2), "{v}");

    drop(silent);
    server.stop().await;
}

#[tokio::test]
async fn client_errors_are_http_errors() {
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = down.local_addr().unwrap();
    drop(down);
    assert!(matches!(
        get(addr, "/health").await,
        Err(Error::Http { .. })
    ));
    assert!(matches!(
        get(addr, "no-slash").await,
        Err(Error::Http { .. })
    ));
    assert!(matches!(get(addr, "/a b").await, Err(Error::Http { .. })));
    assert!(matches!(
        get(addr, "/a\r\nX: y").await,
        Err(Error::Http { .. })
    ));

    // Binding an address already taken is an error, not a panic.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let result = http::serve(Arc::new(fake_with(&[])), taken_addr, async {}).await;
    assert!(matches!(result, Err(Error::Bind { .. })));
}

#[tokio::test]
async fn client_reads_chunked_and_unsized_bodies() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let responses: [&[u8]; 2] = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.0 404 Not Found\r\n\r\nno length, closed at the end",
    ];
    let peer = tokio::spawn(async move {
        for response in responses {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            socket.write_all(response).await.unwrap();
        }
    });
    assert_eq!(
        get(addr, "/").await.unwrap(),
        (200, "hello world".to_string())
    );
    assert_eq!(
        get(addr, "/").await.unwrap(),
        (404, "no length, closed at the end".to_string())
    );
    peer.await.unwrap();
}

/// A query implementation that panics on one data type.
struct Panicking(Fake);

impl ServingQueries for Panicking {
    fn local_stats(&self, data_type: &str) -> Option<ServingStats> {
        if data_type == "boom" {
            panic!("the store is broken");
        }
        self.0.local_stats(data_type)
    }
    fn instances(&self) -> Vec<InstanceInfo> {
        self.0.instances()
    }
    fn models(&self) -> Vec<ModelInfo> {
        self.0.models()
    }
    fn health(&self) -> Health {
        self.0.health()
    }
    fn metrics(&self) -> MetricsSnapshot {
        self.0.metrics()
    }
}

/// `/state/value` is answered on the async workers (no blocking-pool hand-off): a panic in
/// the query is still a 500 naming it, and the server goes on answering.
#[tokio::test]
async fn a_panicking_state_query_is_a_500_and_the_server_goes_on() {
    let queries = Panicking(fake_with(&[("wine", stats(3, 2.0))]));
    let server = start(Arc::new(queries)).await;
    let (status, body) = get_json(server.addr, "/state/value/boom?local=true").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("the store is broken")),
        "{body}"
    );
    let (status, body) = get_json(server.addr, "/state/value/wine?local=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"], 3, "{body}");
    server.stop().await;
}
