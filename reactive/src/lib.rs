//! ks-reactive: `as-server`, the tutorial's two Akka Streams model servers rebuilt on tokio.
//!
//! Layout:
//! - [`kafka`]: the data and model readers (rdkafka `StreamConsumer`s into bounded channels)
//!   and the sink that writes results, then stores offsets (at-least-once).
//! - [`model`]: model messages decoded and built into ks-topologies' `ServedModel`; the
//!   persisted model format.
//! - [`scoring`]: one record scored into ks-topologies' `ScoreResult` (or an errors-topic
//!   record), statistics in ks-topologies' `ServingStats`.
//! - [`stage`]: `--mode stage`, the custom stream stage with current and pending models.
//! - [`actor`]: `--mode actor`, the router and per-data-type actors with persisted state.
//! - [`framed`]: crash-safe, CRC-checked state files.
//! - [`http`]: `/state`, `/state/{dataType}`, `/models`, `/health`.
//! - [`server`]: configuration and the running server; `bin/as-server.rs` the command line.

// Fully documented: held to it (the workspace only warns, for the crates not yet documented).
#![deny(missing_docs)]

pub mod actor;
mod error;
pub mod framed;
pub mod http;
pub mod kafka;
pub mod model;
pub mod scoring;
pub mod server;
pub mod stage;

pub use error::{Error, Result};
