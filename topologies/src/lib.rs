//! ks-topologies: the model server on the engine, the engine adapter of [`ks_serving`].
//!
//! The serving core (models, the registry and its builder thread, the model message decoder,
//! results, statistics, topic names) is ks-serving, shared with as-server; this crate adapts it
//! to the engine and serves it over HTTP.
//!
//! - [`model_source`]: the global processor that turns model messages into builds.
//! - [`serving`]: the data processor: decode, swap in the newest model, score, keep the
//!   serving statistics (ks-serving's `ServingStats`) in the task's store, emit results.
//! - [`topology`]: the three variants (memory: Processor API; standard and custom: DSL).
//! - [`server`]: configuration and the running server (engine + HTTP); [`http`] its API
//!   (routes, peer forwarding, metrics rendering), written against [`queries::ServingQueries`].
//! - `bin/ks-server.rs`: the command line.

// Fully documented: held to it (the workspace only warns, for the crates not yet documented).
#![deny(missing_docs)]

mod error;
pub mod http;
pub mod model_source;
pub mod queries;
pub mod server;
pub mod serving;
pub mod topology;

pub use error::{Error, Result};
