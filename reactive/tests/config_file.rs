//! `as-server --config FILE`: an unknown key or a bad value is an error naming it, and security
//! properties reach the start-up broker check (which names the file's servers).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::process::Command;

fn as_server(config: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_as-server"))
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_keys_and_bad_values_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("as.properties");
    std::fs::write(&path, "bootstrap.servers=127.0.0.1:1\nks.htp.port=5\n").unwrap();
    let (ok, stderr) = as_server(&path);
    assert!(!ok);
    assert!(
        stderr.contains(":2: unknown or invalid property `ks.htp.port`"),
        "{stderr}"
    );
    std::fs::write(&path, "ks.http.port=70000\n").unwrap();
    let (ok, stderr) = as_server(&path);
    assert!(!ok);
    assert!(stderr.contains("`ks.http.port`: bad value"), "{stderr}");
}

#[test]
fn security_properties_reach_the_broker_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("as.properties");
    std::fs::write(
        &path,
        "bootstrap.servers=127.0.0.1:1\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
         sasl.username=u\nsasl.password=p\nconsumer.fetch.wait.max.ms=100\n",
    )
    .unwrap();
    let (ok, stderr) = as_server(&path);
    assert!(!ok);
    assert!(
        stderr.contains("no broker of 127.0.0.1:1 answered"),
        "{stderr}"
    );
}
