//! Per-record evaluation: slot values, input preparation, model dispatch and outputs.

use std::borrow::Cow;
use std::sync::Arc;

use super::plan::{
    Feature, Function, InputPlan, InvalidTreatment, ModelKind, ModelPlan, Outliers, Plan, SlotDef,
    SlotKind, Validity,
};
use super::types::values_equal;
use super::{bayes, general, knn, mining, neural, regression, svm, tree};
use crate::error::{Error, Result};
use crate::record::Value;

/// Derived fields referring to derived fields deeper than this are treated as a cycle
/// (and the bound keeps the recursive evaluation within the stack).
const MAX_DERIVATION_DEPTH: u32 = 160;

/// The values of one evaluation; derived slots are filled on first use.
pub struct Ctx<'p> {
    slots: &'p [SlotDef],
    vals: Vec<Option<Value>>,
    depth: u32,
}

impl<'p> Ctx<'p> {
    /// A context over `buf`, a buffer reused across records to save an allocation.
    /// `same_plan`: the buffer was last used by this plan, so only the slots that are
    /// not overwritten by the inputs (derived and written ones) need a reset.
    pub fn with_buffer(plan: &'p Plan, mut buf: Vec<Option<Value>>, same_plan: bool) -> Ctx<'p> {
        if same_plan && buf.len() == plan.slots.len() {
            for &s in &plan.volatile_slots {
                if let Some(v) = buf.get_mut(s) {
                    *v = None;
                }
            }
        } else {
            buf.clear();
            buf.resize(plan.slots.len(), None);
        }
        Ctx {
            slots: &plan.slots,
            vals: buf,
            depth: 0,
        }
    }

    /// Gives the buffer back for the next record.
    pub fn into_buffer(self) -> Vec<Option<Value>> {
        self.vals
    }

    /// Enters one level of recursive evaluation (expressions, derived fields).
    pub fn descend(&mut self) -> Result<()> {
        if self.depth >= MAX_DERIVATION_DEPTH {
            return Err(Error::Evaluation(
                "expressions nest too deeply (a reference cycle?)".into(),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    pub fn ascend(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    pub fn set(&mut self, slot: usize, v: Value) {
        if let Some(s) = self.vals.get_mut(slot) {
            *s = Some(v);
        }
    }

    pub fn value(&mut self, slot: usize) -> Result<Value> {
        if let Some(Some(v)) = self.vals.get(slot) {
            return Ok(v.clone());
        }
        let slots = self.slots;
        let def = slots
            .get(slot)
            .ok_or_else(|| Error::Evaluation(format!("slot {slot} out of range")))?;
        match &def.kind {
            SlotKind::Derived(expr) => {
                if self.depth >= MAX_DERIVATION_DEPTH {
                    return Err(Error::Evaluation(format!(
                        "derived field `{}` refers to itself",
                        def.name
                    )));
                }
                self.depth += 1;
                let r = expr.eval(self);
                self.depth -= 1;
                let v = r?;
                let v = match def.dtype.convert(&v) {
                    Some(v) => v,
                    // A derived value that does not fit its declared type is kept as is:
                    // JPMML would report it invalid, we prefer a best-effort value.
                    None => v,
                };
                self.set(slot, v.clone());
                Ok(v)
            }
            SlotKind::Input | SlotKind::Written => Ok(Value::Missing),
        }
    }

    /// Numeric fast path for tree predicates and regression terms.
    #[inline(always)]
    pub fn num(&mut self, slot: usize) -> Result<Option<f64>> {
        match self.vals.get(slot) {
            Some(Some(Value::Number(n))) => Ok(Some(*n)),
            Some(Some(Value::Missing)) => Ok(None),
            _ => self.num_slow(slot),
        }
    }

    #[cold]
    #[inline(never)]
    fn num_slow(&mut self, slot: usize) -> Result<Option<f64>> {
        Ok(self.value(slot)?.as_f64())
    }
}

/// Where a model core reads its fields: the slots of a [`Ctx`], or (numeric fast path)
/// a row of plain numbers.
pub trait Source {
    fn num(&mut self, slot: usize) -> Result<Option<f64>>;
    fn value(&mut self, slot: usize) -> Result<Value>;
}

impl Source for Ctx<'_> {
    #[inline(always)]
    fn num(&mut self, slot: usize) -> Result<Option<f64>> {
        Ctx::num(self, slot)
    }

    fn value(&mut self, slot: usize) -> Result<Value> {
        Ctx::value(self, slot)
    }
}

/// What a model produced before outputs are derived from it.
/// Class probabilities are borrowed from the plan where a model has them ready (tree
/// leaves), so a tree classification allocates nothing per record.
#[derive(Debug, Clone)]
pub enum Outcome<'p> {
    Missing,
    Value(f64),
    Class {
        winner: usize,
        probs: Cow<'p, [f64]>,
    },
}

impl Outcome<'static> {
    /// The winner of a probability vector (first on ties, i.e. declaration order).
    pub fn from_probs(probs: Vec<f64>) -> Outcome<'static> {
        let mut best: Option<(usize, f64)> = None;
        for (i, p) in probs.iter().enumerate() {
            if p.is_nan() {
                continue;
            }
            if best.is_none_or(|(_, bp)| *p > bp) {
                best = Some((i, *p));
            }
        }
        match best {
            Some((winner, _)) => Outcome::Class {
                winner,
                probs: Cow::Owned(probs),
            },
            None => Outcome::Missing,
        }
    }
}

impl InputPlan {
    /// Applies type conversion and the MiningField treatments to a raw record value.
    pub fn prepare(&self, raw: &Value) -> Result<Value> {
        if self.plain {
            if let Value::Number(n) = raw {
                if !n.is_nan() {
                    return Ok(Value::Number(*n));
                }
            }
        }
        let invalid = |this: &InputPlan| -> Result<Value> {
            match &this.invalid {
                InvalidTreatment::ReturnInvalid => Err(Error::InvalidValue {
                    field: this.name.clone(),
                    value: raw.to_string(),
                }),
                InvalidTreatment::AsIs => Ok(raw.clone()),
                InvalidTreatment::AsMissing => this.missing(),
                InvalidTreatment::AsValue(v) => Ok(v.clone()),
            }
        };
        let Some(mut v) = self.dtype.convert(raw) else {
            return invalid(self);
        };
        if v.is_missing() || self.missing_values.iter().any(|m| values_equal(m, &v)) {
            return self.missing();
        }
        if let Value::Number(n) = v {
            if n.is_nan() {
                return self.missing();
            }
        }
        let valid = match &self.validity {
            Validity::Any => true,
            Validity::Values(vals) => vals.iter().any(|x| values_equal(x, &v)),
            Validity::Intervals(ivs) => v
                .as_f64()
                .is_some_and(|x| ivs.iter().any(|iv| iv.contains(x))),
        };
        if !valid {
            return invalid(self);
        }
        if let Value::Number(n) = v {
            match self.outliers {
                Outliers::AsIs => {}
                Outliers::AsMissing { low, high } => {
                    if n < low || n > high {
                        return self.missing();
                    }
                }
                Outliers::AsExtreme { low, high } => {
                    v = Value::Number(n.clamp(low.min(high), high.max(low)))
                }
            }
        }
        Ok(v)
    }

    fn missing(&self) -> Result<Value> {
        if let Some(r) = &self.missing_replacement {
            return Ok(r.clone());
        }
        if self.missing_is_invalid {
            return Err(Error::MissingValue(self.name.clone()));
        }
        Ok(Value::Missing)
    }
}

/// Evaluates a model and writes its output fields into their slots.
pub fn eval_model<'p>(m: &'p ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'p>> {
    let mut outcome = match &m.kind {
        ModelKind::Tree(t) => tree::eval(t, m, ctx)?,
        ModelKind::Regression(r) => regression::eval(r, m, ctx)?,
        ModelKind::General(g) => general::eval(g, m, ctx)?,
        ModelKind::Neural(n) => neural::eval(n, m, ctx)?,
        ModelKind::Mining(mm) => mining::eval(mm, m, ctx)?,
        ModelKind::Svm(s) => svm::eval(s, m, ctx)?,
        ModelKind::Bayes(bm) => bayes::eval(bm, m, ctx)?,
        ModelKind::Knn(k) => knn::eval(k, m, ctx)?,
    };
    outcome = apply_targets(m, outcome);
    for o in &m.outputs {
        let v = match &o.feature {
            Feature::Transformed(e) => e.eval(ctx)?,
            // Written by the k-NN model itself.
            Feature::EntityId(_) | Feature::Affinity(_) => continue,
            f => feature_value(m, f, &outcome),
        };
        let v = convert_output(ctx.slots, o.slot, v);
        ctx.set(o.slot, v);
    }
    Ok(outcome)
}

/// `Targets` post-processing of a model's outcome.
#[inline]
pub fn apply_targets<'p>(m: &ModelPlan, outcome: Outcome<'p>) -> Outcome<'p> {
    let Some(t) = &m.targets else {
        return outcome;
    };
    match outcome {
        Outcome::Value(v) => Outcome::Value(t.apply(v)),
        Outcome::Missing if m.function == Function::Regression => match t.default {
            Some(d) => Outcome::Value(d),
            None => Outcome::Missing,
        },
        o => o,
    }
}

