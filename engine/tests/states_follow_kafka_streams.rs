//! Instance states as Kafka Streams has them: `Created → Rebalancing → Running`, `Running` only
//! once every assigned task is restored, back to `Rebalancing` while a rebalance is under way,
//! then `PendingShutdown → NotRunning`; a state listener sees every transition.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{KafkaStreams, StreamsState};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn topology(input: &str) -> ks_engine::Topology {
    last_value_topology(input, StoreSpec::new("kv", StoreKind::InMemory))
}

/// Transitions seen by the listener, with the store's size at each.
type Seen = Arc<Mutex<Vec<(StreamsState, StreamsState, usize)>>>;

fn listen(streams: &KafkaStreams) -> Seen {
    let seen: Seen = Arc::default();
    let view = streams.store("kv").unwrap();
    let s = seen.clone();
    streams.set_state_listener(move |new, old| {
        let size = view.all().map(|a| a.len()).unwrap_or(0);
        s.lock().unwrap().push((new.clone(), old.clone(), size));
    });
    seen
}

#[test]
fn running_comes_after_restore_and_every_transition_is_heard() {
    const KEYS: usize = 20_000;
    let broker = ks_broker::Broker::tansu().unwrap();
    let bs = broker.bootstrap_servers();
    let (input, app) = (unique("in"), unique("states"));
    create_topics(bs, &[(&input, 1)]);
    produce(bs, &input, &keyed(KEYS, KEYS, 0));
    let dir = tempfile::tempdir().unwrap();
    let mut first = KafkaStreams::new(topology(&input), test_config(&app, bs, dir.path())).unwrap();
    let seen = listen(&first);
    first.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || first
        .metrics()
        .processed
        .load(Ordering::Relaxed)
        >= KEYS as u64));
    first.close().unwrap();
    let states: Vec<StreamsState> = seen.lock().unwrap().iter().map(|t| t.0.clone()).collect();
    // (A slow machine may add a rebalance in between, never anything else.)
    assert_eq!(
        states[..2],
        [StreamsState::Rebalancing, StreamsState::Running],
        "{states:?}"
    );
    assert_eq!(
        states[states.len() - 2..],
        [StreamsState::PendingShutdown, StreamsState::NotRunning],
        "{states:?}"
    );
    assert_eq!(seen.lock().unwrap()[0].1, StreamsState::Created);

    // A new instance (in-memory store, so everything comes from the changelog) is Running only
    // with the whole store restored.
    let dir = tempfile::tempdir().unwrap();
    let second = KafkaStreams::new(topology(&input), test_config(&app, bs, dir.path())).unwrap();
    let seen = listen(&second);
    let mut second = second;
    second.start().unwrap();
    // The listener runs right after the state changes: wait for what it heard.
    assert!(wait_until(Duration::from_secs(60), || seen
        .lock()
        .unwrap()
        .iter()
        .any(|t| t.0 == StreamsState::Running)));
    let running: Vec<usize> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.0 == StreamsState::Running)
        .map(|t| t.2)
        .collect();
    assert_eq!(
        running,
        vec![KEYS],
        "Running only after the restore: {:?}",
        seen.lock().unwrap()
    );
    assert!(second.metrics().restored_records.load(Ordering::Relaxed) >= KEYS as u64);

    // A member joining makes it rebalance, then run again.
    let dir_b = tempfile::tempdir().unwrap();
    let mut third =
        KafkaStreams::new(topology(&input), test_config(&app, bs, dir_b.path())).unwrap();
    third.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || third.state()
        == StreamsState::Running));
    assert!(wait_until(Duration::from_secs(30), || second.state()
        == StreamsState::Running));
    third.close().unwrap();
    second.close().unwrap();
    let after: Vec<StreamsState> = seen.lock().unwrap().iter().map(|t| t.0.clone()).collect();
    assert!(
        after
            .windows(2)
            .any(|w| w == [StreamsState::Rebalancing, StreamsState::Running])
            && after
                .iter()
                .filter(|s| **s == StreamsState::Rebalancing)
                .count()
                >= 2,
        "{after:?}"
    );
}
