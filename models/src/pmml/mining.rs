//! MiningModel: a Segmentation of nested models combined by a multiple-model method.

use std::sync::Arc;

use roxmltree::Node;

use super::eval::{eval_model, Ctx, Outcome};
use super::plan::{Builder, Function, ModelPlan};
use super::predicate::Predicate;
use super::xml::{self, attr, child, children, num_attr};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct MiningPlan {
    pub method: Method,
    pub segments: Vec<Segment>,
    /// `mathContext="float"`: members are combined in single precision (`float.rs`).
    pub float: bool,
}

#[derive(Debug)]
pub struct Segment {
    pub predicate: Predicate,
    pub weight: f64,
    pub model: ModelPlan,
    /// Segment class index -> class index of the mining model.
    pub class_map: Vec<usize>,
    /// The segment's classes are the mining model's, in the same order (no remapping).
    pub identity: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Average,
    WeightedAverage,
    Sum,
    WeightedSum,
    Median,
    WeightedMedian,
    Max,
    Min,
    MajorityVote,
    WeightedMajorityVote,
    SelectFirst,
    ModelChain,
}

pub fn build<'a, 'i>(
    b: &mut Builder<'a, 'i>,
    node: Node<'a, 'i>,
    function: Function,
    classes: &mut Vec<Arc<str>>,
    target: Option<&str>,
) -> Result<MiningPlan> {
    let seg = child(node, "Segmentation")
        .ok_or_else(|| Error::InvalidModel("MiningModel without Segmentation".into()))?;
    let method = match xml::req_attr(seg, "multipleModelMethod")? {
        "average" => Method::Average,
        "weightedAverage" => Method::WeightedAverage,
        "sum" => Method::Sum,
        "weightedSum" => Method::WeightedSum,
        "median" => Method::Median,
        "weightedMedian" => Method::WeightedMedian,
        "max" => Method::Max,
        "min" => Method::Min,
        "majorityVote" => Method::MajorityVote,
        "weightedMajorityVote" => Method::WeightedMajorityVote,
        "selectFirst" => Method::SelectFirst,
        "modelChain" => Method::ModelChain,
        o => {
            return Err(xml::unsupported(
                seg,
                &format!("multipleModelMethod=\"{o}\""),
            ))
        }
    };
    let mut segments = Vec::new();
    for s in children(seg, "Segment") {
        let predicate = b.predicate_of(s)?;
        let model_node = xml::elements(s)
            .find(|c| c.has_attribute("functionName"))
            .ok_or_else(|| Error::InvalidModel("Segment without a model".into()))?;
        let model = b.model(model_node, target)?;
        let class_map: Vec<usize> = model
            .classes
            .iter()
            .map(|c| Builder::class_index(classes, c))
            .collect();
        let identity = class_map.iter().enumerate().all(|(i, c)| i == *c);
        segments.push(Segment {
            predicate,
            weight: num_attr(s, "weight")?.unwrap_or(1.0),
            model,
            class_map,
            identity,
        });
    }
    if segments.is_empty() {
        return Err(Error::InvalidModel("Segmentation without segments".into()));
    }
    if function == Function::Regression
        && matches!(method, Method::MajorityVote | Method::WeightedMajorityVote)
    {
        return Err(xml::unsupported(seg, "voting for regression"));
    }
    let _ = attr(seg, "missingPredictionTreatment");
    let float = super::float::declared(node)?;
    let float_ok = match function {
        Function::Regression => matches!(
            method,
            Method::Sum
                | Method::Average
                | Method::WeightedSum
                | Method::WeightedAverage
                | Method::Max
                | Method::Min
                | Method::SelectFirst
                | Method::ModelChain
        ),
        Function::Classification => matches!(method, Method::SelectFirst | Method::ModelChain),
    };
    if float && !float_ok {
        return Err(super::float::unsupported(
            seg,
            &format!("multipleModelMethod {method:?} for {function:?}"),
        ));
    }
    Ok(MiningPlan {
        method,
        segments,
        float,
    })
}