/// The value of an output feature that needs no expression (`Transformed` gives missing).
#[inline]
pub fn feature_value(m: &ModelPlan, feature: &Feature, outcome: &Outcome) -> Value {
    match feature {
        Feature::PredictedValue | Feature::PredictedDisplayValue => primary(m, outcome),
        Feature::Probability(class) => match outcome {
            Outcome::Class { winner, probs } => {
                let i = class.unwrap_or(*winner);
                Value::Number(probs.get(i).copied().unwrap_or(0.0))
            }
            _ => Value::Missing,
        },
        Feature::Transformed(_) | Feature::EntityId(_) | Feature::Affinity(_) => Value::Missing,
    }
}

/// An output value converted to its field's declared type (kept as is when it does not fit).
#[inline]
pub fn convert_output(slots: &[SlotDef], slot: usize, v: Value) -> Value {
    match slots.get(slot).and_then(|s| s.dtype.convert(&v)) {
        Some(c) => c,
        None => v,
    }
}

/// The predicted value of an outcome: a number for regression, the label for classes.
#[inline]
pub fn primary(m: &ModelPlan, outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Missing => Value::Missing,
        Outcome::Value(v) => Value::Number(*v),
        Outcome::Class { winner, .. } => m
            .classes
            .get(*winner)
            .map(|c| Value::Text(Arc::clone(c)))
            .unwrap_or(Value::Missing),
    }
}
