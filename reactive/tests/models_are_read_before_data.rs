//! Both modes read the model topic to its end before they read data: with a model and a
//! backlog of records already on the broker when the server starts, every record is scored by
//! that model (before, the data consumer's group join could beat the model consumer's and the
//! first records got "no model").
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_reactive::server::{Mode, Server};
use std::time::Duration;

fn every_record_scored_by_the_model_published_first(mode: Mode) {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let tree = env.publish_model(TREE);
    env.publish_records(0, 200);
    let server = Server::start(env.config(mode, dir.path())).unwrap();
    let results = env.wait_results(200, Duration::from_secs(40));
    assert_eq!(results.len(), 200);
    let unscored = results.iter().filter(|r| r.model.is_none()).count();
    assert_eq!(
        unscored, 0,
        "{mode:?}: {unscored} of 200 records got no model"
    );
    assert!(results
        .iter()
        .all(|r| r.model.as_deref() == Some(tree.as_str())));
    env.check_results(&results, TREE);
    server.stop().unwrap();
}

#[test]
fn actor_mode_reads_models_before_data() {
    every_record_scored_by_the_model_published_first(Mode::Actor);
}

#[test]
fn stage_mode_reads_models_before_data() {
    every_record_scored_by_the_model_published_first(Mode::Stage);
}