/// Translates a segment's outcome into the mining model's class indices.
fn remap<'p>(seg: &Segment, o: Outcome<'p>, n: usize) -> Outcome<'p> {
    match o {
        Outcome::Class { winner, mut probs } if seg.identity => {
            if probs.len() != n {
                probs.to_mut().resize(n, 0.0);
            }
            Outcome::Class { winner, probs }
        }
        Outcome::Class { winner, probs } => {
            let mut out = vec![0.0; n];
            for (i, p) in probs.iter().enumerate() {
                if let Some(&j) = seg.class_map.get(i) {
                    if let Some(slot) = out.get_mut(j) {
                        *slot += p;
                    }
                }
            }
            Outcome::Class {
                winner: seg.class_map.get(winner).copied().unwrap_or(0),
                probs: out.into(),
            }
        }
        other => other,
    }
}

pub fn eval<'p>(mp: &'p MiningPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'p>> {
    let n = m.classes.len();
    match mp.method {
        Method::SelectFirst => {
            for s in &mp.segments {
                if s.predicate.eval(ctx)? == Some(true) {
                    let o = eval_model(&s.model, ctx)?;
                    return Ok(remap(s, o, n));
                }
            }
            Ok(Outcome::Missing)
        }
        Method::ModelChain => {
            let mut last = Outcome::Missing;
            for s in &mp.segments {
                if s.predicate.eval(ctx)? == Some(true) {
                    let o = eval_model(&s.model, ctx)?;
                    last = remap(s, o, n);
                }
            }
            Ok(last)
        }
        _ => {
            let mut results: Vec<(f64, Outcome)> = Vec::with_capacity(mp.segments.len());
            for s in &mp.segments {
                if s.predicate.eval(ctx)? == Some(true) {
                    let o = eval_model(&s.model, ctx)?;
                    if matches!(o, Outcome::Missing) {
                        // One missing member makes the ensemble's answer unknown.
                        return Ok(Outcome::Missing);
                    }
                    results.push((s.weight, remap(s, o, n)));
                }
            }
            if results.is_empty() {
                return Ok(Outcome::Missing);
            }
            match m.function {
                Function::Regression if mp.float => combine_values_f32(mp.method, &results),
                Function::Regression => combine_values(mp.method, &results),
                Function::Classification => combine_classes(mp.method, &results, n),
            }
        }
    }
}

/// Sum and average in float, in segment order from zero, as JPMML's float vectors do.
fn combine_values_f32(method: Method, results: &[(f64, Outcome)]) -> Result<Outcome<'static>> {
    let mut vals = Vec::with_capacity(results.len());
    for (w, o) in results {
        match o {
            Outcome::Value(v) => vals.push((*w as f32, *v as f32)),
            _ => {
                return Err(Error::Evaluation(
                    "regression ensemble with a non-numeric member".into(),
                ))
            }
        }
    }
    let sum = |f: &dyn Fn(&(f32, f32)) -> f32| vals.iter().fold(0.0f32, |s, x| s + f(x));
    let v = match method {
        Method::Sum => sum(&|x| x.1),
        Method::Average => sum(&|x| x.1) / vals.len() as f32,
        Method::WeightedSum => sum(&|x| x.0 * x.1),
        Method::WeightedAverage => sum(&|x| x.0 * x.1) / sum(&|x| x.0),
        Method::Max => vals.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max),
        Method::Min => vals.iter().map(|x| x.1).fold(f32::INFINITY, f32::min),
        other => return Err(Error::Unsupported(format!("{other:?} in float"))),
    };
    Ok(Outcome::Value(f64::from(v)))
}

