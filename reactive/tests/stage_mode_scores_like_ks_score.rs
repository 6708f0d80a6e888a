//! Stage mode against the real broker: models and data in, results equal ks-models on the
//! same records, a model swap on the next record, bad input on the errors topic, HTTP state.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_reactive::http::Queries;
use ks_reactive::server::{Mode, Server};
use std::time::Duration;

#[test]
fn stage_mode_scores_swaps_and_answers_state() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(env.config(Mode::Stage, dir.path())).unwrap();
    let addr = server.http_addr().to_string();

    let tree = env.publish_model(TREE);
    env.publish_records(0, 40);
    env.publish_raw_data(b"\xff\xffnot a wine record");
    let results = env.wait_results(40, Duration::from_secs(25));
    assert_eq!(results.len(), 40);
    assert!(results
        .iter()
        .all(|r| r.model.as_deref() == Some(tree.as_str())));
    env.check_results(&results, TREE);

    // The stage's state, read from outside while it runs, and over HTTP.
    let Queries::Stage(state) = server.queries() else {
        panic!("stage mode serves stage queries");
    };
    assert_eq!(state.stats("wine").map(|s| s.usage), Some(40));
    let (status, body) = http_get(&addr, "/state");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], tree.as_str());
    assert_eq!(body["usage"], 40);
    assert!(body["min"].as_f64().unwrap() > 0.0);
    let (status, same) = http_get(&addr, "/state/wine");
    assert_eq!((status, &same["name"]), (200, &body["name"]));
    assert_eq!(http_get(&addr, "/state/beer").0, 404);
    assert_eq!(http_get(&addr, "/models").1, serde_json::json!(["wine"]));

    // The undecodable record went to the errors topic.
    assert!(wait_until(Duration::from_secs(10), || !env
        .read(&env.topics.errors)
        .is_empty()));

    // A new model is pending until the next record, then serves with fresh statistics. It is
    // built off the stream, so records keep coming until one is scored by it.
    let linear = env.publish_model(LINEAR);
    let mut published = 40;
    let mut swapped = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while swapped.is_empty() && std::time::Instant::now() < deadline {
        env.publish_records(published, 20);
        published += 20;
        let results = env.wait_results(published, Duration::from_secs(20));
        assert_eq!(results.len(), published);
        swapped = results
            .iter()
            .filter(|r| r.model.as_deref() == Some(linear.as_str()))
            .cloned()
            .collect();
    }
    assert!(!swapped.is_empty());
    env.check_results(&swapped, LINEAR);
    let (_, body) = http_get(&addr, "/state/wine");
    assert_eq!(body["name"], linear.as_str());
    assert_eq!(body["usage"], swapped.len());
    server.stop().unwrap();
}
