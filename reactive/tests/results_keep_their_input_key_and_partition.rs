//! Both modes write each result with its input record's key to its input record's partition,
//! as ks-server does: per-partition order holds end to end and a keyed input stays keyed.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_reactive::server::{Mode, Server};
use ks_serving::ScoreResult;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

fn results_follow_their_input(mode: Mode) {
    let env = Env::with_result_partitions(2);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(env.config(mode, dir.path())).unwrap();
    env.publish_model(TREE);
    env.publish_keyed_records(0, 30);
    let results = env.wait_results(30, Duration::from_secs(30));
    assert_eq!(results.len(), 30);

    let inputs: HashMap<(i32, i64), Option<Vec<u8>>> = env
        .read(&env.topics.data)
        .into_iter()
        .map(|m| ((m.partition, m.offset), m.key))
        .collect();
    let mut used = BTreeSet::new();
    for m in env.read(&env.topics.results) {
        let r: ScoreResult = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            m.partition, r.partition,
            "result of {}:{}",
            r.partition, r.offset
        );
        let key = inputs.get(&(r.partition, r.offset)).unwrap();
        assert!(key.is_some());
        assert_eq!(&m.key, key, "result of {}:{}", r.partition, r.offset);
        used.insert(m.partition);
    }
    assert_eq!(used, BTreeSet::from([0, 1]));
    server.stop().unwrap();
}

#[test]
fn stage_results_keep_their_input_key_and_partition() {
    results_follow_their_input(Mode::Stage);
}

#[test]
fn actor_results_keep_their_input_key_and_partition() {
    results_follow_their_input(Mode::Actor);
}
