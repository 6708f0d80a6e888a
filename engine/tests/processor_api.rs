//! Processor API basics through the test driver: routing to named children, store access
//! rules, changelog writes and tombstones, record metadata, topology validation.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{
    processor, Error, Processor, ProcessorContext, Record, Result, Topology, TopologyTestDriver,
};

/// Sends each record to the child named by its value, or to all children for value "*".
struct Router;

impl Processor for Router {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let target = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        if target == "*" {
            ctx.forward(r);
            Ok(())
        } else {
            ctx.forward_to(&target, r)
        }
    }
}

fn router_topology() -> Result<Topology> {
    let mut t = Topology::new();
    t.add_source("in", &["in"])?
        .add_processor("router", processor::supplier(|| Router), &["in"])?
        .add_sink("left", "left-out", &["router"])?
        .add_sink("right", "right-out", &["router"])?;
    Ok(t)
}

#[test]
fn forward_to_reaches_only_the_named_child() -> Result<()> {
    let mut d = TopologyTestDriver::new(&router_topology()?, 0)?;
    d.pipe_input("in", None, Some(b"right"), 1)?;
    assert!(d.read_output("left-out").is_none());
    assert_eq!(d.read_all_output("right-out").len(), 1);
    d.pipe_input("in", None, Some(b"*"), 2)?;
    assert_eq!(d.read_all_output("left-out").len(), 1);
    assert_eq!(d.read_all_output("right-out").len(), 1);
    Ok(())
}

#[test]
fn forward_to_an_unknown_child_is_an_unknown_child_error() -> Result<()> {
    let mut d = TopologyTestDriver::new(&router_topology()?, 0)?;
    let err = d.pipe_input("in", None, Some(b"nobody"), 1);
    assert!(matches!(
        err,
        Err(Error::UnknownChild { processor, child }) if processor == "router" && child == "nobody"
    ));
    Ok(())
}

/// Writes value under key into `store` (deletes on a tombstone) and forwards what it saw of
/// its context.
struct Writer {
    store: &'static str,
}

impl Processor for Writer {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, r: Record) -> Result<()> {
        let store = ctx.store(self.store)?;
        let key = r.key.clone().unwrap_or_default();
        match &r.value {
            Some(v) => store.put(&key, v)?,
            None => {
                store.delete(&key)?;
            }
        }
        let seen = format!(
            "{}@{} {} ts={} children={}",
            ctx.topic().unwrap_or("-"),
            ctx.offset().unwrap_or(-1),
            ctx.task_id(),
            ctx.timestamp(),
            ctx.child_names().collect::<Vec<_>>().join(",")
        );
        ctx.forward(r.with_value(Some(seen.into_bytes())));
        Ok(())
    }
}

fn writer_topology(connect: bool) -> Result<Topology> {
    let mut t = Topology::new();
    t.add_source("in", &["in"])?
        .add_processor(
            "writer",
            processor::supplier(|| Writer { store: "kv" }),
            &["in"],
        )?
        .add_sink("out", "out", &["writer"])?;
    let owners: &[&str] = if connect { &["writer"] } else { &[] };
    t.add_state_store(StoreSpec::new("kv", StoreKind::InMemory), owners)?;
    if !connect {
        // Someone else must own the store for the topology to be valid.
        t.add_processor(
            "owner",
            processor::supplier(|| Writer { store: "kv" }),
            &["in"],
        )?
        .connect_processor_and_state_store("owner", "kv")?;
    }
    Ok(t)
}

#[test]
fn a_store_not_connected_to_the_processor_is_store_not_connected() -> Result<()> {
    let mut d = TopologyTestDriver::new(&writer_topology(false)?, 0)?;
    let err = d.pipe_input("in", Some(b"k"), Some(b"v"), 1);
    assert!(matches!(
        err,
        Err(Error::StoreNotConnected { processor, store }) if processor == "writer" && store == "kv"
    ));
    Ok(())
}

#[test]
fn store_writes_and_tombstones_reach_the_changelog() -> Result<()> {
    let mut d = TopologyTestDriver::new(&writer_topology(true)?, 0)?;
    d.pipe_input("in", Some(b"a"), Some(b"1"), 1)?;
    d.pipe_input("in", Some(b"b"), Some(b"2"), 2)?;
    d.pipe_input("in", Some(b"a"), None, 3)?;
    let topic = "test-driver-kv-changelog".to_string();
    assert_eq!(
        d.changelog(),
        vec![
            (topic.clone(), 0, (b"a".to_vec(), Some(b"1".to_vec()))),
            (topic.clone(), 0, (b"b".to_vec(), Some(b"2".to_vec()))),
            (topic, 0, (b"a".to_vec(), None)),
        ]
    );
    assert_eq!(d.store("kv")?.all()?, vec![(b"b".to_vec(), b"2".to_vec())]);
    Ok(())
}

