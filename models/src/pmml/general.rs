//! GeneralRegressionModel: parameters built from covariates (with exponents) and factors
//! through the PPMatrix, a linear predictor per target category, then the link.

use std::collections::HashMap;
use std::sync::Arc;

use roxmltree::Node;

use super::eval::{Ctx, Outcome, Source};
use super::plan::{Builder, Function, ModelPlan};
use super::regression::softmax;
use super::types::{normal_cdf, values_equal};
use super::xml::{self, attr, child, children, num_attr, req_attr, req_num};
use crate::error::{Error, Result};
use crate::record::Value;

#[derive(Debug)]
pub struct GeneralPlan {
    /// For each parameter, the cells whose product is the parameter's regressor.
    pub params: Vec<Vec<Cell>>,
    /// Linear predictors: (class index or 0, beta per parameter).
    pub predictors: Vec<(usize, Vec<f64>)>,
    pub kind: GrmKind,
    pub link: Link,
    pub link_parameter: f64,
    pub dist_parameter: f64,
    pub offset_value: f64,
    pub offset_slot: Option<usize>,
    pub trials_value: Option<f64>,
    pub trials_slot: Option<usize>,
    /// Class of the reference category (multinomial), which has all betas zero.
    pub reference: Option<usize>,
}

#[derive(Debug)]
pub enum Cell {
    Covariate { slot: usize, exponent: f64 },
    Factor { slot: usize, value: Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrmKind {
    Linear,
    Generalized,
    Multinomial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Identity,
    Log,
    Logc,
    Logit,
    Probit,
    Cloglog,
    Loglog,
    Cauchit,
    Power,
    Oddspower,
    Negbin,
}

pub fn build(
    b: &mut Builder,
    node: Node,
    function: Function,
    classes: &mut Vec<Arc<str>>,
) -> Result<GeneralPlan> {
    let kind = match req_attr(node, "modelType")? {
        "regression" | "generalLinear" => GrmKind::Linear,
        "generalizedLinear" => GrmKind::Generalized,
        "multinomialLogistic" => GrmKind::Multinomial,
        o => return Err(xml::unsupported(node, &format!("modelType=\"{o}\""))),
    };
    let link = match attr(node, "linkFunction") {
        None if kind == GrmKind::Generalized => {
            return Err(Error::InvalidModel(
                "generalizedLinear without linkFunction".into(),
            ))
        }
        None | Some("identity") => Link::Identity,
        Some("log") => Link::Log,
        Some("logc") => Link::Logc,
        Some("logit") => Link::Logit,
        Some("probit") => Link::Probit,
        Some("cloglog") => Link::Cloglog,
        Some("loglog") => Link::Loglog,
        Some("cauchit") => Link::Cauchit,
        Some("power") => Link::Power,
        Some("oddspower") => Link::Oddspower,
        Some("negbin") => Link::Negbin,
        Some(o) => return Err(xml::unsupported(node, &format!("linkFunction=\"{o}\""))),
    };
    let params_node = child(node, "ParameterList").ok_or_else(|| {
        Error::InvalidModel("GeneralRegressionModel without ParameterList".into())
    })?;
    let mut index = HashMap::new();
    for (i, p) in children(params_node, "Parameter").enumerate() {
        let name = req_attr(p, "name")?;
        if index.insert(name.to_string(), i).is_some() {
            return Err(Error::InvalidModel(format!(
                "parameter `{name}` declared twice"
            )));
        }
    }
    let mut params: Vec<Vec<Cell>> = (0..index.len()).map(|_| Vec::new()).collect();
    let factors: Vec<String> = child(node, "FactorList")
        .map(|l| {
            children(l, "Predictor")
                .filter_map(|p| attr(p, "name"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(pp) = child(node, "PPMatrix") {
        for c in children(pp, "PPCell") {
            let pname = req_attr(c, "parameterName")?;
            let pi = *index.get(pname).ok_or_else(|| {
                Error::InvalidModel(format!("PPCell names unknown parameter `{pname}`"))
            })?;
            let field = req_attr(c, "predictorName")?;
            let slot = b.resolve(field)?;
            let raw = req_attr(c, "value")?;
            let cell = if factors.iter().any(|f| f == field) {
                let v = b
                    .dtype(slot)
                    .convert(&Value::text(raw))
                    .unwrap_or_else(|| Value::text(raw));
                Cell::Factor { slot, value: v }
            } else {
                Cell::Covariate {
                    slot,
                    exponent: xml::parse_f64(raw, "PPCell@value")?,
                }
            };
            params[pi].push(cell);
        }
    }
    let pm = child(node, "ParamMatrix")
        .ok_or_else(|| Error::InvalidModel("GeneralRegressionModel without ParamMatrix".into()))?;
    let mut predictors: Vec<(usize, Vec<f64>)> = Vec::new();
    for c in children(pm, "PCell") {
        let class = match (function, attr(c, "targetCategory")) {
            (Function::Classification, Some(t)) => Builder::class_index(classes, t),
            (Function::Classification, None) => {
                return Err(Error::InvalidModel("PCell without targetCategory".into()))
            }
            (Function::Regression, _) => 0,
        };
        let pname = req_attr(c, "parameterName")?;
        let pi = *index.get(pname).ok_or_else(|| {
            Error::InvalidModel(format!("PCell names unknown parameter `{pname}`"))
        })?;
        let beta = req_num(c, "beta")?;
        let pos = match predictors.iter().position(|(k, _)| *k == class) {
            Some(p) => p,
            None => {
                predictors.push((class, vec![0.0; params.len()]));
                predictors.len() - 1
            }
        };
        predictors[pos].1[pi] = beta;
    }
    if predictors.is_empty() {
        predictors.push((0, vec![0.0; params.len()]));
    }
    let reference = match attr(node, "targetReferenceCategory") {
        Some(r) if function == Function::Classification => Some(Builder::class_index(classes, r)),
        _ => None,
    };
    if kind == GrmKind::Multinomial && function != Function::Classification {
        return Err(xml::unsupported(node, "multinomialLogistic for regression"));
    }
    let resolve_opt = |b: &Builder, name: Option<&str>| name.map(|n| b.resolve(n)).transpose();
    Ok(GeneralPlan {
        params,
        predictors,
        kind,
        link,
        link_parameter: num_attr(node, "linkParameter")?.unwrap_or(1.0),
        dist_parameter: num_attr(node, "distParameter")?.unwrap_or(1.0),
        offset_value: num_attr(node, "offsetValue")?.unwrap_or(0.0),
        offset_slot: resolve_opt(b, attr(node, "offsetVariable"))?,
        trials_value: num_attr(node, "trialsValue")?,
        trials_slot: resolve_opt(b, attr(node, "trialsVariable"))?,
        reference,
    })
}

/// The inverse link: from the linear predictor to the mean.
pub fn inverse_link(link: Link, eta: f64, a: f64, dist: f64) -> f64 {
    match link {
        Link::Identity => eta,
        Link::Log => eta.exp(),
        Link::Logc => 1.0 - eta.exp(),
        Link::Logit => 1.0 / (1.0 + (-eta).exp()),
        Link::Probit => normal_cdf(eta),
        Link::Cloglog => 1.0 - (-eta.exp()).exp(),
        Link::Loglog => (-(-eta).exp()).exp(),
        Link::Cauchit => 0.5 + eta.atan() / std::f64::consts::PI,
        Link::Power => {
            if a == 0.0 {
                eta.exp()
            } else {
                eta.powf(1.0 / a)
            }
        }
        Link::Oddspower => {
            if a == 0.0 {
                1.0 / (1.0 + (-eta).exp())
            } else {
                1.0 / (1.0 + (1.0 + a * eta).powf(-1.0 / a))
            }
        }
        Link::Negbin => 1.0 / (dist * ((-eta).exp() - 1.0)),
    }
}

thread_local! {
    /// Per-thread regressor buffer, so a record does not allocate one.
    static REGRESSORS: std::cell::RefCell<Vec<f64>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

pub fn eval(g: &GeneralPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    eval_source(g, m, ctx)
}

/// [`eval`] reading fields from any [`Source`] (the numeric fast path reads the row).
pub fn eval_source<S: Source>(
    g: &GeneralPlan,
    m: &ModelPlan,
    ctx: &mut S,
) -> Result<Outcome<'static>> {
    let mut x = REGRESSORS.with(|b| b.take());
    x.clear();
    let r = eval_with(g, m, ctx, &mut x);
    REGRESSORS.with(|b| b.replace(x));
    r
}

/// Evaluates with `x` (empty) as the buffer of regressors.
fn eval_with<S: Source>(
    g: &GeneralPlan,
    m: &ModelPlan,
    ctx: &mut S,
    x: &mut Vec<f64>,
) -> Result<Outcome<'static>> {
    // Regressors once, shared by all target categories.
    for cells in &g.params {
        let mut v = 1.0;
        for c in cells {
            match c {
                Cell::Covariate { slot, exponent } => {
                    let Some(f) = ctx.num(*slot)? else {
                        return Ok(Outcome::Missing);
                    };
                    v *= if *exponent == 1.0 {
                        f
                    } else {
                        f.powf(*exponent)
                    };
                }
                Cell::Factor { slot, value } => {
                    let f = ctx.value(*slot)?;
                    if f.is_missing() {
                        return Ok(Outcome::Missing);
                    }
                    if !values_equal(&f, value) {
                        v = 0.0;
                    }
                }
            }
        }
        x.push(v);
    }
    let mut offset = g.offset_value;
    if let Some(s) = g.offset_slot {
        let Some(o) = ctx.num(s)? else {
            return Ok(Outcome::Missing);
        };
        offset += o;
    }
    let eta = |betas: &[f64]| betas.iter().zip(x.iter()).map(|(b, x)| b * x).sum::<f64>() + offset;
    if m.function == Function::Regression {
        let e = eta(&g.predictors[0].1);
        let mut mu = match g.kind {
            GrmKind::Linear => e,
            _ => inverse_link(g.link, e, g.link_parameter, g.dist_parameter),
        };
        let trials = match g.trials_slot {
            Some(s) => ctx.num(s)?,
            None => g.trials_value,
        };
        if let Some(t) = trials {
            mu *= t;
        }
        return Ok(Outcome::Value(mu));
    }
    let n = m.classes.len();
    match g.kind {
        GrmKind::Multinomial => {
            let mut etas = vec![0.0; n];
            for (class, betas) in &g.predictors {
                if let Some(e) = etas.get_mut(*class) {
                    *e = eta(betas);
                }
            }
            // Categories without coefficients (the reference) keep eta = 0.
            Ok(Outcome::from_probs(softmax(&etas)))
        }
        _ => {
            // Binary classification through the link: first category gets mu.
            let (class, betas) = &g.predictors[0];
            let mu = inverse_link(g.link, eta(betas), g.link_parameter, g.dist_parameter);
            let mut probs = vec![0.0; n];
            if n == 2 {
                let other = if *class == 0 { 1 } else { 0 };
                probs[*class] = mu;
                probs[other] = 1.0 - mu;
                let _ = g.reference;
            } else if let Some(p) = probs.get_mut(*class) {
                *p = mu;
            }
            Ok(Outcome::from_probs(probs))
        }
    }
}