fn combine_values(method: Method, results: &[(f64, Outcome)]) -> Result<Outcome<'static>> {
    let vals: Vec<(f64, f64)> = results
        .iter()
        .filter_map(|(w, o)| match o {
            Outcome::Value(v) => Some((*w, *v)),
            _ => None,
        })
        .collect();
    if vals.len() != results.len() {
        return Err(Error::Evaluation(
            "regression ensemble with a non-numeric member".into(),
        ));
    }
    let n = vals.len() as f64;
    let v = match method {
        Method::Average => vals.iter().map(|(_, v)| v).sum::<f64>() / n,
        Method::WeightedAverage => {
            vals.iter().map(|(w, v)| w * v).sum::<f64>() / vals.iter().map(|(w, _)| w).sum::<f64>()
        }
        Method::Sum => vals.iter().map(|(_, v)| v).sum(),
        Method::WeightedSum => vals.iter().map(|(w, v)| w * v).sum(),
        Method::Max => vals
            .iter()
            .map(|(_, v)| *v)
            .fold(f64::NEG_INFINITY, f64::max),
        Method::Min => vals.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min),
        Method::Median => {
            let mut s: Vec<f64> = vals.iter().map(|(_, v)| *v).collect();
            s.sort_by(f64::total_cmp);
            let k = s.len();
            if k % 2 == 1 {
                s[k / 2]
            } else {
                (s[k / 2 - 1] + s[k / 2]) / 2.0
            }
        }
        Method::WeightedMedian => {
            let mut s = vals.clone();
            s.sort_by(|a, b| a.1.total_cmp(&b.1));
            let half = s.iter().map(|(w, _)| w).sum::<f64>() / 2.0;
            let mut acc = 0.0;
            let mut out = s.last().map(|x| x.1).unwrap_or(f64::NAN);
            for (w, v) in &s {
                acc += w;
                if acc >= half {
                    out = *v;
                    break;
                }
            }
            out
        }
        other => return Err(Error::Unsupported(format!("{other:?} for regression"))),
    };
    Ok(Outcome::Value(v))
}

fn combine_classes(
    method: Method,
    results: &[(f64, Outcome)],
    n: usize,
) -> Result<Outcome<'static>> {
    let mut acc = vec![0.0; n];
    match method {
        Method::MajorityVote | Method::WeightedMajorityVote => {
            let mut total = 0.0;
            for (w, o) in results {
                if let Outcome::Class { winner, .. } = o {
                    let w = if method == Method::MajorityVote {
                        1.0
                    } else {
                        *w
                    };
                    if let Some(a) = acc.get_mut(*winner) {
                        *a += w;
                    }
                    total += w;
                }
            }
            if total > 0.0 {
                for a in &mut acc {
                    *a /= total;
                }
            }
        }
        Method::Average | Method::WeightedAverage | Method::Sum => {
            let mut total = 0.0;
            for (w, o) in results {
                if let Outcome::Class { probs, .. } = o {
                    let w = if method == Method::WeightedAverage {
                        *w
                    } else {
                        1.0
                    };
                    for (a, p) in acc.iter_mut().zip(probs.iter()) {
                        *a += w * p;
                    }
                    total += w;
                }
            }
            if method != Method::Sum && total > 0.0 {
                for a in &mut acc {
                    *a /= total;
                }
            }
        }
        Method::Median => {
            for (i, a) in acc.iter_mut().enumerate() {
                let mut s: Vec<f64> = results
                    .iter()
                    .filter_map(|(_, o)| match o {
                        Outcome::Class { probs, .. } => probs.get(i).copied(),
                        _ => None,
                    })
                    .collect();
                s.sort_by(f64::total_cmp);
                let k = s.len();
                *a = if k == 0 {
                    0.0
                } else if k % 2 == 1 {
                    s[k / 2]
                } else {
                    (s[k / 2 - 1] + s[k / 2]) / 2.0
                };
            }
        }
        Method::Max => {
            // The member with the single most confident class decides.
            let mut best: Option<(f64, &[f64])> = None;
            for (_, o) in results {
                if let Outcome::Class { probs, .. } = o {
                    let top = probs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    if best.is_none_or(|(b, _)| top > b) {
                        best = Some((top, probs));
                    }
                }
            }
            if let Some((_, p)) = best {
                acc = p.to_vec();
            }
        }
        other => return Err(Error::Unsupported(format!("{other:?} for classification"))),
    }
    Ok(Outcome::from_probs(acc))
}
