//! The three variants of the model server, as the tutorial has them:
//!
//! | variant  | written with      | serving store                  | models on restart |
//! |----------|-------------------|--------------------------------|-------------------|
//! | memory   | Processor API     | in-memory, not changelogged    | only new ones     |
//! | standard | DSL               | RocksDB, changelogged          | read again        |
//! | custom   | DSL               | custom file store, changelogged| read again        |

use crate::model_source::{ModelSource, MODELS_STORE};
use crate::serving::{ModelServing, ServerMetrics, SERVING_STORE};
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
                .add_sink("results", &topics.results, &["serving"])?;
            t
        }
        StoreVariant::Standard | StoreVariant::Custom => {
            let builder = StreamsBuilder::new();
            builder.add_store(SERVING_STORE, variant.store_kind());
            builder
                .stream::<(), Vec<u8>>(&topics.data)
                .process::<String, Vec<u8>>(serving, &[SERVING_STORE])
                .to(&topics.results);
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
