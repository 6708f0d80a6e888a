//! ks-server --store custom against the real broker.

mod common;

use common::*;
use ks_topologies::topology::StoreVariant;
use std::time::Duration;

#[test]
fn scores_every_record_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (env, server, scored) = serve_and_check(StoreVariant::Custom, dir.path());
    server.shutdown().unwrap();
    restart_check(&env, dir.path(), scored);
}

/// Comes back with the model and its statistics without the model being sent again.
fn restart_check(env: &Env, dir: &std::path::Path, scored: u64) {
    let server = env.start(StoreVariant::Custom, dir);
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (status, v) = http_get(&server, "/state/value");
            status == 200
                && v["usage"] == scored
                && v["name"] == "winequalityDesisionTreeRegression"
        }),
        "{:?}",
        http_get(&server, "/state/value")
    );
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
