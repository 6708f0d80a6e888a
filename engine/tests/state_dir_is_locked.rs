//! One instance per state directory and application: a second `KafkaStreams` on the same
//! `state.dir` fails at construction with an error naming the lock, and succeeds once the first
//! is gone.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_engine::processor::supplier;
use ks_engine::{
    Error, KafkaStreams, Processor, ProcessorContext, Record, StreamsConfig, Topology,
};

struct Nothing;

impl Processor for Nothing {
    fn process(&mut self, _ctx: &mut ProcessorContext<'_>, _r: Record) -> ks_engine::Result<()> {
        Ok(())
    }
}

fn topology() -> Topology {
    let mut t = Topology::new();
    t.add_source("in", &["input"])
        .unwrap()
        .add_processor("p", supplier(|| Nothing), &["in"])
        .unwrap();
    t
}

#[test]
fn a_second_instance_on_the_same_state_dir_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = StreamsConfig::new("locked-app", "127.0.0.1:1").with_state_dir(dir.path());
    let first = KafkaStreams::new(topology(), config.clone()).unwrap();
    match KafkaStreams::new(topology(), config.clone()) {
        Err(Error::StateDirLocked { path }) => {
            assert_eq!(path, dir.path().join("locked-app").join(".lock"));
        }
        other => panic!("expected StateDirLocked, got {:?}", other.err()),
    }
    // Another application may share the directory.
    let other = StreamsConfig::new("other-app", "127.0.0.1:1").with_state_dir(dir.path());
    assert!(KafkaStreams::new(topology(), other).is_ok());
    drop(first);
    assert!(KafkaStreams::new(topology(), config).is_ok());
}
