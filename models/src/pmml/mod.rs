//! The PMML evaluator: a document is parsed once (`xml`), compiled into a `plan::Plan`
//! with resolved field slots, and evaluated per record (`eval`). One file per model type
//! (`knn` is NearestNeighborModel); `functions` holds user-defined functions
//! (DefineFunction) and `float` the single-precision arithmetic of `mathContext="float"`.

mod bayes;
mod direct;
mod eval;
mod expr;
mod float;
mod functions;
mod general;
mod knn;
mod mining;
mod neural;
mod plan;
mod predicate;
mod regression;
mod svm;
mod tree;
mod types;
pub(crate) mod xml;

use crate::error::{Error, Result};
use crate::record::{Record, Value};
use crate::Prediction;

pub use plan::Function;

thread_local! {
    /// Per-thread slot buffer, so scoring a record does not allocate one, with the id
    /// of the plan that last filled it.
    static SLOTS: std::cell::RefCell<(u64, Vec<Option<Value>>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// A compiled PMML model.
#[derive(Debug)]
pub struct PmmlModel {
    plan: plan::Plan,
    output_names: std::sync::Arc<[String]>,
    /// The numeric fast path of `score_row`, for models that have one.
    direct: Option<direct::DirectModel>,
}

impl PmmlModel {
    pub fn from_bytes(bytes: &[u8]) -> Result<PmmlModel> {
        let text = xml::check(bytes)?;
        let doc = xml::parse(text)?;
        let plan = plan::Plan::build(&doc)?;
        let output_names = plan.output_names.clone().into();
        let direct = direct::DirectModel::build(&plan);
        Ok(PmmlModel {
            plan,
            output_names,
            direct,
        })
    }

    pub fn input_fields(&self) -> &[String] {
        &self.plan.input_names
    }

    pub fn output_fields(&self) -> &[String] {
        &self.output_names
    }

    pub fn function(&self) -> Function {
        self.plan.model.function
    }

    /// Scores a record, reading each input field by name.
    pub fn score(&self, record: &Record) -> Result<Prediction> {
        let mut out = Prediction::with_names(&self.output_names);
        self.score_with(&mut out, |ctx| {
            for input in &self.plan.inputs {
                let raw = record.get(&input.name).unwrap_or(&Value::Missing);
                ctx.set(input.slot, input.prepare(raw)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Scores values given in `input_fields()` order.
    pub fn score_values(&self, values: &[Value]) -> Result<Prediction> {
        self.check_len(values.len())?;
        let mut out = Prediction::with_names(&self.output_names);
        self.score_with(&mut out, |ctx| {
            for (input, raw) in self.plan.inputs.iter().zip(values) {
                ctx.set(input.slot, input.prepare(raw)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Scores numbers given in `input_fields()` order; NaN is missing.
    #[inline]
    pub fn score_row(&self, row: &[f64]) -> Result<Prediction> {
        let mut out = Prediction::with_names(&self.output_names);
        self.score_row_into(row, &mut out)?;
        Ok(out)
    }

    /// [`PmmlModel::score_row`] into `out`, reusing its storage.
    pub fn score_row_into(&self, row: &[f64], out: &mut Prediction) -> Result<()> {
        self.check_len(row.len())?;
        out.reset(&self.output_names);
        if let Some(d) = &self.direct {
            if d.score(&self.plan, row, out) {
                return Ok(());
            }
        }
        self.score_with(out, |ctx| {
            for (input, &x) in self.plan.inputs.iter().zip(row) {
                let v = if x.is_nan() {
                    input.prepare(&Value::Missing)?
                } else if input.plain {
                    // What `prepare` returns for a present number of a plain field.
                    Value::Number(x)
                } else {
                    input.prepare(&Value::Number(x))?
                };
                ctx.set(input.slot, v);
            }
            Ok(())
        })
    }

    /// Which inputs are read as numbers (their declared type is numeric).
    pub fn numeric_inputs(&self) -> Vec<bool> {
        self.plan
            .inputs
            .iter()
            .map(|i| i.dtype.is_numeric())
            .collect()
    }

    /// Scores a record bound by position (see [`crate::Bound`]): `columns[i]` is the field of
    /// `values` holding input `i`. A record of numbers and missing values takes the numeric
    /// fast path (`scratch` holds its row); one with text the generic path, as `score` does.
    pub fn score_bound_into(
        &self,
        columns: &[Option<usize>],
        values: &[Value],
        scratch: &mut Vec<f64>,
        out: &mut Prediction,
    ) -> Result<()> {
        scratch.clear();
        let mut numeric = true;
        for c in columns {
            match c.and_then(|c| values.get(c)) {
                None | Some(Value::Missing) => scratch.push(f64::NAN),
                Some(Value::Number(x)) => scratch.push(*x),
                Some(Value::Text(_)) => {
                    numeric = false;
                    break;
                }
            }
        }
        if numeric {
            return self.score_row_into(scratch, out);
        }
        out.reset(&self.output_names);
        self.score_with(out, |ctx| {
            for (input, c) in self.plan.inputs.iter().zip(columns) {
                let raw = c.and_then(|c| values.get(c)).unwrap_or(&Value::Missing);
                ctx.set(input.slot, input.prepare(raw)?);
            }
            Ok(())
        })
    }

    #[inline]
    fn check_len(&self, n: usize) -> Result<()> {
        if n != self.plan.inputs.len() {
            return Err(Error::Input(format!(
                "expected {} values in input-field order, got {n}",
                self.plan.inputs.len()
            )));
        }
        Ok(())
    }

    /// Scores with the slot buffer of this thread; `fill` sets the input slots.
    fn score_with(
        &self,
        out: &mut Prediction,
        fill: impl FnOnce(&mut eval::Ctx) -> Result<()>,
    ) -> Result<()> {
        let id = self.plan.id;
        let (last, buf) = SLOTS.with(|b| b.take());
        let mut ctx = eval::Ctx::with_buffer(&self.plan, buf, last == id);
        let r = fill(&mut ctx).and_then(|()| self.score_in(&mut ctx, out));
        // The values stay until the next record of this plan overwrites them (or another
        // plan's record clears them): a reset per record costs more than keeping them.
        SLOTS.with(|b| b.replace((id, ctx.into_buffer())));
        r
    }

    fn score_in(&self, ctx: &mut eval::Ctx, out: &mut Prediction) -> Result<()> {
        let plan = &self.plan;
        let outcome = eval::eval_model(&plan.model, ctx)?;
        out.push(eval::primary(&plan.model, &outcome));
        for &slot in &plan.output_slots {
            out.push(ctx.value(slot)?);
        }
        Ok(())
    }
}
