//! schemathesis (installed by scripts/setup.sh into .ks/schemathesis) fuzzes a live ks-server
//! on a broker from its own `/openapi.json`, for a bounded number of cases: no server error,
//! every answer conforming to the document.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_topologies::topology::StoreVariant;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn schemathesis_finds_no_server_error() {
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ks/schemathesis/bin/st");
    assert!(
        st.is_file(),
        "{} missing: run scripts/setup.sh",
        st.display()
    );
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let server = env.start(StoreVariant::Memory, dir.path());
    env.publish_model("winequalityDecisionTreeClassification.pmml");
    env.publish_records(0, 10);
    assert!(wait_until(Duration::from_secs(60), || http_get(
        &server,
        "/state/value"
    )
    .0 == 200));
    let out = Command::new(&st)
        .arg("run")
        .arg(format!("http://{}/openapi.json", server.http_addr()))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--no-color",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{stderr}"
    );
    // "Test cases:" then "  112 generated, 112 passed".
    let summary = stdout
        .lines()
        .skip_while(|l| !l.contains("Test cases:"))
        .find(|l| l.contains("generated"))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    println!("schemathesis summary: {}", summary.trim());
    let generated: u64 = summary.split_whitespace().next().unwrap().parse().unwrap();
    assert!(generated >= 20, "{summary}");
    assert!(
        !summary.contains("failed") && !summary.contains("error"),
        "{summary}"
    );
    server.shutdown().unwrap();
}
