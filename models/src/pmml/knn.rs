//! NearestNeighborModel: k-NN classification and regression over the model's
//! `TrainingInstances`, as JPMML-Evaluator scores it.
//!
//! Layout of the plan: one row of numbers (or values, for `delta`/`equal` comparisons)
//! per training instance in KNNInput order, the instance's target and id. Per record:
//!
//! 1. the distance to every instance: per input `|x - r|` (or 0/1 for `delta`/`equal`)
//!    raised to the measure's inner power and multiplied by the field weight, summed
//!    (max for `chebychev`), scaled by `inputs / present inputs` when some are missing,
//!    then raised to the outer power (`euclidean`: 1/2);
//! 2. the `numberOfNeighbors` nearest, by distance and then by row (a stable sort);
//! 3. regression: average, median or inverse-distance weighted average
//!    (`1 / (d + threshold)`) of their targets; classification: a (weighted) vote, ties
//!    broken by the class with more training instances, then by the smallest label;
//! 4. `entityId` outputs (rank r: the id of the r-th neighbour, the 1-based row number
//!    unless `instanceIdVariable` names an id column) and `affinity` outputs (its
//!    distance) are written here, before the generic output fields.
//!
//! JPMML does not give class probabilities for k-NN; here `probability` outputs are the
//! neighbours' vote shares.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use roxmltree::Node;

use super::eval::{Ctx, Outcome};
use super::plan::{Builder, Feature, Function, ModelPlan};
use super::types::{compare_values, parse_num, values_equal, DataType};
use super::xml::{self, attr, child, children, num_attr, req_attr};
use crate::error::{Error, Result};
use crate::record::Value;

/// Most training instances times inputs a model may carry (the XML node limit bounds
/// it too; this keeps the per-record work predictable).
const MAX_CELLS: usize = 20_000_000;

#[derive(Debug)]
pub struct KnnPlan {
    k: usize,
    inputs: Vec<KnnInput>,
    measure: Measure,
    /// Instance values, `inputs.len()` per instance.
    cells: Vec<Cell>,
    ids: Vec<Arc<str>>,
    /// Regression targets, one per instance.
    values: Vec<f64>,
    /// Classification targets (class indices), one per instance.
    labels: Vec<usize>,
    /// Training instances per class index (the vote's first tie-break).
    class_counts: Vec<usize>,
    continuous: Continuous,
    weighted_vote: bool,
    threshold: f64,
}

