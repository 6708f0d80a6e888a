//! ks-serving: the engine-free serving core shared by both model servers (ks-server on the
//! engine, as-server on tokio). It depends on ks-models and ks-proto only, so a server that
//! links it links neither the engine nor RocksDB.
//!
//! Layout:
//! - [`descriptor`]: the one `ModelDescriptor` decoder ([`descriptor::decode`]) with the one
//!   [`descriptor::read_location`], into a [`ModelUpdate`]; [`Origin`], where a message came from.
//! - [`model`]: [`ServedModel`], a model ready to score, and what `/models` says of it.
//! - [`registry`]: [`ModelRegistry`], the newest model per data type (a `DashMap`: no lock to
//!   poison), and the builder thread ([`start_builder`]) that builds models off the polling path.
//! - [`control`]: what a model-topic message asks for (its `ks.action` / `ks.role` headers).
//! - [`versions`]: the last K models of a data type, for rollback and promotion.
//! - [`challenger`]: shadow scoring's agreement figures and the automatic promotion policy.
//! - [`drift`]: input drift per field (baseline against the current window, PSI).
//! - [`result`]: [`ScoreResult`], one result on the results topic, and [`ResultJson`], the
//!   hot path's writer of the same JSON from borrowed parts.
//! - [`stats`]: [`ServingStats`], the serving statistics per data type.
//! - [`failure`]: [`FailureReport`], a rejected model or record for the errors topic.
//! - [`health`]: [`Health`], what `/health` answers.
//! - [`dashboard`]: the operator's page both servers serve at `/`, and what it polls.
//! - [`topics`]: [`Topics`], the topic names, and [`DEFAULT_DATA_TYPE`].
//!
//! ```
//! use ks_serving::{descriptor, Origin, ServedModel};
//! use ks_proto::{Message, MessageContent, ModelDescriptor, ModelType};
//!
//! let pmml = std::fs::read(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../data/winequalityLinearRegression.pmml"
//! ))?;
//! let message = ModelDescriptor {
//!     name: "linear".into(),
//!     description: String::new(),
//!     data_type: "wine".into(),
//!     modeltype: ModelType::Pmml as i32,
//!     message_content: Some(MessageContent::Data(pmml)),
//! };
//! let origin = Origin::new("models_models", 0, 7);
//! let decoded = descriptor::decode(&message.encode_to_vec(), &origin)?;
//! let served: ServedModel = decoded.update.build(ks_serving::now_ms())?;
//! assert_eq!((served.name.as_str(), served.version.as_str()), ("linear", "0:7"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// A new crate is held to complete docs (the workspace only warns, for the older crates).
#![deny(missing_docs)]

pub mod challenger;
pub mod control;
pub mod dashboard;
pub mod descriptor;
pub mod drift;
mod error;
pub mod failure;
pub mod health;
pub mod model;
pub mod registry;
pub mod result;
pub mod stats;
pub mod topics;
pub mod versions;
pub mod windows;

pub use descriptor::{ModelMeta, ModelUpdate, Origin};
pub use error::{Error, Result};
pub use failure::{FailureKind, FailureReport};
pub use health::Health;
pub use model::{ModelInfo, ServedModel};
pub use registry::{start_builder, BuildFailures, BuildJob, Job, LifecycleOptions, ModelRegistry};
pub use result::{value_json, ResultJson, ScoreResult, ShadowPrediction};
pub use stats::ServingStats;
pub use topics::{Topics, DEFAULT_DATA_TYPE};

pub use ks_proto::now_ms;
