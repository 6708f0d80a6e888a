//! ONNX models through tract-onnx. Inputs and outputs are discovered from the graph:
//!
//! - every graph input (initializers excluded) is a float or double tensor of shape `[N]`,
//!   `[N, 1]` or `[N, k]` with `N` the batch; an input of width 1 reads the record field of
//!   its own name (skl2onnx's one-input-per-column export), a wider one reads `k` fields
//!   named by the model's `ks.input_fields` metadata (comma separated) when it has exactly
//!   `k` names and the graph has one input, else `<input>[<i>]`;
//! - every graph output is a tensor with the batch first; it becomes one column per element
//!   of a row, named `<output>[<i>]` (`label[0]`, `probabilities[3]`). Integer, boolean and
//!   string elements are labels (text, `5` not `5.0`), floats numbers. The first column is
//!   the primary prediction. Sequence and map outputs (skl2onnx's ZipMap) are rejected at
//!   load: export classifiers with `zipmap=False`.
//!
//! The graph is typed once with a symbolic batch dimension, so one plan scores a single
//! record or a whole batch per call.
//!
//! ```
//! use ks_models::{Model, ModelType, Record};
//! use ks_proto::WineRecord;
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/onnx/onnx_rf_classifier.onnx");
//! let model = Model::from_bytes(ModelType::Onnx, &std::fs::read(path)?)?;
//! assert_eq!(model.output_fields()[..2], ["label[0]", "probabilities[0]"]);
//! let wine = WineRecord::from_csv_line("7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4", "wine")?;
//! let p = model.score(&Record::from_wine(&wine))?;
//! assert_eq!(p.to_string(), "5");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tract_onnx::pb;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::prelude::*;

use crate::error::{Error, Result};
use crate::record::{Record, Value};
use crate::Prediction;

/// The metadata key naming the record fields of a single wide input, comma separated.
pub const INPUT_FIELDS_KEY: &str = "ks.input_fields";

/// ONNX `TensorProto.DataType` codes of the input element types we feed.
const ONNX_FLOAT: i32 = 1;
const ONNX_DOUBLE: i32 = 11;

/// One graph input: its name, its width per row and whether it is rank 1 (`[N]`).
#[derive(Debug, Clone)]
struct Input {
    name: String,
    width: usize,
    rank1: bool,
    double: bool,
}

/// A loaded ONNX graph, typed for a symbolic batch and ready to run.
pub struct OnnxModel {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<Input>,
    /// Record fields, flattened over the inputs in graph order.
    fields: Vec<String>,
    outputs: Arc<[String]>,
    /// Graph output names and elements per row of each.
    output_names: Vec<String>,
    output_widths: Vec<usize>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("fields", &self.fields)
            .field("outputs", &self.outputs)
            .finish()
    }
}

fn onnx_err(e: impl std::fmt::Display) -> Error {
    Error::Onnx(e.to_string())
}

/// The declared tensor type of a graph value: element type and dims (`None` = symbolic).
fn tensor_type(v: &pb::ValueInfoProto) -> Result<(i32, Vec<Option<i64>>)> {
    let Some(TypeValue::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(Error::Onnx(format!(
            "`{}` is not a tensor (sequence or map outputs such as ZipMap are not supported; \
             export classifiers with zipmap=False)",
            v.name
        )));
    };
    let dims = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) => Some(n),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((t.elem_type, dims))
}

/// Reads a graph input's declared type into an [`Input`].
fn input_of(v: &pb::ValueInfoProto) -> Result<Input> {
    let (elem, dims) = tensor_type(v)?;
    let double = match elem {
        ONNX_FLOAT => false,
        ONNX_DOUBLE => true,
        other => {
            return Err(Error::Onnx(format!(
                "input `{}` has element type {other}; only float and double inputs are fed",
                v.name
            )))
        }
    };
    let (width, rank1) = match dims.as_slice() {
        [_] => (1, true),
        [_, Some(k)] if *k > 0 => (
            usize::try_from(*k).map_err(|_| onnx_err(format!("input `{}` is too wide", v.name)))?,
            false,
        ),
        _ => {
            return Err(Error::Onnx(format!(
                "input `{}` has shape {dims:?}; expected [N] or [N, k] with a fixed k",
                v.name
            )))
        }
    };
    Ok(Input {
        name: v.name.clone(),
        width,
        rank1,
        double,
    })
}