#[derive(Debug)]
struct KnnInput {
    slot: usize,
    weight: f64,
    compare: Compare,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Compare {
    AbsDiff,
    Delta,
    Equal,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Measure {
    Euclidean,
    SquaredEuclidean,
    CityBlock,
    Chebychev,
    Minkowski(f64),
}

impl Measure {
    fn inner_power(self) -> f64 {
        match self {
            Measure::Euclidean | Measure::SquaredEuclidean => 2.0,
            Measure::CityBlock | Measure::Chebychev => 1.0,
            Measure::Minkowski(p) => p,
        }
    }

    fn outer_power(self) -> f64 {
        match self {
            Measure::Euclidean => 2.0,
            Measure::SquaredEuclidean | Measure::CityBlock | Measure::Chebychev => 1.0,
            Measure::Minkowski(p) => p,
        }
    }
}

#[derive(Debug, Clone)]
enum Cell {
    Num(f64),
    Value(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Continuous {
    Average,
    WeightedAverage,
    Median,
}

pub fn build<'a, 'i>(
    b: &mut Builder<'a, 'i>,
    node: Node<'a, 'i>,
    function: Function,
    classes: &mut Vec<Arc<str>>,
    target: Option<&str>,
) -> Result<KnnPlan> {
    let k = xml::req_num(node, "numberOfNeighbors")?;
    if !(k >= 1.0 && k.fract() == 0.0 && k <= u32::MAX as f64) {
        return Err(Error::InvalidModel(format!(
            "NearestNeighborModel numberOfNeighbors=\"{k}\" is not a positive integer"
        )));
    }
    let k = k as usize;
    let continuous = match attr(node, "continuousScoringMethod").unwrap_or("average") {
        "average" => Continuous::Average,
        "weightedAverage" => Continuous::WeightedAverage,
        "median" => Continuous::Median,
        o => {
            return Err(xml::unsupported(
                node,
                &format!("continuousScoringMethod=\"{o}\""),
            ))
        }
    };
    let weighted_vote = match attr(node, "categoricalScoringMethod").unwrap_or("majorityVote") {
        "majorityVote" => false,
        "weightedMajorityVote" => true,
        o => {
            return Err(xml::unsupported(
                node,
                &format!("categoricalScoringMethod=\"{o}\""),
            ))
        }
    };
    let threshold = num_attr(node, "threshold")?.unwrap_or(0.001);

    let cm = child(node, "ComparisonMeasure").ok_or_else(|| {
        Error::InvalidModel("NearestNeighborModel without ComparisonMeasure".into())
    })?;
    if attr(cm, "kind") != Some("distance") {
        return Err(xml::unsupported(
            cm,
            &format!(
                "kind=\"{}\" (only distance measures)",
                attr(cm, "kind").unwrap_or("")
            ),
        ));
    }
    let default_compare = compare_fn(cm)?.unwrap_or(Compare::AbsDiff);
    let m = xml::elements(cm)
        .find(|c| xml::name(*c) != "Extension")
        .ok_or_else(|| Error::InvalidModel("ComparisonMeasure without a measure".into()))?;
    let measure = match xml::name(m) {
        "euclidean" => Measure::Euclidean,
        "squaredEuclidean" => Measure::SquaredEuclidean,
        "cityBlock" => Measure::CityBlock,
        "chebychev" => Measure::Chebychev,
        "minkowski" => {
            let p = xml::req_num(m, "p-parameter")?;
            if !(p > 0.0 && p.is_finite()) {
                return Err(Error::InvalidModel(format!(
                    "minkowski p-parameter=\"{p}\" is not a positive number"
                )));
            }
            Measure::Minkowski(p)
        }
        other => return Err(Error::Unsupported(format!("distance measure <{other}>"))),
    };

    let knn_inputs = child(node, "KNNInputs")
        .ok_or_else(|| Error::InvalidModel("NearestNeighborModel without KNNInputs".into()))?;
    let mut inputs = Vec::new();
    let mut input_names = Vec::new();
    for ki in children(knn_inputs, "KNNInput") {
        let name = req_attr(ki, "field")?;
        let weight = num_attr(ki, "fieldWeight")?.unwrap_or(1.0);
        inputs.push(KnnInput {
            slot: b.resolve(name)?,
            weight,
            compare: compare_fn(ki)?.unwrap_or(default_compare),
        });
        input_names.push(name);
    }
    if inputs.is_empty() {
        return Err(Error::InvalidModel("KNNInputs without KNNInput".into()));
    }

    let ti = child(node, "TrainingInstances").ok_or_else(|| {
        Error::InvalidModel("NearestNeighborModel without TrainingInstances".into())
    })?;
    let fields = child(ti, "InstanceFields")
        .ok_or_else(|| Error::InvalidModel("TrainingInstances without InstanceFields".into()))?;
    // field name -> column (local name: `data:x1` and `x1` are the same column)
    let mut columns: Vec<(&str, &str)> = Vec::new();
    for f in children(fields, "InstanceField") {
        let field = req_attr(f, "field")?;
        let column = attr(f, "column").unwrap_or(field);
        columns.push((field, local(column)));
    }
    let column_of = |field: &str| {
        columns
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                Error::InvalidModel(format!("no InstanceField for the k-NN field `{field}`"))
            })
    };
    let table = child(ti, "InlineTable").ok_or_else(|| {
        xml::unsupported(ti, "without an InlineTable (TableLocator is not supported)")
    })?;
    let target = target
        .ok_or_else(|| Error::InvalidModel("NearestNeighborModel without a target field".into()))?;
    let target_col = column_of(target)?;
    let target_dtype = b.dtype(b.resolve(target)?);
    let id_var = attr(node, "instanceIdVariable");
    let id_col = id_var.map(column_of).transpose()?;
    let input_cols: Vec<&str> = input_names
        .iter()
        .map(|n| column_of(n))
        .collect::<Result<_>>()?;
    let input_dtypes: Vec<DataType> = inputs.iter().map(|i| b.dtype(i.slot)).collect();

    let mut plan = KnnPlan {
        k,
        inputs,
        measure,
        cells: Vec::new(),
        ids: Vec::new(),
        values: Vec::new(),
        labels: Vec::new(),
        class_counts: Vec::new(),
        continuous,
        weighted_vote,
        threshold,
    };
    for (r, row) in children(table, "row").enumerate() {
        let cell = |col: &str| {
            xml::elements(row)
                .find(|c| xml::name(*c) == col)
                .map(|c| c.text().unwrap_or("").trim())
        };
        let missing = |what: &str| {
            Error::InvalidModel(format!(
                "training instance {} has no value for `{what}`",
                r + 1
            ))
        };
        for ((col, input), (name, dtype)) in input_cols
            .iter()
            .zip(&plan.inputs)
            .zip(input_names.iter().zip(&input_dtypes))
        {
            let raw = cell(col)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing(name))?;
            let v = dtype.convert(&Value::text(raw)).ok_or_else(|| {
                Error::InvalidModel(format!(
                    "training instance {}: `{raw}` is not a valid {dtype:?} for `{name}`",
                    r + 1
                ))
            })?;
            plan.cells.push(match (input.compare, v.as_f64()) {
                (Compare::AbsDiff, Some(n)) => Cell::Num(n),
                (Compare::AbsDiff, None) => {
                    return Err(Error::InvalidModel(format!(
                        "training instance {}: `{raw}` for `{name}` is not a number",
                        r + 1
                    )))
                }
                _ => Cell::Value(v),
            });
        }
        if plan.cells.len() > MAX_CELLS {
            return Err(Error::InvalidModel(format!(
                "TrainingInstances hold more than {MAX_CELLS} values"
            )));
        }
        let t = cell(target_col)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(target))?;
        match function {
            Function::Regression => {
                let v = target_dtype
                    .convert(&Value::text(t))
                    .and_then(|v| v.as_f64())
                    .ok_or_else(|| {
                        Error::InvalidModel(format!(
                            "training instance {}: target `{t}` is not a number",
                            r + 1
                        ))
                    })?;
                plan.values.push(v);
            }
            Function::Classification => {
                let c = Builder::class_index(classes, t);
                plan.labels.push(c);
            }
        }
        let id = match id_col {
            Some(c) => Arc::from(cell(c).ok_or_else(|| missing(id_var.unwrap_or("")))?),
            None => Arc::from((r + 1).to_string()),
        };
        plan.ids.push(id);
    }
    if plan.ids.len() < k {
        return Err(Error::InvalidModel(format!(
            "NearestNeighborModel numberOfNeighbors={k} but only {} training instances",
            plan.ids.len()
        )));
    }
    plan.class_counts = vec![0; classes.len()];
    for &c in &plan.labels {
        if let Some(n) = plan.class_counts.get_mut(c) {
            *n += 1;
        }
    }
    Ok(plan)
}

