//! SupportVectorMachineModel: kernel expansions over a vector dictionary. Regression sums
//! one machine; classification votes one-against-one (or one-against-all by score).

use std::collections::HashMap;
use std::sync::Arc;

use roxmltree::Node;

use super::eval::{Ctx, Outcome};
use super::plan::{Builder, Function, ModelPlan};
use super::xml::{
    self, array_tokens, attr, child, children, num_attr, parse_f64, req_attr, req_num,
};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct SvmPlan {
    pub kernel: Kernel,
    pub fields: Vec<usize>,
    pub machines: Vec<Machine>,
    pub one_against_all: bool,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy)]
pub enum Kernel {
    Linear,
    Polynomial { gamma: f64, coef0: f64, degree: f64 },
    RadialBasis { gamma: f64 },
    Sigmoid { gamma: f64, coef0: f64 },
}

#[derive(Debug)]
pub struct Machine {
    /// (coefficient, support vector).
    pub terms: Vec<(f64, Vec<f64>)>,
    pub intercept: f64,
    pub target: Option<usize>,
    pub alternate: Option<usize>,
    pub threshold: f64,
}

fn vector(node: Node, n: usize) -> Result<Vec<f64>> {
    if let Some(a) = child(node, "Array") {
        let v: Vec<f64> = array_tokens(a.text().unwrap_or(""))
            .iter()
            .map(|t| parse_f64(t, "VectorInstance"))
            .collect::<Result<_>>()?;
        if v.len() != n {
            return Err(Error::InvalidModel(format!(
                "support vector has {} values, expected {n}",
                v.len()
            )));
        }
        return Ok(v);
    }
    if let Some(s) = xml::elements(node).find(|c| xml::name(*c).ends_with("SparseArray")) {
        let mut v = vec![0.0; n];
        let idx = child(s, "Indices")
            .map(|i| array_tokens(i.text().unwrap_or("")))
            .unwrap_or_default();
        let ent = xml::elements(s)
            .find(|c| xml::name(*c).ends_with("Entries"))
            .map(|e| array_tokens(e.text().unwrap_or("")))
            .unwrap_or_default();
        for (i, e) in idx.iter().zip(&ent) {
            let i: usize = i
                .parse()
                .map_err(|_| Error::InvalidModel(format!("sparse index `{i}`")))?;
            let slot = i
                .checked_sub(1)
                .and_then(|k| v.get_mut(k))
                .ok_or_else(|| Error::InvalidModel(format!("sparse index {i} out of range")))?;
            *slot = parse_f64(e, "sparse entry")?;
        }
        return Ok(v);
    }
    Err(xml::unsupported(node, "without an Array"))
}