/// The record fields the inputs read, in graph order (see the module doc).
fn fields_of(inputs: &[Input], proto: &pb::ModelProto) -> Vec<String> {
    let named: Option<Vec<String>> = proto
        .metadata_props
        .iter()
        .find(|e| e.key == INPUT_FIELDS_KEY)
        .map(|e| e.value.split(',').map(|s| s.trim().to_string()).collect());
    let mut fields = Vec::new();
    for input in inputs {
        match &named {
            _ if input.width == 1 => fields.push(input.name.clone()),
            Some(n) if inputs.len() == 1 && n.len() == input.width => fields.extend(n.clone()),
            _ => fields.extend((0..input.width).map(|i| format!("{}[{i}]", input.name))),
        }
    }
    fields
}

impl OnnxModel {
    /// Parses, types and optimizes the graph; every failure is an [`Error`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<OnnxModel> {
        if bytes.len() > crate::pmml::xml::MAX_BYTES {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit: crate::pmml::xml::MAX_BYTES,
            });
        }
        // tract reports malformed protobufs as errors, but a panic deep in an op
        // implementation must not take the server down with it.
        match std::panic::catch_unwind(|| OnnxModel::load(bytes)) {
            Ok(r) => r,
            Err(_) => Err(Error::Onnx("model loading panicked".into())),
        }
    }

    fn load(bytes: &[u8]) -> Result<OnnxModel> {
        let framework = tract_onnx::onnx();
        let proto = framework
            .proto_model_for_read(&mut &*bytes)
            .map_err(onnx_err)?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| Error::Onnx("the model has no graph".into()))?;
        let initialized: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|v| !initialized.contains(v.name.as_str()))
            .map(input_of)
            .collect::<Result<Vec<_>>>()?;
        if inputs.is_empty() {
            return Err(Error::Onnx("the graph has no input".into()));
        }
        if graph.output.is_empty() {
            return Err(Error::Onnx("the graph has no output".into()));
        }
        let output_names = graph
            .output
            .iter()
            .map(|v| tensor_type(v).map(|_| v.name.clone()))
            .collect::<Result<Vec<_>>>()?;
        let fields = fields_of(&inputs, &proto);

        let mut model = framework.model_for_proto_model(&proto).map_err(onnx_err)?;
        let outlets = model.input_outlets().map_err(onnx_err)?.to_vec();
        if outlets.len() != inputs.len() {
            return Err(Error::Onnx(format!(
                "tract sees {} inputs, the graph declares {}",
                outlets.len(),
                inputs.len()
            )));
        }
        let n = model.symbols.sym("N");
        for (i, (outlet, input)) in outlets.iter().zip(&inputs).enumerate() {
            let name = &model.node(outlet.node).name;
            if *name != input.name {
                return Err(Error::Onnx(format!(
                    "input {i} is `{name}` in tract, `{}` in the graph",
                    input.name
                )));
            }
            let dt = if input.double {
                f64::datum_type()
            } else {
                f32::datum_type()
            };
            let fact = if input.rank1 {
                InferenceFact::dt_shape(dt, [n.to_dim()])
            } else {
                InferenceFact::dt_shape(dt, [n.to_dim(), input.width.to_dim()])
            };
            model.set_input_fact(i, fact).map_err(onnx_err)?;
        }
        let typed = model.into_optimized().map_err(onnx_err)?;
        let mut columns = Vec::new();
        let mut output_widths = Vec::new();
        for (i, name) in output_names.iter().enumerate() {
            let fact = typed.output_fact(i).map_err(onnx_err)?;
            let dims = fact.shape.dims();
            let width = dims
                .iter()
                .skip(1)
                .try_fold(1usize, |acc, d| {
                    let d = usize::try_from(d.to_i64().ok()?).ok()?;
                    acc.checked_mul(d)
                })
                .filter(|_| !dims.is_empty())
                .ok_or_else(|| {
                    Error::Onnx(format!(
                        "output `{name}` has shape {:?}; expected the batch first and fixed \
                         dimensions after it",
                        fact.shape
                    ))
                })?;
            columns.extend((0..width).map(|j| format!("{name}[{j}]")));
            output_widths.push(width);
        }
        if columns.is_empty() {
            return Err(Error::Onnx("the graph's outputs have no elements".into()));
        }
        Ok(OnnxModel {
            plan: typed.into_runnable().map_err(onnx_err)?,
            inputs,
            fields,
            outputs: columns.into(),
            output_names,
            output_widths,
        })
    }

    /// The record fields read, in input-column order.
    pub fn input_fields(&self) -> &[String] {
        &self.fields
    }

    /// The output columns, `<output>[<i>]`.
    pub fn output_fields(&self) -> &[String] {
        &self.outputs
    }

    /// Appends one record's inputs; ONNX graphs here have no notion of missing, so a
    /// missing or non-numeric input is an error.
    fn row(&self, record: &Record, out: &mut Vec<f64>) -> Result<()> {
        for name in &self.fields {
            match record.get(name).and_then(Value::as_f64) {
                Some(v) => out.push(v),
                None => return Err(Error::MissingValue(name.clone())),
            }
        }
        Ok(())
    }

    /// Scores one record.
    pub fn score(&self, record: &Record) -> Result<Prediction> {
        let mut flat = Vec::with_capacity(self.fields.len());
        self.row(record, &mut flat)?;
        let mut v = self.run(&flat, 1)?;
        v.pop()
            .ok_or_else(|| Error::Onnx("graph produced no row".into()))
    }

    /// Scores records as one batch tensor per input.
    pub fn score_batch(&self, records: &[Record]) -> Result<Vec<Prediction>> {
        let mut flat = Vec::with_capacity(records.len() * self.fields.len());
        for r in records {
            self.row(r, &mut flat)?;
        }
        self.run(&flat, records.len())
    }

    /// Scores `rows.len() / input_fields().len()` rows laid out row-major.
    pub fn score_rows(&self, rows: &[f64]) -> Result<Vec<Prediction>> {
        let width = self.fields.len();
        if width == 0 || !rows.len().is_multiple_of(width) {
            return Err(Error::Input(format!(
                "{} values is not a multiple of the {width} inputs",
                rows.len()
            )));
        }
        self.run(rows, rows.len() / width)
    }

    /// Splits the row-major `flat` rows into one tensor per graph input and runs the plan.
    fn run(&self, flat: &[f64], n: usize) -> Result<Vec<Prediction>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let width = self.fields.len();
        let mut tensors = TVec::new();
        let mut offset = 0;
        for input in &self.inputs {
            let mut shape = vec![n];
            if !input.rank1 {
                shape.push(input.width);
            }
            let cols = offset..offset + input.width;
            let values = flat
                .chunks(width)
                .flat_map(|row| row.get(cols.clone()).unwrap_or(&[]).iter().copied());
            let tensor = if input.double {
                Tensor::from_shape(&shape, &values.collect::<Vec<f64>>())
            } else {
                Tensor::from_shape(&shape, &values.map(|v| v as f32).collect::<Vec<f32>>())
            }
            .map_err(onnx_err)?;
            tensors.push(tensor.into_tvalue());
            offset += input.width;
        }
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| self.plan.run(tensors)))
            .map_err(|_| Error::Onnx("graph evaluation panicked".into()))?
            .map_err(onnx_err)?;
        if out.len() != self.output_widths.len() {
            return Err(Error::Onnx(format!(
                "graph produced {} outputs, expected {}",
                out.len(),
                self.output_widths.len()
            )));
        }
        let mut columns = Vec::with_capacity(out.len());
        for ((t, w), name) in out.iter().zip(&self.output_widths).zip(&self.output_names) {
            let cells = cells(t)?;
            if cells.len() != n * w {
                return Err(Error::Onnx(format!(
                    "output of `{name}` has {} values, expected {n} x {w}",
                    cells.len()
                )));
            }
            columns.push(cells);
        }
        Ok((0..n)
            .map(|r| {
                let mut values = Vec::with_capacity(self.outputs.len());
                for (cells, w) in columns.iter().zip(&self.output_widths) {
                    values.extend(cells.get(r * w..(r + 1) * w).unwrap_or(&[]).iter().cloned());
                }
                Prediction::new(Arc::clone(&self.outputs), values)
            })
            .collect())
    }
}

