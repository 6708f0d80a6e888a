//! The PMML evaluator: a document is parsed once (`xml`), compiled into a [`plan::Plan`]
//! with resolved field slots, and evaluated per record (`eval`). One file per model type.

mod bayes;
mod eval;
mod expr;
mod general;
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
    /// Per-thread slot buffer, so scoring a record does not allocate one.
    static SLOTS: std::cell::RefCell<Vec<Option<Value>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A compiled PMML model.
#[derive(Debug)]
pub struct PmmlModel {
    plan: plan::Plan,
    output_names: std::sync::Arc<[String]>,
}

impl PmmlModel {
    pub fn from_bytes(bytes: &[u8]) -> Result<PmmlModel> {
        let text = xml::check(bytes)?;
        let doc = xml::parse(text)?;
        let plan = plan::Plan::build(&doc)?;
        let output_names = plan.output_names.clone().into();
        Ok(PmmlModel { plan, output_names })
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
        self.score_with(|i| {
            record
                .get(&self.plan.inputs[i].name)
                .cloned()
                .unwrap_or(Value::Missing)
        })
    }

    /// Scores values given in `input_fields()` order.
    pub fn score_values(&self, values: &[Value]) -> Result<Prediction> {
        self.check_len(values.len())?;
        self.score_with(|i| values[i].clone())
    }

    /// Scores numbers given in `input_fields()` order; NaN is missing.
    pub fn score_row(&self, row: &[f64]) -> Result<Prediction> {
        self.check_len(row.len())?;
        self.score_with(|i| {
            if row[i].is_nan() {
                Value::Missing
            } else {
                Value::Number(row[i])
            }
        })
    }

    fn check_len(&self, n: usize) -> Result<()> {
        if n != self.plan.inputs.len() {
            return Err(Error::Input(format!(
                "expected {} values in input-field order, got {n}",
                self.plan.inputs.len()
            )));
        }
        Ok(())
    }

    fn score_with(&self, get: impl Fn(usize) -> Value) -> Result<Prediction> {
        let buf = SLOTS.with(|b| b.take());
        let mut ctx = eval::Ctx::with_buffer(&self.plan, buf);
        let r = self.score_in(&mut ctx, get);
        let mut buf = ctx.into_buffer();
        // Drop the record's values now rather than holding them until the next call.
        buf.clear();
        SLOTS.with(|b| b.replace(buf));
        r
    }

    fn score_in(&self, ctx: &mut eval::Ctx, get: impl Fn(usize) -> Value) -> Result<Prediction> {
        let plan = &self.plan;
        for (i, input) in plan.inputs.iter().enumerate() {
            let v = input.prepare(&get(i))?;
            ctx.set(input.slot, v);
        }
        let outcome = eval::eval_model(&plan.model, ctx)?;
        let mut values = Vec::with_capacity(plan.output_names.len());
        values.push(eval::primary(&plan.model, &outcome));
        for &slot in &plan.output_slots {
            values.push(ctx.value(slot)?);
        }
        Ok(Prediction::new(self.output_names.clone(), values))
    }
}
