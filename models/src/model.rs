//! The model-type-independent API: [`Model`] and its [`Prediction`]s.

use std::fmt;
use std::sync::Arc;

use ks_proto::ModelType;

use crate::error::{Error, Result};
use crate::onnx::OnnxModel;
use crate::pmml::PmmlModel;
use crate::record::{Record, Value};
use crate::tensorflow::{TfConfig, TfModel};

/// A loaded model, ready to score. Immutable after loading, so it can be shared in an
/// `Arc` by any number of scoring threads.
#[derive(Debug)]
pub struct Model {
    pub(crate) engine: Engine,
}

/// Closed set of supported model formats.
#[derive(Debug)]
pub(crate) enum Engine {
    Pmml(Box<PmmlModel>),
    Tensorflow(TfModel),
    Onnx(OnnxModel),
}

impl Model {
    /// Loads a model of the given type from its serialized bytes.
    pub fn from_bytes(model_type: ModelType, bytes: &[u8]) -> Result<Model> {
        match model_type {
            ModelType::Pmml => Model::pmml(bytes),
            ModelType::Tensorflow => Model::tensorflow(bytes, &TfConfig::default()),
            ModelType::Onnx => Model::onnx(bytes),
        }
    }

    /// An ONNX model; inputs and outputs are read from the graph (see [`crate::onnx`]).
    pub fn onnx(bytes: &[u8]) -> Result<Model> {
        Ok(Model {
            engine: Engine::Onnx(OnnxModel::from_bytes(bytes)?),
        })
    }

    pub fn pmml(bytes: &[u8]) -> Result<Model> {
        Ok(Model {
            engine: Engine::Pmml(Box::new(PmmlModel::from_bytes(bytes)?)),
        })
    }

    /// A TensorFlow graph with explicit input/output nodes and input field names.
    pub fn tensorflow(bytes: &[u8], config: &TfConfig) -> Result<Model> {
        Ok(Model {
            engine: Engine::Tensorflow(TfModel::from_bytes(bytes, config)?),
        })
    }

    /// Whether scoring many rows at once ([`Model::score_rows`]) is cheaper per row than one
    /// call each: a graph (TensorFlow, ONNX) runs a batch as one tensor, while PMML scores row
    /// by row either way.
    pub fn prefers_batches(&self) -> bool {
        matches!(self.engine, Engine::Tensorflow(_) | Engine::Onnx(_))
    }

    pub fn model_type(&self) -> ModelType {
        match self.engine {
            Engine::Pmml(_) => ModelType::Pmml,
            Engine::Tensorflow(_) => ModelType::Tensorflow,
            Engine::Onnx(_) => ModelType::Onnx,
        }
    }

    /// The record fields the model reads, in the order of [`Model::score_row`].
    pub fn input_fields(&self) -> &[String] {
        match &self.engine {
            Engine::Pmml(m) => m.input_fields(),
            Engine::Tensorflow(m) => m.input_fields(),
            Engine::Onnx(m) => m.input_fields(),
        }
    }

    /// For each input (in `input_fields()` order), whether the model reads it as a number;
    /// a caller holding text (a CSV cell) can parse those once, before scoring.
    pub fn numeric_inputs(&self) -> Vec<bool> {
        match &self.engine {
            Engine::Pmml(m) => m.numeric_inputs(),
            Engine::Tensorflow(m) => vec![true; m.input_fields().len()],
            Engine::Onnx(m) => vec![true; m.input_fields().len()],
        }
    }

    /// Output column names: the target (or `prediction`) first, then e.g. `probability(5)`.
    pub fn output_fields(&self) -> &[String] {
        match &self.engine {
            Engine::Pmml(m) => m.output_fields(),
            Engine::Tensorflow(m) => m.output_fields(),
            Engine::Onnx(m) => m.output_fields(),
        }
    }

    pub fn score(&self, record: &Record) -> Result<Prediction> {
        match &self.engine {
            Engine::Pmml(m) => m.score(record),
            Engine::Tensorflow(m) => m.score(record),
            Engine::Onnx(m) => m.score(record),
        }
    }

    /// Scores many records; TensorFlow runs them as one tensor, which is far cheaper per
    /// record than one call each.
    pub fn score_batch(&self, records: &[Record]) -> Result<Vec<Prediction>> {
        match &self.engine {
            Engine::Pmml(m) => records.iter().map(|r| m.score(r)).collect(),
            Engine::Tensorflow(m) => m.score_batch(records),
            Engine::Onnx(m) => m.score_batch(records),
        }
    }

    /// Fast path: numbers in `input_fields()` order (NaN = missing), no name lookups.
    #[inline]
    pub fn score_row(&self, row: &[f64]) -> Result<Prediction> {
        match &self.engine {
            Engine::Pmml(m) => m.score_row(row),
            Engine::Onnx(m) => {
                let mut v = m.score_rows(row)?;
                if v.len() != 1 {
                    return Err(Error::Input(format!("expected one row, got {}", v.len())));
                }
                v.pop().ok_or_else(|| Error::Input("empty row".into()))
            }
            Engine::Tensorflow(m) => {
                let mut v = m.score_rows(row)?;
                if v.len() != 1 {
                    return Err(Error::Input(format!("expected one row, got {}", v.len())));
                }
                v.pop().ok_or_else(|| Error::Input("empty row".into()))
            }
        }
    }

