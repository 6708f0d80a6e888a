//! ks-topologies: the model server.
//!
//! - [`registry`]: built models per data type, swapped whole; the builder thread that builds
//!   them off the polling path.
//! - [`model_source`]: the global processor that turns model messages into builds.
//! - [`serving`]: the data processor: decode, swap in the newest model, score, keep the
//!   serving statistics ([`stats`]) in the task's store, emit results.
//! - [`topology`]: the three variants (memory: Processor API; standard and custom: DSL).
//! - [`server`]: configuration and the running server (engine + HTTP); [`http`] its routes,
//!   written against [`queries::ServingQueries`].
//! - `bin/ks-server.rs`: the command line.

mod error;
pub mod http;
pub mod model_source;
pub mod queries;
pub mod registry;
pub mod server;
pub mod serving;
pub mod stats;
pub mod topology;

pub use error::{Error, Result};