/// A graph output's elements as values: floats as numbers, the rest as labels.
fn cells(t: &Tensor) -> Result<Vec<Value>> {
    fn labels<T: Datum + std::fmt::Display>(t: &Tensor) -> Result<Vec<Value>> {
        Ok(t.to_plain_array_view::<T>()
            .map_err(onnx_err)?
            .iter()
            .map(|v| Value::text(&v.to_string()))
            .collect())
    }
    let dt = t.datum_type();
    if dt == f32::datum_type() {
        Ok(t.to_plain_array_view::<f32>()
            .map_err(onnx_err)?
            .iter()
            .map(|v| Value::Number(f64::from(*v)))
            .collect())
    } else if dt == f64::datum_type() {
        Ok(t.to_plain_array_view::<f64>()
            .map_err(onnx_err)?
            .iter()
            .map(|v| Value::Number(*v))
            .collect())
    } else if dt == i64::datum_type() {
        labels::<i64>(t)
    } else if dt == i32::datum_type() {
        labels::<i32>(t)
    } else if dt == bool::datum_type() {
        labels::<bool>(t)
    } else if dt == String::datum_type() {
        labels::<String>(t)
    } else {
        Err(Error::Onnx(format!(
            "output element type {dt:?} is not supported"
        )))
    }
}
