//! The HTTP API's locked doors over real sockets: the admin token (401 and nothing runs
//! without it), guarded reads with peers forwarding the token, request size and rate limits,
//! and a peer client that never follows a redirect.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_serving::ServingStats;
use ks_topologies::http::{self, HttpOptions};
use ks_topologies::queries::{Health, InstanceInfo, MetricsSnapshot, ModelInfo, ServingQueries};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counts every query, so a refused request can be shown to have run nothing.
#[derive(Default)]
struct Counting {
    calls: AtomicUsize,
    peers: Mutex<Vec<InstanceInfo>>,
}

impl ServingQueries for Counting {
    fn local_stats(&self, _: &str) -> Option<ServingStats> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut s = ServingStats::new("tree", "d", "PMML", "0:1", 1);
        s.record(10.0);
        Some(s)
    }
    fn instances(&self) -> Vec<InstanceInfo> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.peers.lock().unwrap().clone()
    }
    fn models(&self) -> Vec<ModelInfo> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Vec::new()
    }
    fn health(&self) -> Health {
        Health {
            healthy: true,
            state: "Running".into(),
            broker: "reachable".into(),
        }
    }
    fn metrics(&self) -> MetricsSnapshot {
        self.calls.fetch_add(1, Ordering::SeqCst);
        MetricsSnapshot::default()
    }
}

async fn start(q: Arc<Counting>, options: HttpOptions) -> SocketAddr {
    let (addr, _) = http::serve_with(q, "127.0.0.1:0".parse().unwrap(), options, async {
        std::future::pending::<()>().await
    })
    .await
    .unwrap();
    addr
}

/// One raw request; returns the status and the whole response text.
async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

fn req(method: &str, path: &str, headers: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n")
}

fn guarded(reads: bool) -> HttpOptions {
    HttpOptions {
        admin_token: Some("s3cret".into()),
        guard_reads: reads,
        ..HttpOptions::default()
    }
}

#[tokio::test]
async fn a_state_changing_request_without_the_token_is_401_and_runs_nothing() {
    let q = Arc::new(Counting::default());
    let addr = start(q.clone(), guarded(false)).await;
    for (method, path) in [
        ("POST", "/models"),
        ("DELETE", "/state/value/wine"),
        ("PUT", "/x"),
    ] {
        for headers in [
            "",
            "Authorization: Bearer wrong\r\n",
            "X-Admin-Token: s3cre\r\n",
        ] {
            let (status, text) = raw(addr, &req(method, path, headers)).await;
            assert_eq!(status, 401, "{method} {path} {headers}: {text}");
            assert!(text.contains("www-authenticate: Bearer"), "{text}");
        }
    }
    assert_eq!(
        q.calls.load(Ordering::SeqCst),
        0,
        "a refused request ran a query"
    );
    // With the token the request is routed as before (no such state-changing route: 405).
    let (status, _) = raw(
        addr,
        &req("POST", "/models", "Authorization: Bearer s3cret\r\n"),
    )
    .await;
    assert_eq!(status, 405);
    let (status, _) = raw(addr, &req("POST", "/models", "X-Admin-Token: s3cret\r\n")).await;
    assert_eq!(status, 405);
    // Reads stay open unless guarded.
    assert_eq!(raw(addr, &req("GET", "/models", "")).await.0, 200);
}

#[tokio::test]
async fn guarded_reads_need_the_token_and_peers_forward_it() {
    let peer_q = Arc::new(Counting::default());
    let peer = start(peer_q.clone(), guarded(true)).await;
    let q = Arc::new(Counting::default());
    *q.peers.lock().unwrap() = vec![InstanceInfo {
        instance_id: "peer".into(),
        host: "127.0.0.1".into(),
        port: peer.port(),
        stores: Vec::new(),
        partitions: Vec::new(),
        local: false,
        standby_partitions: Vec::new(),
    }];
    let addr = start(q.clone(), guarded(true)).await;
    assert_eq!(raw(addr, &req("GET", "/models", "")).await.0, 401);
    assert_eq!(raw(addr, &req("GET", "/metrics", "")).await.0, 401);
    assert_eq!(q.calls.load(Ordering::SeqCst), 0);
    assert_eq!(raw(addr, &req("GET", "/health", "")).await.0, 200);
    let (status, text) = raw(
        addr,
        &req("GET", "/state/value", "Authorization: Bearer s3cret\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    // Both halves merged: the peer accepted the forwarded token.
    assert!(text.contains("\"usage\":2"), "{text}");
    assert!(!text.contains("unreachable"), "{text}");
}

#[tokio::test]
async fn oversized_requests_are_413_and_floods_429() {
    let q = Arc::new(Counting::default());
    let addr = start(
        q.clone(),
        HttpOptions {
            max_request_bytes: 1000,
            rate_limit_per_s: Some(3),
            ..HttpOptions::default()
        },
    )
    .await;
    let (status, _) = raw(addr, &req("GET", "/models", "Content-Length: 100000\r\n")).await;
    assert_eq!(status, 413);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(raw(addr, &req("GET", "/models", "")).await.0);
    }
    // One token went to the 413; the bucket holds three.
    assert_eq!(statuses, [200, 200, 429, 429, 429], "{statuses:?}");
    let (_, text) = raw(addr, &req("GET", "/models", "")).await;
    assert!(text.contains("retry-after: 1"), "{text}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(raw(addr, &req("GET", "/models", "")).await.0, 200);
}

#[tokio::test]
async fn the_peer_client_never_follows_a_redirect() {
    // A "peer" that redirects to a listener that records whether anyone came.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let visited = Arc::new(AtomicUsize::new(0));
    let v = visited.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = target.accept().await {
            v.fetch_add(1, Ordering::SeqCst);
        }
    });
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_addr = redirector.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = redirector.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{target_addr}/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    let (status, _) = http::get_with_token(redirector_addr, "/state/value?local=true", Some("t"))
        .await
        .unwrap();
    assert_eq!(status, 302);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        visited.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}
