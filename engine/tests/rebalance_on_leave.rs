//! When an instance leaves the group cleanly (close), the others take its partitions.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
#[path = "support/dedup_count.rs"]
mod dedup_count;
use dedup_count::dedup_count_topology;
use ks_engine::stores::StoreKind;
use ks_engine::KafkaStreams;
use std::time::Duration;

fn leave_and_take_over(strategy: Option<&str>) {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, output, app) = (unique("in"), unique("out"), unique("leave"));
    create_topics(bs, &[(&input, 4), (&output, 4)]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path| {
        let mut c = test_config(&app, bs, dir);
        c.assignment_strategy = strategy.map(str::to_string);
        c
    };
    let mut a = KafkaStreams::new(
        dedup_count_topology(&input, &output, StoreKind::InMemory).unwrap(),
        config(dir_a.path()),
    )
    .unwrap();
    a.start().unwrap();
    assert!(a.wait_for_assignment(Duration::from_secs(30), |p| p.len() == 4));
    let mut b = KafkaStreams::new(
        dedup_count_topology(&input, &output, StoreKind::InMemory).unwrap(),
        config(dir_b.path()),
    )
    .unwrap();
    b.start().unwrap();
    assert!(
        b.wait_for_assignment(Duration::from_secs(45), |p| !p.is_empty()),
        "b never got partitions"
    );
    assert!(a.wait_for_assignment(Duration::from_secs(30), |p| p.len() < 4));
    a.close().unwrap();
    assert!(
        b.wait_for_assignment(Duration::from_secs(45), |p| p.len() == 4),
        "b holds {:?} after a left",
        b.assigned_partitions()
    );
    b.close().unwrap();
}

#[test]
fn cooperative_sticky_hands_partitions_over_on_a_clean_leave() {
    leave_and_take_over(None);
}

#[test]
fn range_hands_partitions_over_on_a_clean_leave() {
    leave_and_take_over(Some("range"));
}
