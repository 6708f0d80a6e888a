//! The three variants of the model server, as the tutorial has them:
//!
//! | variant  | written with      | serving store                  | models on restart |
//! |----------|-------------------|--------------------------------|-------------------|
//! | memory   | Processor API     | in-memory, not changelogged    | only new ones     |
//! | standard | DSL               | RocksDB, changelogged          | read again        |
//! | custom   | DSL               | custom file store, changelogged| read again        |
//!
//! Results are keyed and placed so they spread over the results topic as the input is spread
//! over the data topic: each result keeps its input record's key (keyless input: keyless
//! results) and goes to the partition its input came from ([`SourcePartition`]; modulo the
//! results topic's partition count if it has fewer). One input partition's results thus stay in
//! order in one results partition, and a results topic partitioned like the data topic takes
//! each partition's share, where keying every result by its data type put them all in one.

use crate::model_source::{ModelSource, MODELS_STORE};
use crate::serving::{ModelServing, ServerMetrics, SCORE_WINDOWS_STORE, SERVING_STORE};
use crate::{Error, Result};
use ks_engine::dsl::StreamsBuilder;
use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{GlobalReset, Topology};
use ks_serving::control::ControlSink;
pub use ks_serving::Topics;
use ks_serving::{BuildFailures, Job, ModelRegistry};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// `--store`: which variant runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreVariant {
    /// Processor API, in-memory store, no changelog.
    Memory,
    /// DSL, RocksDB store, changelogged.
    Standard,
    /// DSL, custom file store, changelogged.
    Custom,
}

impl StoreVariant {
    /// The store kind of the serving store.
    pub fn store_kind(self) -> StoreKind {
        match self {
            StoreVariant::Memory => StoreKind::InMemory,
            StoreVariant::Standard => StoreKind::RocksDb,
            StoreVariant::Custom => StoreKind::File,
        }
    }

    /// `memory`, `standard` or `custom`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreVariant::Memory => "memory",
            StoreVariant::Standard => "standard",
            StoreVariant::Custom => "custom",
        }
    }
}

impl std::str::FromStr for StoreVariant {
    type Err = Error;
    fn from_str(s: &str) -> Result<StoreVariant> {
        match s {
            "memory" => Ok(StoreVariant::Memory),
            "standard" => Ok(StoreVariant::Standard),
            "custom" => Ok(StoreVariant::Custom),
            _ => Err(Error::InvalidConfig(format!(
                "--store {s:?}: expected memory, standard or custom"
            ))),
        }
    }
}

/// The sink's partitioner of the results: the input record's partition (modulo the results
/// topic's partition count), so results stay in input order per partition and spread as the
/// input does. A result written without an input record (a punctuation) is left to the
/// producer: by key, or spread for keyless ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourcePartition;

impl ks_engine::StreamPartitioner for SourcePartition {
    fn partition(&self, _topic: &str, _record: &ks_engine::Record, _n: i32) -> Option<i32> {
        None
    }

    fn partition_from(
        &self,
        _topic: &str,
        _record: &ks_engine::Record,
        num_partitions: i32,
        source: Option<&ks_engine::RecordMetadata>,
    ) -> Option<i32> {
        let source = source?;
        (num_partitions > 0 && source.partition >= 0).then(|| source.partition % num_partitions)
    }
}

/// What the processors share with the server.
#[derive(Clone)]
pub struct Wiring {
    /// The built models.
    pub registry: Arc<ModelRegistry>,
    /// The process-wide serving counters.
    pub metrics: Arc<ServerMetrics>,
    /// Where model messages go to be built (and control messages to be applied).
    pub builder: SyncSender<Job>,
    /// Where rejected models are reported.
    pub failures: Arc<dyn BuildFailures>,
    /// Where automatic promotions are published (the model topic).
    pub control: Option<Arc<dyn ControlSink>>,
}

/// The topology of `variant` over `topics`.
pub fn build(variant: StoreVariant, topics: &Topics, wiring: &Wiring) -> Result<Topology> {
    let serving = {
        let (registry, metrics) = (wiring.registry.clone(), wiring.metrics.clone());
        let control = wiring.control.clone();
        supplier(move || {
            ModelServing::new(registry.clone(), metrics.clone()).with_control(control.clone())
        })
    };
    let models = {
        let (builder, failures) = (wiring.builder.clone(), wiring.failures.clone());
        supplier(move || ModelSource {
            builder: builder.clone(),
            failures: failures.clone(),
        })
    };
    let mut topology = match variant {
        StoreVariant::Memory => {
            let mut t = Topology::new();
            t.add_source("data", &[&topics.data])?
                .add_processor("serving", serving, &["data"])?
                .add_state_store(
                    StoreSpec::new(SERVING_STORE, StoreKind::InMemory).with_logging(false),
                    &["serving"],
                )?
                .add_state_store(
                    StoreSpec::new(SCORE_WINDOWS_STORE, StoreKind::InMemory).with_logging(false),
                    &["serving"],
                )?
                .add_sink_with_partitioner(
                    "results",
                    &topics.results,
                    Some(Arc::new(SourcePartition)),
                    &["serving"],
                )?;
            t
        }
        StoreVariant::Standard | StoreVariant::Custom => {
            let builder = StreamsBuilder::new();
            builder.add_store(SERVING_STORE, variant.store_kind());
            builder.add_store(SCORE_WINDOWS_STORE, variant.store_kind());
            builder
                .stream::<(), Vec<u8>>(&topics.data)
                .process::<Vec<u8>, Vec<u8>>(serving, &[SERVING_STORE, SCORE_WINDOWS_STORE])
                .to_with_partitioner(&topics.results, SourcePartition);
            builder.build()?
        }
    };
    // Models reach every instance: the model topic is a global store's source. The memory
    // variant keeps nothing across restarts, so it also replays no old model.
    let reset = match variant {
        StoreVariant::Memory => GlobalReset::Latest,
        _ => GlobalReset::Earliest,
    };
    topology.add_global_store_with_reset(
        StoreSpec::new(MODELS_STORE, StoreKind::InMemory).with_logging(false),
        "models-source",
        &topics.models,
        "models-processor",
        models,
        reset,
    )?;
    Ok(topology)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ks_engine::{Record, RecordMetadata, StreamPartitioner};

    #[test]
    fn results_go_to_their_inputs_partition() {
        let r = Record::new(Some(b"k".to_vec()), None, 0);
        let from = |partition| RecordMetadata {
            topic: "data".into(),
            partition,
            offset: 7,
        };
        let p = SourcePartition;
        assert_eq!(p.partition_from("results", &r, 4, Some(&from(3))), Some(3));
        assert_eq!(p.partition_from("results", &r, 4, Some(&from(0))), Some(0));
        // Fewer results partitions than data partitions: wrapped, still stable per input.
        assert_eq!(p.partition_from("results", &r, 2, Some(&from(3))), Some(1));
        // No input (a punctuation's output): the producer decides.
        assert_eq!(p.partition_from("results", &r, 4, None), None);
        assert_eq!(p.partition("results", &r, 4), None);
        assert_eq!(p.partition_from("results", &r, 0, Some(&from(1))), None);
    }
}
