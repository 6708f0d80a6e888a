//! `ks-client --config FILE`: an unknown key is an error naming it, before any broker is asked;
//! `--brokers` overrides the file's `bootstrap.servers`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::process::Command;

fn ks_client(args: &[&str], config: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ks-client"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("KS_BROKERS")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.properties");
    std::fs::write(
        &path,
        "bootstrap.servers=127.0.0.1:1\nsasl.mechanisms=PLAIN\nsasl.usrname=x\n",
    )
    .unwrap();
    let (ok, stderr) = ks_client(&["read", "--topic", "t"], &path);
    assert!(!ok);
    assert!(
        stderr.contains(":3: unknown or invalid property `sasl.usrname`"),
        "{stderr}"
    );
}

#[test]
fn the_file_brokers_are_used_and_security_properties_reach_the_broker_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.properties");
    // Nothing listens on port 1: the check names the file's servers, then --brokers' instead.
    std::fs::write(&path, "bootstrap.servers=127.0.0.1:1\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\n").unwrap();
    let (ok, stderr) = ks_client(&["read", "--topic", "t"], &path);
    assert!(!ok);
    assert!(
        stderr.contains("no broker of 127.0.0.1:1 answered"),
        "{stderr}"
    );
    let (ok, stderr) = ks_client(&["--brokers", "127.0.0.1:2", "read", "--topic", "t"], &path);
    assert!(!ok);
    assert!(
        stderr.contains("no broker of 127.0.0.1:2 answered"),
        "{stderr}"
    );
}