/// The local part of a qualified column name (`data:x1` -> `x1`).
fn local(column: &str) -> &str {
    column.rsplit(':').next().unwrap_or(column)
}

fn compare_fn(node: Node) -> Result<Option<Compare>> {
    Ok(match attr(node, "compareFunction") {
        None => None,
        Some("absDiff") => Some(Compare::AbsDiff),
        Some("delta") => Some(Compare::Delta),
        Some("equal") => Some(Compare::Equal),
        Some(o) => return Err(xml::unsupported(node, &format!("compareFunction=\"{o}\""))),
    })
}

/// Checks, after the outputs are built, that neighbour outputs sit on a k-NN model only.
pub fn check_outputs(m: &ModelPlan, node: Node) -> Result<()> {
    let is_knn = matches!(m.kind, super::plan::ModelKind::Knn(_));
    if !is_knn
        && m.outputs
            .iter()
            .any(|o| matches!(o.feature, Feature::EntityId(_) | Feature::Affinity(_)))
    {
        return Err(xml::unsupported(
            node,
            "with entityId or affinity output fields (only NearestNeighborModel has them here)",
        ));
    }
    Ok(())
}

pub fn eval(p: &KnnPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    let mut query = Vec::with_capacity(p.inputs.len());
    for input in &p.inputs {
        query.push(ctx.value(input.slot)?);
    }
    let present = query.iter().filter(|v| !v.is_missing()).count();
    if present == 0 {
        return Err(Error::Evaluation(
            "NearestNeighborModel: every k-NN input is missing".into(),
        ));
    }
    let adjustment = p.inputs.len() as f64 / present as f64;
    let query_num: Vec<Option<f64>> = query.iter().map(Value::as_f64).collect();
    let n = p.ids.len();
    let mut dist: Vec<(f64, usize)> = Vec::with_capacity(n);
    let inner = p.measure.inner_power();
    for (row, cells) in p.cells.chunks(p.inputs.len()).enumerate() {
        let mut sum = 0.0;
        let mut max = f64::NEG_INFINITY;
        for ((input, cell), (q, qn)) in p.inputs.iter().zip(cells).zip(query.iter().zip(&query_num))
        {
            if q.is_missing() {
                continue;
            }
            let d = match (input.compare, cell) {
                (Compare::AbsDiff, Cell::Num(r)) => match qn {
                    Some(x) => (x - r).abs(),
                    None => {
                        return Err(Error::Evaluation(format!(
                            "NearestNeighborModel: `{q}` is not a number"
                        )))
                    }
                },
                (Compare::Delta, c) => f64::from(!values_equal(q, &cell_value(c))),
                (Compare::Equal, c) => f64::from(values_equal(q, &cell_value(c))),
                (Compare::AbsDiff, Cell::Value(_)) => f64::NAN,
            };
            let d = d.powf(inner) * input.weight;
            sum += d;
            max = max.max(d);
        }
        let d = match p.measure {
            Measure::Chebychev => max * adjustment,
            measure => {
                let outer = measure.outer_power();
                let s = sum * adjustment;
                if outer == 1.0 {
                    s
                } else {
                    s.powf(1.0 / outer)
                }
            }
        };
        dist.push((d, row));
    }
    // Stable: equal distances keep the instances' order.
    dist.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    let nearest = &dist[..p.k.min(dist.len())];

    for o in &m.outputs {
        let v = match o.feature {
            Feature::EntityId(rank) => rank
                .checked_sub(1)
                .and_then(|i| dist.get(i))
                .map(|(_, row)| Value::Text(Arc::clone(&p.ids[*row])))
                .unwrap_or(Value::Missing),
            Feature::Affinity(rank) => rank
                .checked_sub(1)
                .and_then(|i| dist.get(i))
                .map(|(d, _)| Value::Number(*d))
                .unwrap_or(Value::Missing),
            _ => continue,
        };
        ctx.set(o.slot, v);
    }

    match m.function {
        Function::Regression => Ok(Outcome::Value(regress(p, nearest))),
        Function::Classification => Ok(classify(p, m, nearest)),
    }
}

