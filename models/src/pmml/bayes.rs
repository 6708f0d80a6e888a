//! NaiveBayesModel: class counts times per-input likelihoods (counts for discrete inputs,
//! Gaussian or Poisson densities for continuous ones), normalized.

use std::sync::Arc;

use roxmltree::Node;

use super::eval::{Ctx, Outcome};
use super::expr::Expr;
use super::plan::{Builder, Function, ModelPlan};
use super::types::values_equal;
use super::xml::{self, attr, child, children, num_attr, req_attr, req_num};
use crate::error::{Error, Result};
use crate::record::Value;

#[derive(Debug)]
pub struct BayesPlan {
    pub priors: Vec<f64>,
    pub inputs: Vec<BayesInput>,
    pub threshold: f64,
}

#[derive(Debug)]
pub struct BayesInput {
    pub source: Source,
    pub kind: InputKind,
}

#[derive(Debug)]
pub enum Source {
    Field(usize),
    Derived(Expr),
}

#[derive(Debug)]
pub enum InputKind {
    /// Per input value: counts per class.
    Counts(Vec<(Value, Vec<f64>)>),
    /// Per class: a continuous distribution.
    Stats(Vec<Option<Dist>>),
}

#[derive(Debug, Clone, Copy)]
pub enum Dist {
    Gaussian { mean: f64, variance: f64 },
    Poisson { mean: f64 },
}

fn class_vec(classes: &mut Vec<Arc<str>>, counts: Node) -> Result<Vec<(usize, f64)>> {
    children(counts, "TargetValueCount")
        .map(|c| {
            Ok((
                Builder::class_index(classes, req_attr(c, "value")?),
                req_num(c, "count")?,
            ))
        })
        .collect()
}

fn dense(pairs: &[(usize, f64)]) -> Vec<f64> {
    let n = pairs.iter().map(|p| p.0 + 1).max().unwrap_or(0);
    let mut v = vec![0.0; n];
    for (i, c) in pairs {
        v[*i] = *c;
    }
    v
}

pub fn build(
    b: &mut Builder,
    node: Node,
    function: Function,
    classes: &mut Vec<Arc<str>>,
) -> Result<BayesPlan> {
    if function != Function::Classification {
        return Err(xml::unsupported(node, "for regression"));
    }
    let out =
        child(node, "BayesOutput").ok_or_else(|| Error::InvalidModel("no BayesOutput".into()))?;
    let counts = child(out, "TargetValueCounts")
        .ok_or_else(|| Error::InvalidModel("no TargetValueCounts".into()))?;
    let priors = dense(&class_vec(classes, counts)?);
    let mut inputs = Vec::new();
    let bis =
        child(node, "BayesInputs").ok_or_else(|| Error::InvalidModel("no BayesInputs".into()))?;
    for bi in children(bis, "BayesInput") {
        let field = req_attr(bi, "fieldName")?;
        let source = match child(bi, "DerivedField") {
            Some(df) => Source::Derived(b.derived_expr(df)?),
            None => Source::Field(b.resolve(field)?),
        };
        let kind = if let Some(stats) = child(bi, "TargetValueStats") {
            let mut per: Vec<(usize, Dist)> = Vec::new();
            for s in children(stats, "TargetValueStat") {
                let class = Builder::class_index(classes, req_attr(s, "value")?);
                let dist = if let Some(g) = child(s, "GaussianDistribution") {
                    Dist::Gaussian {
                        mean: req_num(g, "mean")?,
                        variance: req_num(g, "variance")?,
                    }
                } else if let Some(p) = child(s, "PoissonDistribution") {
                    Dist::Poisson {
                        mean: req_num(p, "mean")?,
                    }
                } else {
                    return Err(xml::unsupported(s, "with an unsupported distribution"));
                };
                per.push((class, dist));
            }
            let n = per.iter().map(|p| p.0 + 1).max().unwrap_or(0);
            let mut v = vec![None; n];
            for (c, d) in per {
                v[c] = Some(d);
            }
            InputKind::Stats(v)
        } else {
            let dtype = match &source {
                Source::Field(s) => b.dtype(*s),
                Source::Derived(_) => super::types::DataType::String,
            };
            let mut rows = Vec::new();
            for pc in children(bi, "PairCounts") {
                let raw = req_attr(pc, "value")?;
                let v = dtype
                    .convert(&Value::text(raw))
                    .unwrap_or_else(|| Value::text(raw));
                let tvc = child(pc, "TargetValueCounts")
                    .ok_or_else(|| Error::InvalidModel("PairCounts without counts".into()))?;
                rows.push((v, dense(&class_vec(classes, tvc)?)));
            }
            InputKind::Counts(rows)
        };
        inputs.push(BayesInput { source, kind });
    }
    let _ = attr(node, "threshold");
    Ok(BayesPlan {
        priors,
        inputs,
        threshold: num_attr(node, "threshold")?.unwrap_or(0.0),
    })
}

fn density(d: Dist, x: f64) -> f64 {
    match d {
        Dist::Gaussian { mean, variance } => {
            let z = x - mean;
            (-(z * z) / (2.0 * variance)).exp() / (2.0 * std::f64::consts::PI * variance).sqrt()
        }
        Dist::Poisson { mean } => {
            // exp(k ln(mean) - mean - ln(k!))
            let k = x.round();
            let mut ln_fact = 0.0;
            let mut i = 2.0;
            while i <= k {
                ln_fact += f64::ln(i);
                i += 1.0;
            }
            (k * mean.ln() - mean - ln_fact).exp()
        }
    }
}

pub fn eval(p: &BayesPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    let n = m.classes.len();
    let mut like: Vec<f64> = (0..n)
        .map(|c| p.priors.get(c).copied().unwrap_or(0.0))
        .collect();
    for input in &p.inputs {
        let v = match &input.source {
            Source::Field(s) => ctx.value(*s)?,
            Source::Derived(e) => e.eval(ctx)?,
        };
        if v.is_missing() {
            // Missing inputs carry no evidence.
            continue;
        }
        match &input.kind {
            InputKind::Stats(per) => {
                let Some(x) = v.as_f64() else { continue };
                for (c, l) in like.iter_mut().enumerate() {
                    let f = per
                        .get(c)
                        .copied()
                        .flatten()
                        .map(|d| density(d, x))
                        .unwrap_or(0.0);
                    *l *= if f == 0.0 { p.threshold } else { f };
                }
            }
            InputKind::Counts(rows) => {
                let Some((_, counts)) = rows.iter().find(|(rv, _)| values_equal(rv, &v)) else {
                    continue;
                };
                for (c, l) in like.iter_mut().enumerate() {
                    let total = p.priors.get(c).copied().unwrap_or(0.0);
                    let k = counts.get(c).copied().unwrap_or(0.0);
                    let f = if total > 0.0 { k / total } else { 0.0 };
                    *l *= if f == 0.0 { p.threshold } else { f };
                }
            }
        }
    }
    let sum: f64 = like.iter().sum();
    if sum > 0.0 {
        for l in &mut like {
            *l /= sum;
        }
    }
    Ok(Outcome::from_probs(like))
}
