//! Records given by field name, bound to a model's inputs once per schema.
//!
//! A [`Bound`] is made by [`Model::bind`] from the names of a record schema's fields (a CSV
//! header, a topic's record type) in the order their values come in. It remembers, for each of
//! the model's inputs, which of those fields holds it, so that scoring a record reads its inputs
//! by position: no name lookups per record. [`Bound::score_batch_into`] scores many records
//! (row-major, one value per schema field) into a reused `Vec<Prediction>`; for PMML it
//! allocates nothing per record (each `Prediction` keeps its values inline and is refilled).
//!
//! Results are those of [`Model::score`] on the same record: a PMML record whose inputs are
//! all numbers or missing takes the numeric fast path of [`Model::score_row`], any other
//! (text values, e.g. categories) the generic evaluator with the MiningSchema's treatments.
//!
//! ```
//! use ks_models::{Model, ModelType, Prediction, Value};
//! let pmml = br#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
//!   <DataDictionary>
//!     <DataField name="x" optype="continuous" dataType="double"/>
//!     <DataField name="y" optype="continuous" dataType="double"/>
//!   </DataDictionary>
//!   <RegressionModel functionName="regression">
//!     <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
//!     <RegressionTable intercept="1"><NumericPredictor name="x" coefficient="2"/></RegressionTable>
//!   </RegressionModel>
//! </PMML>"#;
//! let model = Model::from_bytes(ModelType::Pmml, pmml)?;
//! // The schema has a field the model does not read; `x` is its second field.
//! let bound = model.bind(&["id", "x"]);
//! let rows = [Value::text("a"), Value::Number(3.0), Value::text("b"), Value::Number(4.0)];
//! let mut out: Vec<Prediction> = Vec::new();
//! bound.score_batch_into(&rows, &mut out)?;
//! assert_eq!(out.iter().map(|p| p.as_f64()).collect::<Vec<_>>(), [Some(7.0), Some(9.0)]);
//! # Ok::<(), ks_models::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::model::{Engine, Model};
use crate::record::Value;
use crate::Prediction;

/// A model bound to a record schema: see the module docs.
#[derive(Debug, Clone)]
pub struct Bound<'m> {
    model: &'m Model,
    /// Number of fields of the schema: values per record.
    width: usize,
    /// For each model input (in `input_fields()` order), the schema field that holds it;
    /// `None`: the schema has no such field, the input is missing.
    columns: Vec<Option<usize>>,
}

impl Model {
    /// Binds the model's inputs to a record schema, the names of its fields in the order
    /// their values come in. Fields the model does not read are skipped; inputs the schema
    /// lacks are missing (PMML applies its missing-value treatment, graphs fail).
    pub fn bind<S: AsRef<str>>(&self, fields: &[S]) -> Bound<'_> {
        let columns = self
            .input_fields()
            .iter()
            .map(|name| fields.iter().position(|f| f.as_ref() == name))
            .collect();
        Bound {
            model: self,
            width: fields.len(),
            columns,
        }
    }
}

impl<'m> Bound<'m> {
    /// The model.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Values per record: the number of fields of the schema.
    pub fn width(&self) -> usize {
        self.width
    }

    /// For each model input, the schema field holding it (`None`: absent).
    pub fn columns(&self) -> &[Option<usize>] {
        &self.columns
    }

    /// Scores one record given as its values in schema order.
    pub fn score(&self, values: &[Value]) -> Result<Prediction> {
        let mut out = Prediction::default();
        self.score_into(values, &mut out)?;
        Ok(out)
    }

    /// [`Bound::score`] into `out`, reusing its storage.
    pub fn score_into(&self, values: &[Value], out: &mut Prediction) -> Result<()> {
        self.check_width(values.len())?;
        match &self.model.engine {
            Engine::Pmml(m) => {
                let mut scratch = Vec::new();
                m.score_bound_into(&self.columns, values, &mut scratch, out)
            }
            Engine::Tensorflow(_) | Engine::Onnx(_) => {
                let mut row = Vec::with_capacity(self.columns.len());
                self.gather(values, &mut row)?;
                self.model.score_row_into(&row, out)
            }
        }
    }

