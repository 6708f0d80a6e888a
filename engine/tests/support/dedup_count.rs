//! Test support, not product API: the replay-safe count the `ks-wordcount` test binary runs and
//! the engine tests check (a processor that fails on `poison`). Included by path from
//! `src/bin/ks-wordcount.rs` and from the tests that use it.
#![allow(dead_code)]

use ks_engine::processor::{supplier, Processor, ProcessorContext};
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{Error, Record, Result, Topology};

/// Counts records per key into the store `counts` and emits `(key, count)` as text to
/// `output`. Each stored value is `count:last_offset`; a record at or below the stored offset
/// is a replay (after a crash, or a re-delivery under at-least-once) and is not counted again,
/// so totals stay exact even when input is processed twice. Input must be keyed, so that a
/// key's records all come from one partition. A record whose value is `poison` fails.
pub fn dedup_count_topology(input: &str, output: &str, kind: StoreKind) -> Result<Topology> {
    let mut t = Topology::new();
    t.add_source("lines", &[input])?
        .add_processor("count", supplier(|| DedupCount), &["lines"])?
        .add_state_store(StoreSpec::new("counts", kind), &["count"])?
        .add_sink("counts-out", output, &["count"])?;
    Ok(t)
}

struct DedupCount;

/// Parses a stored `count:last_offset` value.
pub fn parse_count(v: &[u8]) -> Option<(u64, i64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (c, o) = s.split_once(':')?;
    Some((c.parse().ok()?, o.parse().ok()?))
}

impl Processor for DedupCount {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()> {
        if record.value.as_deref() == Some(b"poison") {
            return Err(Error::processing("count", "poison record"));
        }
        let Some(key) = record.key.clone() else {
            return Err(Error::processing(
                "count",
                "a record without key cannot be counted",
            ));
        };
        let offset = ctx.offset().unwrap_or(-1);
        let store = ctx.store("counts")?;
        let (count, last) = store
            .get(&key)?
            .and_then(|v| parse_count(&v))
            .unwrap_or((0, -1));
        if offset >= 0 && offset <= last {
            return Ok(());
        }
        let count = count + 1;
        store.put(&key, format!("{count}:{offset}").as_bytes())?;
        ctx.forward(Record {
            key: Some(key),
            value: Some(count.to_string().into_bytes()),
            timestamp: record.timestamp,
            headers: Vec::new(),
        });
        Ok(())
    }
}
