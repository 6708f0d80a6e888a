//! TensorFlow frozen GraphDefs through tract. The graph is typed with a symbolic batch
//! dimension once, so one plan scores a single record or a whole batch per call.

use std::sync::Arc;

use tract_tensorflow::prelude::*;

use crate::error::{Error, Result};
use crate::record::{Record, Value};
use crate::Prediction;

/// Which graph nodes to feed and read, and how record fields map onto input columns.
/// An empty node name is discovered from the graph: the input is its one `Placeholder`,
/// the output its last node that no other node reads.
#[derive(Debug, Clone)]
pub struct TfConfig {
    /// The node fed with the `[N, fields]` float matrix (empty: the graph's placeholder).
    pub input_node: String,
    /// The node read as the `[N, classes]` output (empty: the graph's last op).
    pub output_node: String,
    /// Record field names, in input-column order.
    pub input_fields: Vec<String>,
}

impl Default for TfConfig {
    /// Input and output discovered from the graph (for the tutorial's wine graph
    /// `dense_1_input` `[N,11]` -> `dense_3/Sigmoid` `[N,9]`), the 11 wine fields as inputs.
    fn default() -> TfConfig {
        TfConfig {
            input_node: String::new(),
            output_node: String::new(),
            input_fields: ks_proto::WINE_FEATURES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

pub struct TfModel {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<String>,
    outputs: Arc<[String]>,
    width: usize,
    classes: usize,
    labels: Vec<Arc<str>>,
}

impl std::fmt::Debug for TfModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TfModel")
            .field("inputs", &self.inputs)
            .field("classes", &self.classes)
            .finish()
    }
}

fn tf_err(e: impl std::fmt::Display) -> Error {
    Error::Tensorflow(e.to_string())
}

/// The graph's input (its one `Placeholder`) and output (the last node no other node
/// reads), as named in the GraphDef.
pub fn discover_io(
    graph: &tract_tensorflow::tfpb::tensorflow::GraphDef,
) -> Result<(String, String)> {
    let placeholders: Vec<&str> = graph
        .node
        .iter()
        .filter(|n| n.op == "Placeholder")
        .map(|n| n.name.as_str())
        .collect();
    let input = match placeholders.as_slice() {
        [one] => one.to_string(),
        other => {
            return Err(Error::Tensorflow(format!(
                "expected one Placeholder to feed, the graph has {}",
                other.len()
            )))
        }
    };
    // `^name` is a control input, `name:1` the second output of `name`.
    let read: std::collections::HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .map(|i| {
            let i = i.trim_start_matches('^');
            i.split(':').next().unwrap_or(i)
        })
        .collect();
    let output = graph
        .node
        .iter()
        .rev()
        .find(|n| !read.contains(n.name.as_str()) && n.op != "Placeholder" && n.op != "Const")
        .map(|n| n.name.clone())
        .ok_or_else(|| Error::Tensorflow("the graph has no output op".into()))?;
    Ok((input, output))
}

impl TfModel {
    pub fn from_bytes(bytes: &[u8], config: &TfConfig) -> Result<TfModel> {
        if bytes.len() > crate::pmml::xml::MAX_BYTES {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit: crate::pmml::xml::MAX_BYTES,
            });
        }
        let width = config.input_fields.len();
        let (input_node, output_node) =
            if config.input_node.is_empty() || config.output_node.is_empty() {
                let graph =
                    std::panic::catch_unwind(|| tensorflow().proto_model_for_read(&mut &*bytes))
                        .map_err(|_| Error::Tensorflow("graph parsing panicked".into()))?
                        .map_err(tf_err)?;
                let (i, o) = discover_io(&graph)?;
                (
                    if config.input_node.is_empty() {
                        i
                    } else {
                        config.input_node.clone()
                    },
                    if config.output_node.is_empty() {
                        o
                    } else {
                        config.output_node.clone()
                    },
                )
            } else {
                (config.input_node.clone(), config.output_node.clone())
            };
        // tract reports malformed protobufs as errors, but a panic deep in an op
        // implementation must not take the server down with it.
        let built =
            std::panic::catch_unwind(|| -> TractResult<(Arc<TypedRunnableModel>, usize)> {
                let mut model = tensorflow().model_for_read(&mut &*bytes)?;
                model.set_input_names([input_node.as_str()])?;
                model.select_outputs_by_name([output_node.as_str()])?;
                let n = model.symbols.sym("N");
                model.set_input_fact(0, f32::fact([n.to_dim(), width.to_dim()]).into())?;
                let typed = model.into_optimized()?;
                let out = typed.output_fact(0)?;
                let classes = out
                    .shape
                    .last()
                    .and_then(|d| d.to_i64().ok())
                    .ok_or_else(|| {
                        TractError::msg(format!("output {output_node} has no fixed last dimension"))
                    })?;
                Ok((typed.into_runnable()?, classes as usize))
            });
        let (plan, classes) = match built {
            Ok(r) => r.map_err(tf_err)?,
            Err(_) => return Err(Error::Tensorflow("graph loading panicked".into())),
        };
        let mut outputs = vec!["prediction".to_string()];
        outputs.extend((0..classes).map(|i| format!("probability({i})")));
        Ok(TfModel {
            plan,
            inputs: config.input_fields.clone(),
            outputs: outputs.into(),
            width,
            classes,
            labels: (0..classes).map(|i| Arc::from(i.to_string())).collect(),
        })
    }

    pub fn input_fields(&self) -> &[String] {
        &self.inputs
    }

    pub fn output_fields(&self) -> &[String] {
        &self.outputs
    }

    /// Builds the row of one record; TF graphs have no notion of missing, so a missing or
    /// non-numeric input is an error.
    fn row(&self, record: &Record, out: &mut Vec<f32>) -> Result<()> {
        for name in &self.inputs {
            match record.get(name).and_then(Value::as_f64) {
                Some(v) => out.push(v as f32),
                None => return Err(Error::MissingValue(name.clone())),
            }
        }
        Ok(())
    }

    pub fn score_batch(&self, records: &[Record]) -> Result<Vec<Prediction>> {
        let mut flat = Vec::with_capacity(records.len() * self.width);
        for r in records {
            self.row(r, &mut flat)?;
        }
        self.score_rows_f32(flat, records.len())
    }

    /// Scores `rows.len() / width` rows laid out row-major in input-field order.
    pub fn score_rows(&self, rows: &[f64]) -> Result<Vec<Prediction>> {
        if self.width == 0 || !rows.len().is_multiple_of(self.width) {
            return Err(Error::Input(format!(
                "{} values is not a multiple of the {} inputs",
                rows.len(),
                self.width
            )));
        }
        let flat: Vec<f32> = rows.iter().map(|v| *v as f32).collect();
        self.score_rows_f32(flat, rows.len() / self.width)
    }

    /// The raw output matrix of a batch: `n` rows of `classes` values.
    pub fn run(&self, flat: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let input = Tensor::from_shape(&[n, self.width], &flat).map_err(tf_err)?;
        let out = self.plan.run(tvec!(input.into_tvalue())).map_err(tf_err)?;
        let t = out
            .first()
            .ok_or_else(|| Error::Tensorflow("graph produced no output".into()))?;
        let arr = t.to_plain_array_view::<f32>().map_err(tf_err)?;
        let view: Vec<f32> = arr.iter().copied().collect();
        if view.len() != n * self.classes {
            return Err(Error::Tensorflow(format!(
                "output has {} values, expected {} x {}",
                view.len(),
                n,
                self.classes
            )));
        }
        Ok(view)
    }

    fn score_rows_f32(&self, flat: Vec<f32>, n: usize) -> Result<Vec<Prediction>> {
        let out = self.run(flat, n)?;
        Ok(out
            .chunks(self.classes.max(1))
            .map(|probs| {
                let mut best = 0;
                for (i, p) in probs.iter().enumerate() {
                    if *p > probs[best] {
                        best = i;
                    }
                }
                let mut values = Vec::with_capacity(probs.len() + 1);
                // The class index is a label, like a PMML class: `5`, not `5.0`.
                values.push(
                    self.labels
                        .get(best)
                        .map(|l| Value::Text(Arc::clone(l)))
                        .unwrap_or(Value::Missing),
                );
                values.extend(probs.iter().map(|p| Value::Number(*p as f64)));
                Prediction::new(self.outputs.clone(), values)
            })
            .collect())
    }

    pub fn score(&self, record: &Record) -> Result<Prediction> {
        let mut flat = Vec::with_capacity(self.width);
        self.row(record, &mut flat)?;
        let mut v = self.score_rows_f32(flat, 1)?;
        v.pop()
            .ok_or_else(|| Error::Tensorflow("graph produced no row".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tutorial's graph names its nodes `dense_1_input` and `dense_3/Sigmoid`: both are
    /// found from the graph, not from a hard-wired default.
    #[test]
    fn wine_graph_input_and_output_are_discovered() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/optimized_WineQuality.pb"
        );
        let bytes = std::fs::read(path).expect("graph");
        let graph = tensorflow()
            .proto_model_for_read(&mut &*bytes)
            .expect("GraphDef");
        let (i, o) = discover_io(&graph).expect("discovered");
        assert_eq!(
            (i.as_str(), o.as_str()),
            ("dense_1_input", "dense_3/Sigmoid")
        );
        let mut two = graph.clone();
        let mut extra = two.node[0].clone();
        extra.op = "Placeholder".into();
        extra.name = "second".into();
        two.node.push(extra);
        assert!(matches!(discover_io(&two), Err(Error::Tensorflow(_))));
    }
}
