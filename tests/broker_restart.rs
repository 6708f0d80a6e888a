//! A broker restart under a running ks-server, on Apache Kafka: the broker is stopped (SIGTERM)
//! and later killed (SIGKILL) mid-stream and started again on its log dir, while the server
//! process keeps running. `/health` answers 503 while the broker is away and 200 after, and
//! every input has a result.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_broker::Broker;
use std::time::Duration;

const INPUTS: usize = 100_000;

fn health(server: &ServerProcess) -> Option<u16> {
    server.get("/health").map(|(status, _)| status)
}

/// Takes the broker away with `away`, checks the server reports it, and brings it back.
fn outage(server: &mut ServerProcess, broker: &mut Broker, what: &str, away: fn(&mut Broker)) {
    let before = server.usage();
    away(broker);
    assert!(
        wait_until(Duration::from_secs(30), || health(server) == Some(503)),
        "/health did not turn 503 after the broker's {what}: {:?}",
        server.get("/health")
    );
    println!("broker {what} at usage {before}: /health 503");
    std::thread::sleep(Duration::from_secs(2));
    broker
        .restart()
        .expect("the broker starts again on its log dir");
    assert!(
        wait_until(Duration::from_secs(60), || health(server) == Some(200)),
        "/health did not come back after the broker restarted: {:?}; log:\n{}",
        server.get("/health"),
        server.log_tail()
    );
    assert!(server.is_running(), "log:\n{}", server.log_tail());
    println!("broker back after its {what}: /health 200");
}

#[test]
fn the_server_rides_out_a_broker_stop_and_a_broker_kill() {
    let mut broker = Broker::kafka().expect("an Apache Kafka broker");
    let s = Scenario::new(broker.bootstrap_servers());
    s.publish_model(TREE);
    s.preload(INPUTS);
    let dir = tempfile::tempdir().unwrap();
    let mut server = s.spawn_server("standard", "at_least_once", dir.path());
    assert!(wait_until(Duration::from_secs(60), || health(&server) == Some(200)));
    server.wait_usage(INPUTS as u64 / 10, Duration::from_secs(600));
    outage(&mut server, &mut broker, "stop (SIGTERM)", Broker::stop);
    // The second outage comes after the server made progress past the first.
    let after_first = server.usage();
    server.wait_usage(after_first + INPUTS as u64 / 10, Duration::from_secs(600));
    outage(&mut server, &mut broker, "kill (SIGKILL)", Broker::kill);
    server.wait_usage(INPUTS as u64, Duration::from_secs(600));
    let counts = s.final_count("broker_restart", "kafka", Duration::from_secs(120));
    assert_eq!(counts.inputs, INPUTS);
    assert_eq!(counts.missing, 0);
    assert!(
        server.is_running(),
        "the server process was never restarted"
    );
}
