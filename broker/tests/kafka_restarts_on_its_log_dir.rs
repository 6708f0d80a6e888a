//! Apache Kafka under ks-broker: ready means a Metadata answer listing the node; a stop
//! (SIGTERM) and a kill (SIGKILL) are followed by a start on the same port and log directory,
//! keeping the cluster id; a `--data-dir` given by the caller outlives the broker.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_broker::{metadata_brokers, Broker, BrokerKind, BrokerOptions};
use std::net::SocketAddr;
use std::time::Duration;

fn cluster_id(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("logs/meta.properties"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("cluster.id=").map(str::to_string))
        .unwrap()
}

#[test]
fn stops_kills_and_starts_again_on_the_same_log_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(
        BrokerKind::Kafka,
        BrokerOptions {
            port: None,
            data_dir: Some(dir.path().to_path_buf()),
            ..BrokerOptions::default()
        },
    )
    .unwrap();
    let addr: SocketAddr = broker.bootstrap_servers().parse().unwrap();
    let probe = || metadata_brokers(addr, Duration::from_secs(2));
    assert_eq!(probe(), Some(vec![1]));
    let id = cluster_id(dir.path());

    broker.stop();
    assert!(!broker.is_running());
    assert_eq!(probe(), None);
    broker.restart().unwrap();
    assert_eq!(probe(), Some(vec![1]));

    broker.kill();
    assert_eq!(probe(), None);
    broker.restart().unwrap();
    assert_eq!(probe(), Some(vec![1]));
    assert_eq!(
        cluster_id(dir.path()),
        id,
        "the log directory was not formatted again"
    );
    drop(broker);
    assert!(dir.path().join("logs/meta.properties").is_file());
}
