//! ks-server --store custom against the real broker.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_topologies::topology::StoreVariant;

#[test]
fn scores_every_record_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (env, server, scored) = serve_and_check(StoreVariant::Custom, dir.path());
    server.shutdown().unwrap();
    restart_keeps_model_and_stats(&env, StoreVariant::Custom, dir.path(), scored);
}