pub fn build(
    b: &mut Builder,
    node: Node,
    function: Function,
    classes: &mut Vec<Arc<str>>,
) -> Result<SvmPlan> {
    let kernel = if let Some(k) = child(node, "LinearKernelType") {
        let _ = k;
        Kernel::Linear
    } else if let Some(k) = child(node, "PolynomialKernelType") {
        Kernel::Polynomial {
            gamma: num_attr(k, "gamma")?.unwrap_or(1.0),
            coef0: num_attr(k, "coef0")?.unwrap_or(1.0),
            degree: num_attr(k, "degree")?.unwrap_or(1.0),
        }
    } else if let Some(k) = child(node, "RadialBasisKernelType") {
        Kernel::RadialBasis {
            gamma: num_attr(k, "gamma")?.unwrap_or(1.0),
        }
    } else if let Some(k) = child(node, "SigmoidKernelType") {
        Kernel::Sigmoid {
            gamma: num_attr(k, "gamma")?.unwrap_or(1.0),
            coef0: num_attr(k, "coef0")?.unwrap_or(1.0),
        }
    } else {
        return Err(xml::unsupported(node, "without a supported kernel"));
    };
    if attr(node, "representation") == Some("Coefficients") {
        return Err(xml::unsupported(node, "representation=\"Coefficients\""));
    }
    let dict = child(node, "VectorDictionary")
        .ok_or_else(|| Error::InvalidModel("no VectorDictionary".into()))?;
    let vf =
        child(dict, "VectorFields").ok_or_else(|| Error::InvalidModel("no VectorFields".into()))?;
    let mut fields = Vec::new();
    for f in xml::elements(vf) {
        match xml::name(f) {
            "FieldRef" => fields.push(b.resolve(req_attr(f, "field")?)?),
            other => return Err(Error::Unsupported(format!("<{other}> in VectorFields"))),
        }
    }
    let mut vectors = HashMap::new();
    for vi in children(dict, "VectorInstance") {
        vectors.insert(req_attr(vi, "id")?.to_string(), vector(vi, fields.len())?);
    }
    let threshold = num_attr(node, "threshold")?.unwrap_or(0.0);
    let mut machines = Vec::new();
    for m in children(node, "SupportVectorMachine") {
        let ids: Vec<&str> = child(m, "SupportVectors")
            .map(|s| {
                children(s, "SupportVector")
                    .filter_map(|v| attr(v, "vectorId"))
                    .collect()
            })
            .unwrap_or_default();
        let coefs = child(m, "Coefficients")
            .ok_or_else(|| Error::InvalidModel("no Coefficients".into()))?;
        let cs: Vec<f64> = children(coefs, "Coefficient")
            .map(|c| num_attr(c, "value").map(|v| v.unwrap_or(0.0)))
            .collect::<Result<_>>()?;
        if cs.len() != ids.len() {
            return Err(Error::InvalidModel(
                "Coefficients and SupportVectors differ in number".into(),
            ));
        }
        let mut terms = Vec::with_capacity(ids.len());
        for (id, c) in ids.iter().zip(cs) {
            let v = vectors
                .get(*id)
                .ok_or_else(|| Error::InvalidModel(format!("unknown support vector `{id}`")))?;
            terms.push((c, v.clone()));
        }
        let class = |name: &str, classes: &mut Vec<Arc<str>>| {
            attr(m, name).map(|t| Builder::class_index(classes, t))
        };
        let (target, alternate) = match function {
            Function::Classification => (
                class("targetCategory", classes),
                class("alternateTargetCategory", classes),
            ),
            Function::Regression => (None, None),
        };
        machines.push(Machine {
            terms,
            intercept: num_attr(coefs, "absoluteValue")?.unwrap_or(0.0),
            target,
            alternate,
            threshold: num_attr(m, "threshold")?.unwrap_or(threshold),
        });
    }
    if machines.is_empty() {
        return Err(Error::InvalidModel("no SupportVectorMachine".into()));
    }
    let _ = req_num;
    Ok(SvmPlan {
        kernel,
        fields,
        machines,
        one_against_all: attr(node, "classificationMethod") == Some("OneAgainstAll"),
        threshold,
    })
}

fn kernel(k: Kernel, x: &[f64], v: &[f64]) -> f64 {
    let dot = || x.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    match k {
        Kernel::Linear => dot(),
        Kernel::Polynomial {
            gamma,
            coef0,
            degree,
        } => (gamma * dot() + coef0).powf(degree),
        Kernel::RadialBasis { gamma } => {
            let d: f64 = x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
            (-gamma * d).exp()
        }
        Kernel::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
    }
}

fn machine_value(k: Kernel, m: &Machine, x: &[f64]) -> f64 {
    m.terms
        .iter()
        .map(|(c, v)| c * kernel(k, x, v))
        .sum::<f64>()
        + m.intercept
}

pub fn eval(s: &SvmPlan, mp: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    let mut x = Vec::with_capacity(s.fields.len());
    for f in &s.fields {
        match ctx.num(*f)? {
            Some(v) => x.push(v),
            None => return Ok(Outcome::Missing),
        }
    }
    if mp.function == Function::Regression {
        return Ok(Outcome::Value(machine_value(s.kernel, &s.machines[0], &x)));
    }
    let n = mp.classes.len();
    let mut votes = vec![0.0; n];
    if s.one_against_all {
        // The machine with the lowest decision value claims its class.
        let mut best: Option<(f64, usize)> = None;
        for m in &s.machines {
            let v = machine_value(s.kernel, m, &x);
            if let Some(t) = m.target {
                if best.is_none_or(|(b, _)| v < b) {
                    best = Some((v, t));
                }
            }
        }
        if let Some((_, t)) = best {
            if let Some(slot) = votes.get_mut(t) {
                *slot = 1.0;
            }
        }
    } else {
        for m in &s.machines {
            let v = machine_value(s.kernel, m, &x);
            let winner = if v < m.threshold {
                m.target
            } else {
                m.alternate.or(m.target)
            };
            if let Some(slot) = winner.and_then(|w| votes.get_mut(w)) {
                *slot += 1.0;
            }
        }
    }
    let _ = s.threshold;
    Ok(Outcome::from_probs(votes))
}
