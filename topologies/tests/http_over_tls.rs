//! The HTTP API over TLS on real sockets: a certificate and key file serve https, an instance
//! forwards `/state/value` to its peer over https (the peer's certificate checked against the
//! roots), plain http to the TLS port gets no answer, a client that does not trust the
//! certificate is refused, and a key that does not match the certificate fails at start naming
//! the files. Its own test binary: the peers' TLS roots are process-wide.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_serving::ServingStats;
use ks_topologies::http::{self, HttpOptions, HttpTls};
use ks_topologies::queries::{Health, InstanceInfo, MetricsSnapshot, ModelInfo, ServingQueries};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct OneStat {
    peers: Mutex<Vec<InstanceInfo>>,
}

impl ServingQueries for OneStat {
    fn local_stats(&self, _: &str) -> Option<ServingStats> {
        let mut s = ServingStats::new("tree", "d", "PMML", "0:1", 1);
        s.record(10.0);
        Some(s)
    }
    fn instances(&self) -> Vec<InstanceInfo> {
        self.peers.lock().unwrap().clone()
    }
    fn models(&self) -> Vec<ModelInfo> {
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
        MetricsSnapshot::default()
    }
}

/// A self-signed P-256 certificate for localhost and 127.0.0.1, made by openssl.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.cert.pem"));
    let key = dir.join(format!("{name}.key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:prime256v1")
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl failed");
    (cert, key)
}

async fn start(q: Arc<OneStat>, tls: HttpTls) -> SocketAddr {
    let options = HttpOptions {
        tls: Some(tls),
        ..HttpOptions::default()
    };
    let (addr, _) = http::serve_with(q, "127.0.0.1:0".parse().unwrap(), options, async {
        std::future::pending::<()>().await
    })
    .await
    .unwrap();
    addr
}

fn agent(roots: Option<&Path>) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
    if let Some(roots) = roots {
        let pem = std::fs::read(roots).unwrap();
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i.unwrap() {
                ureq::tls::PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into()
}

async fn get(agent: ureq::Agent, url: String) -> Result<(u16, String), ureq::Error> {
    tokio::task::spawn_blocking(move || {
        let mut r = agent.get(&url).call()?;
        let status = r.status().as_u16();
        Ok((status, r.body_mut().read_to_string()?))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_its_peer_forwarding_run_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");

    let peer = start(
        Arc::new(OneStat::default()),
        HttpTls::from_pem_files(&cert, &key, None).unwrap(),
    )
    .await;
    let q = Arc::new(OneStat::default());
    *q.peers.lock().unwrap() = vec![InstanceInfo {
        instance_id: "peer".into(),
        host: "127.0.0.1".into(),
        port: peer.port(),
        stores: Vec::new(),
        partitions: Vec::new(),
        local: false,
        standby_partitions: Vec::new(),
    }];
    let addr = start(
        q,
        HttpTls::from_pem_files(&cert, &key, Some(&cert)).unwrap(),
    )
    .await;

    let trusting = agent(Some(&cert));
    let (status, body) = get(trusting.clone(), format!("https://{addr}/health"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // The instance asks its peer over https: both halves merged, none unreachable.
    let (status, body) = get(
        trusting.clone(),
        format!("https://localhost:{}/state/value", addr.port()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"usage\":2"), "{body}");
    assert!(!body.contains("unreachable"), "{body}");

    // Plain http to the TLS port gets no HTTP answer.
    let plain = get(agent(None), format!("http://{addr}/health")).await;
    assert!(plain.is_err(), "plain http was answered: {plain:?}");

    // A client that does not trust the self-signed certificate is refused.
    let untrusting = get(agent(None), format!("https://{addr}/health")).await;
    assert!(untrusting.is_err(), "an untrusted certificate was accepted");

    // The server keeps serving after the failed handshakes.
    let (status, _) = get(trusting, format!("https://{addr}/health"))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[test]
fn a_key_that_does_not_match_the_certificate_fails_naming_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path(), "a");
    let (_, other_key) = self_signed(dir.path(), "b");
    let err = HttpTls::from_pem_files(&cert, &other_key, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.cert.pem") && err.contains("b.key.pem"),
        "{err}"
    );

    let missing = HttpTls::from_pem_files(&dir.path().join("none.pem"), &other_key, None)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("none.pem"), "{missing}");

    // A certificate file given as the key: no private key in it, said so.
    let not_a_key = HttpTls::from_pem_files(&cert, &cert, None)
        .unwrap_err()
        .to_string();
    assert!(not_a_key.contains("a.cert.pem"), "{not_a_key}");
}