#[test]
fn context_reports_topic_offset_task_timestamp_and_children() -> Result<()> {
    let mut d = TopologyTestDriver::new(&writer_topology(true)?, 0)?;
    d.pipe_input("in", Some(b"a"), Some(b"1"), 7)?;
    d.pipe_input("in", Some(b"a"), Some(b"1"), 9)?;
    let seen: Vec<String> = d
        .read_all_output("out")
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(
        seen,
        vec!["in@0 0_0 ts=7 children=out", "in@1 0_0 ts=9 children=out"]
    );
    Ok(())
}

#[test]
fn unknown_global_store_is_unknown_store() -> Result<()> {
    struct ReadsGlobal;
    impl Processor for ReadsGlobal {
        fn process(&mut self, ctx: &mut ProcessorContext<'_>, _: Record) -> Result<()> {
            ctx.global_store("missing").map(drop)
        }
    }
    let mut t = Topology::new();
    t.add_source("in", &["in"])?.add_processor(
        "p",
        processor::supplier(|| ReadsGlobal),
        &["in"],
    )?;
    let mut d = TopologyTestDriver::new(&t, 0)?;
    assert!(
        matches!(d.pipe_input("in", None, None, 1), Err(Error::UnknownStore(name)) if name == "missing")
    );
    Ok(())
}

#[test]
fn invalid_wiring_is_rejected_when_added() -> Result<()> {
    let mut t = Topology::new();
    t.add_source("in", &["in"])?
        .add_sink("out", "out", &["in"])?;
    let noop = || processor::supplier(|| Router);
    assert!(matches!(
        t.add_source("in", &["other"]),
        Err(Error::InvalidTopology(_))
    ));
    assert!(matches!(
        t.add_source("in2", &["in"]),
        Err(Error::InvalidTopology(_))
    ));
    assert!(matches!(
        t.add_processor("p", noop(), &["missing"]),
        Err(Error::InvalidTopology(_))
    ));
    assert!(matches!(
        t.add_processor("p", noop(), &["out"]),
        Err(Error::InvalidTopology(_))
    ));
    assert!(matches!(
        t.add_processor("p", noop(), &[]),
        Err(Error::InvalidTopology(_))
    ));
    assert!(matches!(
        t.connect_processor_and_state_store("in", "nope"),
        Err(Error::UnknownStore(_))
    ));
    Ok(())
}

#[test]
fn a_store_connected_to_no_processor_fails_validation() -> Result<()> {
    let mut t = Topology::new();
    t.add_source("in", &["in"])?
        .add_sink("out", "out", &["in"])?
        .add_state_store(StoreSpec::new("orphan", StoreKind::InMemory), &[])?;
    assert!(matches!(
        TopologyTestDriver::new(&t, 0),
        Err(Error::InvalidTopology(_))
    ));
    Ok(())
}

#[test]
fn a_shared_store_joins_two_sources_into_one_sub_topology() -> Result<()> {
    let mut t = Topology::new();
    t.add_source("a", &["a"])?
        .add_source("b", &["b"])?
        .add_processor("pa", processor::supplier(|| Writer { store: "s" }), &["a"])?
        .add_processor("pb", processor::supplier(|| Writer { store: "s" }), &["b"])?
        .add_state_store(StoreSpec::new("s", StoreKind::InMemory), &["pa", "pb"])?;
    let subs = t.subtopologies();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].source_topics,
        vec!["a".to_string(), "b".to_string()]
    );
    let mut d = TopologyTestDriver::new(&t, 0)?;
    d.pipe_input("a", Some(b"k"), Some(b"from-a"), 1)?;
    d.pipe_input("b", Some(b"k"), Some(b"from-b"), 2)?;
    assert_eq!(d.store("s")?.get(b"k")?, Some(b"from-b".to_vec()));
    Ok(())
}

#[test]
fn sink_output_to_a_topic_the_topology_reads_is_fed_back() -> Result<()> {
    let mut t = Topology::new();
    t.add_source("in", &["in"])?
        .add_sink("to-mid", "mid", &["in"])?
        .add_source("mid", &["mid"])?
        .add_sink("to-out", "out", &["mid"])?;
    let mut d = TopologyTestDriver::new(&t, 0)?;
    d.pipe_input("in", Some(b"k"), Some(b"v"), 1)?;
    assert_eq!(d.read_all_output("mid").len(), 1);
    assert_eq!(
        d.read_output("out").and_then(|r| r.value),
        Some(b"v".to_vec())
    );
    Ok(())
}
