//! Two ks-server instances under exactly-once on Apache Kafka, one killed with SIGKILL
//! mid-stream: the survivor takes its partitions (after the group notices and the dead
//! instance's open transaction is aborted) and there is exactly one committed result per input.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use std::time::Duration;

const INPUTS: usize = 100_000;

fn partitions_of(server: &ServerProcess) -> usize {
    server
        .get("/state/instances")
        .and_then(|(_, v)| {
            v.as_array().map(|list| {
                list.iter()
                    .filter_map(|i| i["partitions"].as_array().map(Vec::len))
                    .sum()
            })
        })
        .unwrap_or(0)
}

#[test]
fn the_survivor_takes_over_with_one_result_per_input() {
    let broker = ks_broker::Broker::kafka().expect("an Apache Kafka broker");
    let s = Scenario::new(broker.bootstrap_servers());
    s.publish_model(TREE);
    s.preload(INPUTS);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = s.spawn_server("standard", "exactly_once", dir_a.path());
    let mut b = s.spawn_server("standard", "exactly_once", dir_b.path());
    // Both hold partitions before the kill.
    assert!(
        wait_until(Duration::from_secs(120), || {
            let list = a
                .get("/state/instances")
                .map(|(_, v)| v)
                .unwrap_or_default();
            list.as_array().is_some_and(|l| {
                l.len() == 2
                    && l.iter()
                        .all(|i| i["partitions"].as_array().is_some_and(|p| !p.is_empty()))
            })
        }),
        "{:?}",
        a.get("/state/instances")
    );
    a.wait_usage(INPUTS as u64 / 3, Duration::from_secs(600));
    b.kill9();
    println!("killed one instance at merged usage {}", a.usage());
    assert!(wait_until(Duration::from_secs(120), || partitions_of(&a)
        == PARTITIONS as usize));
    a.wait_usage(INPUTS as u64, Duration::from_secs(600));
    // The dead instance's open transaction holds back read_committed readers of the partitions
    // it wrote until the coordinator aborts it (transaction.timeout.ms, 10 s).
    let counts = s.final_count(
        "two_instances_exactly_once",
        "kafka",
        Duration::from_secs(120),
    );
    assert_eq!(counts.inputs, INPUTS);
    assert_eq!(counts.missing, 0);
    assert_eq!(counts.duplicates, 0);
    assert!(a.is_running(), "log:\n{}", a.log_tail());
}
