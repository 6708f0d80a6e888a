//! Actor mode against the real broker: the router creates the `wine` actor on first use, its
//! results equal ks-models on the same records, and HTTP answers `/models` and `/state/wine`.
//! An ask that nobody answers times out with a clear error.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_reactive::actor::ActorRef;
use ks_reactive::server::{Mode, Server};
use ks_reactive::Error;
use std::time::Duration;

#[test]
fn actor_mode_routes_scores_and_answers_state() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(env.config(Mode::Actor, dir.path())).unwrap();
    let addr = server.http_addr().to_string();
    assert_eq!(http_get(&addr, "/models").1, serde_json::json!([]));

    let tree = env.publish_model(TREE);
    // Models and data are independent streams (each with its own group join): records sent
    // before the model is in would be answered "no model".
    assert!(wait_until(Duration::from_secs(20), || http_get(
        &addr,
        "/state/wine"
    )
    .0 == 200));
    env.publish_records(0, 40);
    let results = env.wait_results(40, Duration::from_secs(25));
    assert_eq!(results.len(), 40);
    assert!(results
        .iter()
        .all(|r| r.model.as_deref() == Some(tree.as_str())));
    env.check_results(&results, TREE);

    assert_eq!(http_get(&addr, "/models").1, serde_json::json!(["wine"]));
    let (status, body) = http_get(&addr, "/state/wine");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], tree.as_str());
    assert_eq!(body["usage"], 40);
    assert_eq!(http_get(&addr, "/state").1["usage"], 40);
    assert_eq!(http_get(&addr, "/state/beer").0, 404);

    // The actor persisted its model and (within a second) its statistics.
    let actor_dir = ks_reactive::actor::actor_dir(dir.path(), "wine");
    assert!(actor_dir.join("model.bin").is_file());
    assert!(wait_until(Duration::from_secs(5), || actor_dir
        .join("stats.bin")
        .is_file()));
    server.stop().unwrap();
}

#[tokio::test]
async fn an_unanswered_ask_times_out() {
    let (actor, _mailbox) = ActorRef::detached("wine");
    let started = std::time::Instant::now();
    let r = actor.ask(Duration::from_millis(200)).await;
    assert!(
        matches!(r, Err(Error::AskTimeout { ref data_type, millis: 200 }) if data_type == "wine")
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}
