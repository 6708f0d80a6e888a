//! At-least-once across kill -9, on Apache Kafka: the exactly-once scenario under
//! `at_least_once`. No input is without a result; what was replayed shows as duplicates.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;

const INPUTS: usize = 100_000;

#[test]
fn no_input_is_lost() {
    let (counts, usage) = kill_three_times(
        "at_least_once_across_kill/standard",
        "standard",
        "at_least_once",
        INPUTS,
    );
    assert_eq!(counts.inputs, INPUTS);
    assert_eq!(counts.missing, 0);
    println!(
        "at-least-once duplicates after three kills: {}",
        counts.duplicates
    );
    assert!(usage >= INPUTS as u64);
}