fn cell_value(c: &Cell) -> Value {
    match c {
        Cell::Num(n) => Value::Number(*n),
        Cell::Value(v) => v.clone(),
    }
}

fn regress(p: &KnnPlan, nearest: &[(f64, usize)]) -> f64 {
    let target = |row: usize| p.values.get(row).copied().unwrap_or(f64::NAN);
    match p.continuous {
        Continuous::Average => {
            let mut s = 0.0;
            for (_, row) in nearest {
                s += target(*row);
            }
            s / nearest.len() as f64
        }
        Continuous::WeightedAverage => {
            let (mut wv, mut ws) = (0.0, 0.0);
            for (d, row) in nearest {
                let w = 1.0 / (d + p.threshold);
                wv += w * target(*row);
                ws += w;
            }
            wv / ws
        }
        Continuous::Median => {
            let mut v: Vec<f64> = nearest.iter().map(|(_, r)| target(*r)).collect();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        }
    }
}

fn classify(p: &KnnPlan, m: &ModelPlan, nearest: &[(f64, usize)]) -> Outcome<'static> {
    let n = m.classes.len();
    let mut votes = vec![0.0; n];
    for (d, row) in nearest {
        let w = if p.weighted_vote {
            1.0 / (d + p.threshold)
        } else {
            1.0
        };
        if let Some(v) = p.labels.get(*row).and_then(|c| votes.get_mut(*c)) {
            *v += w;
        }
    }
    let best = votes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut tied: Vec<usize> = (0..n).filter(|&c| votes[c] == best).collect();
    if tied.len() > 1 {
        let most = tied
            .iter()
            .map(|&c| p.class_counts.get(c).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        tied.retain(|&c| p.class_counts.get(c).copied().unwrap_or(0) == most);
    }
    // Last tie-break: the smallest label (numerically when labels are numbers).
    let winner = tied.into_iter().min_by(|&a, &b| {
        let (la, lb) = (&m.classes[a], &m.classes[b]);
        match (parse_num(la), parse_num(lb)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => compare_values(&Value::Text(la.clone()), &Value::Text(lb.clone()))
                .unwrap_or(Ordering::Equal),
        }
    });
    let Some(winner) = winner else {
        return Outcome::Missing;
    };
    let total: f64 = votes.iter().sum();
    let probs = if total > 0.0 {
        votes.iter().map(|v| v / total).collect()
    } else {
        votes
    };
    Outcome::Class {
        winner,
        probs: Cow::Owned(probs),
    }
}
