//! RegressionModel: one table per target (regression) or per class (classification),
//! followed by a normalization.

use std::sync::Arc;

use roxmltree::Node;

use super::eval::{Ctx, Outcome};
use super::plan::{Builder, Function, ModelPlan};
use super::types::{normal_cdf, values_equal};
use super::xml::{self, attr, children, num_attr, req_attr, req_num};
use crate::error::{Error, Result};
use crate::record::Value;

#[derive(Debug)]
pub struct RegressionPlan {
    pub tables: Vec<Table>,
    pub norm: Normalization,
}

#[derive(Debug)]
pub struct Table {
    pub intercept: f64,
    pub numeric: Vec<(usize, f64, f64)>,
    pub categorical: Vec<(usize, Value, f64)>,
    pub terms: Vec<(Vec<usize>, f64)>,
    /// Class index (classification only).
    pub class: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    None,
    Softmax,
    Simplemax,
    Logit,
    Probit,
    Cloglog,
    Loglog,
    Cauchit,
    Exp,
}

pub fn build(
    b: &mut Builder,
    node: Node,
    function: Function,
    classes: &mut Vec<Arc<str>>,
) -> Result<RegressionPlan> {
    let norm = match attr(node, "normalizationMethod").unwrap_or("none") {
        "none" => Normalization::None,
        "softmax" => Normalization::Softmax,
        "simplemax" => Normalization::Simplemax,
        "logit" => Normalization::Logit,
        "probit" => Normalization::Probit,
        "cloglog" => Normalization::Cloglog,
        "loglog" => Normalization::Loglog,
        "cauchit" => Normalization::Cauchit,
        "exp" => Normalization::Exp,
        o => {
            return Err(xml::unsupported(
                node,
                &format!("normalizationMethod=\"{o}\""),
            ))
        }
    };
    let mut tables = Vec::new();
    for t in children(node, "RegressionTable") {
        let class = match function {
            Function::Classification => {
                Builder::class_index(classes, req_attr(t, "targetCategory")?)
            }
            Function::Regression => 0,
        };
        let mut table = Table {
            intercept: req_num(t, "intercept")?,
            numeric: Vec::new(),
            categorical: Vec::new(),
            terms: Vec::new(),
            class,
        };
        for p in children(t, "NumericPredictor") {
            let slot = b.resolve(req_attr(p, "name")?)?;
            table.numeric.push((
                slot,
                num_attr(p, "exponent")?.unwrap_or(1.0),
                req_num(p, "coefficient")?,
            ));
        }
        for p in children(t, "CategoricalPredictor") {
            let slot = b.resolve(req_attr(p, "name")?)?;
            let raw = req_attr(p, "value")?;
            let v = b
                .dtype(slot)
                .convert(&Value::text(raw))
                .unwrap_or_else(|| Value::text(raw));
            table
                .categorical
                .push((slot, v, req_num(p, "coefficient")?));
        }
        for p in children(t, "PredictorTerm") {
            let mut slots = Vec::new();
            for f in children(p, "FieldRef") {
                slots.push(b.resolve(req_attr(f, "field")?)?);
            }
            table.terms.push((slots, req_num(p, "coefficient")?));
        }
        tables.push(table);
    }
    if tables.is_empty() {
        return Err(Error::InvalidModel(
            "RegressionModel without RegressionTable".into(),
        ));
    }
    Ok(RegressionPlan { tables, norm })
}

/// y = intercept + sum of terms; `None` when an input it needs is missing.
fn table_value(t: &Table, ctx: &mut Ctx) -> Result<Option<f64>> {
    let Some(mut y) = numeric_part(t, |s| ctx.num(s))? else {
        return Ok(None);
    };
    for (slot, value, coef) in &t.categorical {
        let v = ctx.value(*slot)?;
        if v.is_missing() {
            return Ok(None);
        }
        if values_equal(&v, value) {
            y += coef;
        }
    }
    for (slots, coef) in &t.terms {
        let mut prod = *coef;
        for s in slots {
            let Some(x) = ctx.num(*s)? else {
                return Ok(None);
            };
            prod *= x;
        }
        y += prod;
    }
    Ok(Some(y))
}

/// intercept + the numeric predictors, reading numbers through `num`; the whole value of
/// a table without categorical predictors and terms (the numeric fast path shares it).
#[inline]
pub fn numeric_part(
    t: &Table,
    mut num: impl FnMut(usize) -> Result<Option<f64>>,
) -> Result<Option<f64>> {
    let mut y = t.intercept;
    for &(slot, exp, coef) in &t.numeric {
        let Some(x) = num(slot)? else {
            return Ok(None);
        };
        y += coef * if exp == 1.0 { x } else { x.powf(exp) };
    }
    Ok(Some(y))
}

/// The inverse link of a single value.
pub fn link(norm: Normalization, y: f64) -> f64 {
    match norm {
        Normalization::None | Normalization::Simplemax => y,
        Normalization::Softmax | Normalization::Logit => 1.0 / (1.0 + (-y).exp()),
        Normalization::Probit => normal_cdf(y),
        Normalization::Cloglog => 1.0 - (-y.exp()).exp(),
        Normalization::Loglog => (-(-y).exp()).exp(),
        Normalization::Cauchit => 0.5 + y.atan() / std::f64::consts::PI,
        Normalization::Exp => y.exp(),
    }
}

pub fn eval(r: &RegressionPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    if m.function == Function::Regression {
        let Some(y) = table_value(&r.tables[0], ctx)? else {
            return Ok(Outcome::Missing);
        };
        return Ok(Outcome::Value(link(r.norm, y)));
    }
    let mut ys = Vec::with_capacity(r.tables.len());
    for t in &r.tables {
        match table_value(t, ctx)? {
            Some(y) => ys.push(y),
            None => return Ok(Outcome::Missing),
        }
    }
    let probs = match r.norm {
        Normalization::Softmax => softmax(&ys),
        Normalization::Simplemax => {
            let s: f64 = ys.iter().sum();
            ys.iter().map(|y| y / s).collect()
        }
        Normalization::None
        | Normalization::Logit
        | Normalization::Probit
        | Normalization::Cloglog
        | Normalization::Loglog
        | Normalization::Cauchit => {
            // Binary and ordinal models: the last category takes what the others leave.
            let n = ys.len();
            let mut p: Vec<f64> = ys.iter().map(|y| link(r.norm, *y)).collect();
            if n >= 2 {
                let rest: f64 = p[..n - 1].iter().sum();
                p[n - 1] = 1.0 - rest;
            }
            p
        }
        Normalization::Exp => ys.iter().map(|y| y.exp()).collect(),
    };
    let mut by_class = vec![0.0; m.classes.len()];
    for (t, p) in r.tables.iter().zip(probs) {
        if let Some(slot) = by_class.get_mut(t.class) {
            *slot = p;
        }
    }
    Ok(Outcome::from_probs(by_class))
}

/// Softmax with the maximum subtracted, so large scores do not overflow.
pub fn softmax(ys: &[f64]) -> Vec<f64> {
    let max = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = ys.iter().map(|y| (y - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}