    /// Scores `rows.len() / width()` records laid out row-major in schema order into `out`
    /// (resized to one prediction per record; its predictions are refilled, so a caller that
    /// reuses `out` allocates nothing per record with PMML). Graphs run the batch as one tensor.
    pub fn score_batch_into(&self, rows: &[Value], out: &mut Vec<Prediction>) -> Result<()> {
        if self.width == 0 {
            return Err(Error::Input("a record schema without fields".into()));
        }
        if !rows.len().is_multiple_of(self.width) {
            return Err(Error::Input(format!(
                "{} values is not a multiple of the {} schema fields",
                rows.len(),
                self.width
            )));
        }
        let n = rows.len() / self.width;
        match &self.model.engine {
            Engine::Pmml(m) => {
                out.truncate(n);
                out.resize_with(n, Prediction::default);
                let mut scratch = Vec::with_capacity(self.columns.len());
                for (record, p) in rows.chunks_exact(self.width).zip(out.iter_mut()) {
                    m.score_bound_into(&self.columns, record, &mut scratch, p)?;
                }
                Ok(())
            }
            Engine::Tensorflow(_) | Engine::Onnx(_) => {
                let mut flat = Vec::with_capacity(n * self.columns.len());
                for record in rows.chunks_exact(self.width) {
                    self.gather(record, &mut flat)?;
                }
                *out = self.model.score_rows(&flat)?;
                Ok(())
            }
        }
    }

    fn check_width(&self, n: usize) -> Result<()> {
        if n != self.width {
            return Err(Error::Input(format!(
                "expected {} values in schema order, got {n}",
                self.width
            )));
        }
        Ok(())
    }

    /// A graph's numeric inputs of one record, appended to `row`.
    fn gather(&self, values: &[Value], row: &mut Vec<f64>) -> Result<()> {
        let names = self.model.input_fields();
        for (i, col) in self.columns.iter().enumerate() {
            match col.and_then(|c| values.get(c)).and_then(Value::as_f64) {
                Some(x) => row.push(x),
                None => {
                    let name = names.get(i).cloned().unwrap_or_default();
                    return Err(Error::MissingValue(name));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelType, Record};

    fn seed(name: &str) -> Model {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data")
            .join(name);
        Model::from_bytes(ModelType::Pmml, &std::fs::read(path).expect("seed")).expect("loads")
    }

    #[test]
    fn bound_scoring_equals_scoring_by_name() {
        let m = seed("winequalityDecisionTreeClassification.pmml");
        // Reversed, with an extra field and one input left out.
        let mut fields: Vec<String> = m.input_fields().iter().rev().cloned().collect();
        fields.insert(3, "extra".into());
        let dropped = fields.remove(0);
        let bound = m.bind(&fields);
        assert_eq!(bound.columns().iter().filter(|c| c.is_none()).count(), 1);
        let mut rows = Vec::new();
        let mut records = Vec::new();
        for k in 0..20 {
            let mut r = Record::new();
            for (i, f) in fields.iter().enumerate() {
                let v = match (k + i) % 7 {
                    0 => Value::Missing,
                    1 => Value::text(&format!("{}", (k + i) as f64 / 3.0)),
                    _ => Value::Number((k * 3 + i) as f64 / 5.0),
                };
                r.insert(f.clone(), v.clone());
                rows.push(v);
            }
            assert!(r.get(&dropped).is_none());
            records.push(r);
        }
        let mut out = vec![Prediction::default(); 3];
        bound.score_batch_into(&rows, &mut out).expect("scores");
        assert_eq!(out.len(), records.len());
        for (r, p) in records.iter().zip(&out) {
            assert_eq!(p, &m.score(r).expect("scores"));
        }
        let one = bound.score(&rows[..fields.len()]).expect("scores");
        assert_eq!(one, out[0]);
    }

    #[test]
    fn wrong_widths_are_errors() {
        let m = seed("winequalityLinearRegression.pmml");
        let bound = m.bind(&["alcohol", "pH"]);
        let mut out = Vec::new();
        assert!(matches!(
            bound.score_batch_into(&[Value::Number(1.0)], &mut out),
            Err(Error::Input(_))
        ));
        assert!(matches!(bound.score(&[]), Err(Error::Input(_))));
        assert!(matches!(
            m.bind::<&str>(&[]).score_batch_into(&[], &mut out),
            Err(Error::Input(_))
        ));
    }
}
