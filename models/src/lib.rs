//! ks-models: the scoring library of ks.
//!
//! A [`Model`] is built once from bytes plus a [`ModelType`] and then scores generic
//! [`Record`]s (field name -> [`Value`]) into [`Prediction`]s. Two engines:
//!
//! - PMML: an own evaluator (`pmml/`). The document is parsed once with hard limits
//!   (`pmml/xml.rs`), compiled into an evaluation plan with resolved field slots
//!   (`pmml/plan.rs`, `pmml/expr.rs`, `pmml/predicate.rs`), and each model type has its
//!   own file (`tree`, `regression`, `general`, `neural`, `mining`); `pmml/eval.rs`
//!   applies the MiningSchema, runs a model and derives its outputs.
//! - TensorFlow: frozen GraphDefs through tract (`tensorflow.rs`), batch-capable; input
//!   and output nodes discovered from the graph (its placeholder and its last op).
//! - ONNX: models through tract-onnx (`onnx.rs`), inputs and outputs discovered from the
//!   graph, batch-capable; output columns are `<output>[<i>]`.
//!
//! `bound.rs` binds a record schema (field names) to a model's inputs once, for scoring
//! records by position ([`Bound`]). `record.rs` holds [`Record`]/[`Value`], `model.rs` the [`Model`] facade, `error.rs`
//! the [`Error`] enum, and `bin/ks-score.rs` a CSV scoring CLI.
//!
//! ```
//! use ks_models::{Model, ModelType, Record};
//!
//! let pmml = br#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
//!   <DataDictionary>
//!     <DataField name="x" optype="continuous" dataType="double"/>
//!     <DataField name="y" optype="continuous" dataType="double"/>
//!   </DataDictionary>
//!   <RegressionModel functionName="regression">
//!     <MiningSchema>
//!       <MiningField name="x"/>
//!       <MiningField name="y" usageType="target"/>
//!     </MiningSchema>
//!     <RegressionTable intercept="1">
//!       <NumericPredictor name="x" coefficient="2"/>
//!     </RegressionTable>
//!   </RegressionModel>
//! </PMML>"#;
//! let model = Model::from_bytes(ModelType::Pmml, pmml)?;
//! let p = model.score(&Record::new().with("x", 3.0))?;
//! assert_eq!(p.as_f64(), Some(7.0));
//! assert_eq!(model.output_fields(), ["y"]);
//! # Ok::<(), ks_models::Error>(())
//! ```

mod bound;
mod error;
mod model;
pub mod onnx;
pub mod pmml;
mod record;
pub mod tensorflow;

pub use bound::Bound;
pub use error::{Error, Result};
pub use ks_proto::ModelType;
pub use model::{Model, Prediction};
pub use record::{Record, Value};
pub use tensorflow::TfConfig;
