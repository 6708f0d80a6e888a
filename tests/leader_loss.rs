//! Leader loss on a three-node Apache Kafka cluster (replication factor 3,
//! min.insync.replicas 2): mid-stream, the leader of a data partition is killed (SIGKILL), and
//! after it is back the leader of a results partition; ks-server keeps running and every input
//! has a result.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_broker::KafkaCluster;
use std::time::Duration;

const INPUTS: usize = 60_000;

fn kill_leader(cluster: &mut KafkaCluster, bootstrap: &str, topic: &str, what: &str) {
    let leader = leader_of(bootstrap, topic, 0).expect("partition 0 has a leader");
    let node = cluster.index_of(leader).expect("the leader is one of ours");
    cluster.kill(node).unwrap();
    println!("killed node {leader}, leader of {what} partition 0");
    // The others elect a new leader; the topic keeps a leader while the node is away.
    assert!(wait_until(Duration::from_secs(60), || {
        leader_of(bootstrap, topic, 0).is_some_and(|l| l != leader)
    }));
    std::thread::sleep(Duration::from_secs(3));
    cluster.restart(node).expect("the node starts again");
}

#[test]
fn every_input_has_a_result_when_leaders_die() {
    let mut cluster = KafkaCluster::start().expect("a three-node Apache Kafka cluster");
    let bootstrap = cluster.bootstrap_servers();
    let s = Scenario::new(&bootstrap);
    s.publish_model(TREE);
    s.preload(INPUTS);
    let dir = tempfile::tempdir().unwrap();
    let mut server = s.spawn_server("standard", "at_least_once", dir.path());
    server.wait_usage(INPUTS as u64 / 6, Duration::from_secs(600));
    kill_leader(&mut cluster, &bootstrap, &s.data, "a data");
    server.wait_usage(INPUTS as u64 / 2, Duration::from_secs(600));
    kill_leader(&mut cluster, &bootstrap, &s.results, "a results");
    server.wait_usage(INPUTS as u64, Duration::from_secs(600));
    let counts = s.final_count("leader_loss", "kafka x3", Duration::from_secs(120));
    assert_eq!(counts.inputs, INPUTS);
    assert_eq!(counts.missing, 0);
    assert!(server.is_running(), "log:\n{}", server.log_tail());
}
