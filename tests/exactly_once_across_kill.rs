//! Exactly-once across kill -9, on Apache Kafka: 100 000 wine records over 4 partitions, one
//! model, `ks-server --processing-guarantee exactly_once` killed with SIGKILL three times
//! mid-stream and restarted on the same state dir. A read_committed reader of the results finds
//! exactly one result per input, and the served usage count equals the inputs.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;

const INPUTS: usize = 100_000;

fn exactly_once(store: &str) {
    let test = format!("exactly_once_across_kill/{store}");
    let (counts, usage) = kill_three_times(&test, store, "exactly_once", INPUTS);
    assert_eq!(counts.inputs, INPUTS);
    assert_eq!(counts.missing, 0);
    assert_eq!(counts.duplicates, 0);
    assert_eq!(
        usage, INPUTS as u64,
        "usage counts each committed result once"
    );
}

#[test]
fn standard_store() {
    exactly_once("standard");
}

#[test]
fn custom_store() {
    exactly_once("custom");
}
