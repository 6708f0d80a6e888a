//! Test support, not product API: the windowed count the `ks-windowed-count` test binary runs
//! and `windowed_count_survives_kill` checks. Included by path from
//! `src/bin/ks-windowed-count.rs` and from the tests that use it.
#![allow(dead_code)]

use ks_engine::dsl::{Materialized, StreamsBuilder, TimeWindows};
use ks_engine::stores::StoreKind;
use ks_engine::{Result, Topology};
use std::time::Duration;

/// The store of the count (its changelog is `<application id>-windowed-counts-changelog`).
pub const STORE: &str = "windowed-counts";

/// `input` (String keys and values) → `group_by_key().windowed_by(tumbling windows of
/// `size`, `grace`).count()` in a store of `kind` → `output`, written as Kafka Streams writes a
/// windowed table: key = key bytes ++ 8-byte big-endian window start, value = the count as an
/// 8-byte big-endian long.
pub fn windowed_count_topology(
    input: &str,
    output: &str,
    kind: StoreKind,
    size: Duration,
    grace: Duration,
) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(input)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(size, grace))
        .count(Materialized::as_(STORE, kind))
        .to_stream()
        .to(output);
    builder.build()
}
