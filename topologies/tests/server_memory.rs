//! ks-server --store memory against the real broker.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_topologies::topology::StoreVariant;
use std::time::Duration;

#[test]
fn scores_every_record_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (env, server, scored) = serve_and_check(StoreVariant::Memory, dir.path());
    server.shutdown().unwrap();
    restart_check(&env, dir.path(), scored);
}

/// The memory variant keeps nothing: after a restart no model and no statistics, until a new
/// model arrives.
fn restart_check(env: &Env, dir: &std::path::Path, _scored: u64) {
    let server = env.start(StoreVariant::Memory, dir);
    // State queries answer once the instance runs (503 while it joins and restores).
    assert!(wait_until(Duration::from_secs(30), || http_get(
        &server, "/health"
    )
    .0 == 200));
    let (status, models) = http_get(&server, "/models");
    assert_eq!(status, 200);
    assert_eq!(models.as_array().map(Vec::len), Some(0));
    assert_eq!(http_get(&server, "/state/value").0, 404);
    server.shutdown().unwrap();
}
