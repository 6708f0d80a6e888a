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
    /// `mathContext="float"` (`float.rs`).
    pub float: bool,
}

#[derive(Debug)]
pub struct Table {
    pub intercept: f64,
    pub numeric: Vec<(usize, f64, f64)>,
    pub categorical: Vec<(usize, Value, f64)>,
    pub terms: Vec<(Vec<usize>, f64)>,
    /// Class index (classification only).
    pub class: usize,
    /// Single-precision arithmetic in JPMML's order (`float.rs`).
    pub float: bool,
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
    let float = super::float::declared(node)?;
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
            float,
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
    let mut norm = norm;
    if float {
        norm = float_normalization(node, function, norm, &tables)?;
    }
    Ok(RegressionPlan {
        tables,
        norm,
        float,
    })
}

/// y = intercept + sum of terms; `None` when an input it needs is missing.
fn table_value(t: &Table, ctx: &mut Ctx) -> Result<Option<f64>> {
    if t.float {
        return table_value_f32(t, ctx);
    }
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

/// A table in float, in JPMML's order: the numeric predictors from zero, then the
/// categorical ones, then the terms, then the intercept.
fn table_value_f32(t: &Table, ctx: &mut Ctx) -> Result<Option<f64>> {
    let Some(mut y) = numeric_sum_f32(t, |s| ctx.num(s))? else {
        return Ok(None);
    };
    for (slot, value, coef) in &t.categorical {
        let v = ctx.value(*slot)?;
        if !v.is_missing() && values_equal(&v, value) {
            y += *coef as f32;
        }
    }
    for (slots, coef) in &t.terms {
        let mut prod = *coef as f32;
        for s in slots {
            let Some(x) = ctx.num(*s)? else {
                return Ok(None);
            };
            prod *= x as f32;
        }
        y += prod;
    }
    if t.intercept != 0.0 {
        y += t.intercept as f32;
    }
    Ok(Some(f64::from(y)))
}

fn numeric_sum_f32(
    t: &Table,
    mut num: impl FnMut(usize) -> Result<Option<f64>>,
) -> Result<Option<f32>> {
    let mut y = 0.0f32;
    for &(slot, exp, coef) in &t.numeric {
        let Some(x) = num(slot)? else {
            return Ok(None);
        };
        let x = x as f32;
        y += coef as f32
            * if exp == 1.0 {
                x
            } else {
                f64::from(x).powf(exp) as f32
            };
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
    if t.float {
        let Some(mut y) = numeric_sum_f32(t, num)? else {
            return Ok(None);
        };
        if t.intercept != 0.0 {
            y += t.intercept as f32;
        }
        return Ok(Some(f64::from(y)));
    }
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

/// The inverse link of a single value in float (`float.rs`).
pub fn link_f32(norm: Normalization, y: f64) -> f64 {
    use super::float;
    let y = y as f32;
    f64::from(match norm {
        Normalization::None | Normalization::Simplemax => y,
        Normalization::Softmax | Normalization::Logit => float::inverse_logit(y),
        Normalization::Cloglog => float::inverse_cloglog(y),
        Normalization::Loglog => float::inverse_loglog(y),
        Normalization::Cauchit => float::inverse_cauchit(y),
        Normalization::Exp => float::exp(y),
        // Refused when the plan is built (JPMML has no float probit either).
        Normalization::Probit => f32::NAN,
    })
}

/// The normalizations implemented in float, as JPMML picks them: two classes go through
/// a link (the first class) and a residual (the second), also for softmax when the
/// second table is empty (JPMML reads that as logit); more classes take softmax or
/// simplemax.
fn float_normalization(
    node: Node,
    function: Function,
    norm: Normalization,
    tables: &[Table],
) -> Result<Normalization> {
    use Normalization::*;
    let ok = match function {
        Function::Regression => norm != Probit,
        Function::Classification if tables.len() == 2 => {
            let second_empty = tables.get(1).is_some_and(|t| {
                t.intercept == 0.0
                    && t.numeric.is_empty()
                    && t.categorical.is_empty()
                    && t.terms.is_empty()
            });
            if norm == Softmax && second_empty {
                return Ok(Logit);
            }
            matches!(norm, None | Logit | Cloglog | Loglog | Cauchit)
        }
        Function::Classification => matches!(norm, Softmax | Simplemax),
    };
    if ok {
        Ok(norm)
    } else {
        Err(super::float::unsupported(
            node,
            &format!("normalizationMethod {norm:?} over {} tables", tables.len()),
        ))
    }
}

/// Classification probabilities in float, JPMML's way (`float.rs`).
fn probabilities_f32(norm: Normalization, ys: &[f64]) -> Vec<f64> {
    let mut p: Vec<f32> = ys.iter().map(|y| *y as f32).collect();
    match norm {
        Normalization::Softmax => super::float::softmax(&mut p),
        Normalization::Simplemax => super::float::simplemax(&mut p),
        _ => {
            // Two tables (checked when built): the first through the link, the second
            // takes the rest.
            if let Some(first) = p.first().copied() {
                let f = match norm {
                    Normalization::None => first.clamp(0.0, 1.0),
                    n => link_f32(n, f64::from(first)) as f32,
                };
                p[0] = f;
                if let Some(second) = p.get_mut(1) {
                    *second = 1.0 - f;
                }
            }
        }
    }
    p.into_iter().map(f64::from).collect()
}

pub fn eval(r: &RegressionPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    if r.float {
        return eval_f32(r, m, ctx);
    }
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

fn eval_f32(r: &RegressionPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    if m.function == Function::Regression {
        let Some(y) = table_value(&r.tables[0], ctx)? else {
            return Ok(Outcome::Missing);
        };
        return Ok(Outcome::Value(link_f32(r.norm, y)));
    }
    let mut ys = Vec::with_capacity(r.tables.len());
    for t in &r.tables {
        match table_value(t, ctx)? {
            Some(y) => ys.push(y),
            None => return Ok(Outcome::Missing),
        }
    }
    let mut by_class = vec![0.0; m.classes.len()];
    for (t, p) in r.tables.iter().zip(probabilities_f32(r.norm, &ys)) {
        if let Some(slot) = by_class.get_mut(t.class) {
            *slot = p;
        }
    }
    Ok(Outcome::from_probs(by_class))
}