    /// Like [`Model::score_row`], but refills `out`, reusing its storage: a caller that
    /// scores many rows with one `Prediction` allocates nothing per row (PMML).
    #[inline]
    pub fn score_row_into(&self, row: &[f64], out: &mut Prediction) -> Result<()> {
        match &self.engine {
            Engine::Pmml(m) => m.score_row_into(row, out),
            Engine::Tensorflow(_) | Engine::Onnx(_) => {
                *out = self.score_row(row)?;
                Ok(())
            }
        }
    }

    /// Fast batch path: `rows` is row-major, `input_fields().len()` numbers per row.
    pub fn score_rows(&self, rows: &[f64]) -> Result<Vec<Prediction>> {
        let width = self.input_fields().len();
        match &self.engine {
            Engine::Pmml(m) => {
                if width == 0 || !rows.len().is_multiple_of(width) {
                    return Err(Error::Input(format!(
                        "{} values is not a multiple of the {width} inputs",
                        rows.len()
                    )));
                }
                rows.chunks(width).map(|r| m.score_row(r)).collect()
            }
            Engine::Tensorflow(m) => m.score_rows(rows),
            Engine::Onnx(m) => m.score_rows(rows),
        }
    }
}

/// The result of scoring one record: the primary prediction (a number for regression,
/// a class label for classification) and all named output columns.
#[derive(Clone)]
pub struct Prediction {
    /// Output column names, shared by every prediction of a model.
    names: Arc<[String]>,
    /// `values()[0]` is the primary prediction; aligned with `names`.
    values: Values,
}

/// Output values of a prediction: up to [`INLINE`] without a heap allocation (every
/// seed model has at most 7 output columns), more in a `Vec`.
#[derive(Debug, Clone)]
enum Values {
    Inline { len: u8, buf: [Value; INLINE] },
    Heap(Vec<Value>),
}

const INLINE: usize = 8;

impl Values {
    #[inline]
    fn new() -> Values {
        Values::Inline {
            len: 0,
            buf: Default::default(),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[Value] {
        match self {
            Values::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(&[]),
            Values::Heap(v) => v,
        }
    }

    #[inline(always)]
    fn push(&mut self, v: Value) {
        match self {
            Values::Inline { len, buf } => {
                if let Some(slot) = buf.get_mut(usize::from(*len)) {
                    *slot = v;
                    *len += 1;
                } else {
                    let mut heap = Vec::with_capacity(INLINE * 2);
                    heap.extend(buf.iter_mut().map(std::mem::take));
                    heap.push(v);
                    *self = Values::Heap(heap);
                }
            }
            Values::Heap(h) => h.push(v),
        }
    }

    #[inline]
    fn clear(&mut self) {
        match self {
            Values::Inline { len, buf } => {
                for v in buf.iter_mut().take(usize::from(*len)) {
                    *v = Value::Missing;
                }
                *len = 0;
            }
            Values::Heap(h) => h.clear(),
        }
    }
}

impl fmt::Debug for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prediction")
            .field("names", &self.names)
            .field("values", &self.values())
            .finish()
    }
}

impl PartialEq for Prediction {
    fn eq(&self, other: &Prediction) -> bool {
        self.names == other.names && self.values() == other.values()
    }
}

impl Default for Prediction {
    /// An empty prediction (no columns, the primary value missing); a buffer for
    /// [`Model::score_row_into`].
    fn default() -> Prediction {
        Prediction {
            names: Arc::from(Vec::new()),
            values: Values::new(),
        }
    }
}

impl Prediction {
    pub(crate) fn new(names: Arc<[String]>, values: Vec<Value>) -> Prediction {
        let mut p = Prediction {
            names,
            values: Values::new(),
        };
        if values.len() > INLINE {
            p.values = Values::Heap(values);
        } else {
            for v in values {
                p.values.push(v);
            }
        }
        p
    }

    /// Starts refilling this prediction for a model with the given output names: keeps
    /// the names when they are already the same `Arc`, drops the old values.
    #[inline]
    pub(crate) fn reset(&mut self, names: &Arc<[String]>) {
        if !Arc::ptr_eq(&self.names, names) {
            self.names = Arc::clone(names);
        }
        self.values.clear();
    }

    /// An empty prediction for a model with the given output names.
    #[inline]
    pub(crate) fn with_names(names: &Arc<[String]>) -> Prediction {
        Prediction {
            names: Arc::clone(names),
            values: Values::new(),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, v: Value) {
        self.values.push(v);
    }

    /// The primary prediction.
    pub fn value(&self) -> &Value {
        self.values().first().unwrap_or(&Value::Missing)
    }

    /// The primary prediction as a number (class labels that are numbers included).
    pub fn as_f64(&self) -> Option<f64> {
        self.value().as_f64()
    }

    /// All output columns, primary first, in `Model::output_fields()` order.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.names.iter().map(String::as_str).zip(self.values())
    }

    pub fn values(&self) -> &[Value] {
        self.values.as_slice()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values().get(i))
    }

    /// Class probabilities as (label, probability), read from `probability(<label>)` columns.
    pub fn probabilities(&self) -> impl Iterator<Item = (&str, f64)> {
        self.outputs().filter_map(|(n, v)| {
            let label = n.strip_prefix("probability(")?.strip_suffix(')')?;
            Some((label, v.as_f64()?))
        })
    }
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}
