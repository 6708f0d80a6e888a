//! Bad input to `ks-client` gives a one-line error and a non-zero exit, never a panic.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::net::TcpListener;
use std::process::{Command, Output};

fn ks_client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ks-client"))
        .args(args)
        .output()
        .unwrap()
}

fn assert_one_line_failure(out: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no error printed");
    assert!(lines[0].contains(mentions), "{stderr}");
}

#[test]
fn publish_model_on_a_missing_file() {
    let out = ks_client(&[
        "--brokers",
        "127.0.0.1:1",
        "publish-model",
        "/no/such/model.pmml",
    ]);
    assert_one_line_failure(&out, "/no/such/model.pmml");
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn publish_model_with_an_unknown_type() {
    let out = ks_client(&["publish-model", "data/x.pmml", "--type", "keras"]);
    assert_one_line_failure(&out, "keras");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn publish_model_when_no_broker_listens() {
    let port = ks_broker::free_port().unwrap();
    let file = ks_client::catalog::default_data_dir().join("winequalityLinearRegression.pmml");
    let out = ks_client(&[
        "--brokers",
        &format!("127.0.0.1:{port}"),
        "publish-model",
        file.to_str().unwrap(),
    ]);
    assert_one_line_failure(&out, "no broker answers");
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn publish_model_when_the_broker_never_answers() {
    // Accepts connections (the kernel completes the handshake) but never speaks Kafka.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let file = ks_client::catalog::default_data_dir().join("winequalityLinearRegression.pmml");
    let started = std::time::Instant::now();
    let out = ks_client(&["--brokers", &addr, "publish-model", file.to_str().unwrap()]);
    assert_one_line_failure(&out, "ks-client:");
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn provide_refusing_the_embedded_broker() {
    let port = ks_broker::free_port().unwrap();
    let out = ks_client(&[
        "--brokers",
        &format!("127.0.0.1:{port}"),
        "provide",
        "--no-embedded-broker",
    ]);
    assert_one_line_failure(&out, "no broker answers");
}
