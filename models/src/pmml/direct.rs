//! A fast path of `score_row` for the common simple models, used when the row has no NaN
//! (no missing input) and every input is a plain double (passed through unchanged):
//!
//! - a top-level TreeModel whose every inner node is a binary numeric split (`x <= v` /
//!   `x > v`) on an input: walked on the row itself;
//! - a top-level regression RegressionModel with numeric predictors on inputs only: the
//!   table is summed straight from the row (by the same code as the generic path);
//! - a top-level GeneralRegressionModel reading inputs only: the generic code, reading
//!   the row instead of slots.
//!
//! No slot buffer, no `Value`s, no three-valued logic. Everything after the core (targets,
//! outputs, the `Prediction`) is the generic code, so results are identical.

use super::eval::{self, Outcome, Source};
use super::general::{self, Cell};
use super::plan::{Feature, Function, ModelKind, Plan};
use super::predicate::{CmpOp, Predicate};
use super::{regression, tree};
use crate::error::Result;
use crate::record::Value;
use crate::Prediction;

/// Marks a leaf in [`Node::left`].
const LEAF: u32 = u32::MAX;

#[derive(Debug)]
pub enum DirectModel {
    /// Aligned with the tree plan's nodes.
    Tree(Vec<Node>),
    /// Row index of each slot (`LEAF` = not an input).
    Regression(Vec<u32>),
    /// GeneralRegressionModel reading inputs only; row index of each slot.
    General(Vec<u32>),
}

/// A row read as slots: the fast path's [`Source`] (every slot read is an input).
struct RowSource<'a> {
    row: &'a [f64],
    slot_input: &'a [u32],
}

impl Source for RowSource<'_> {
    #[inline(always)]
    fn num(&mut self, slot: usize) -> Result<Option<f64>> {
        Ok(self
            .slot_input
            .get(slot)
            .and_then(|&i| self.row.get(i as usize))
            .copied())
    }

    fn value(&mut self, slot: usize) -> Result<Value> {
        Ok(self.num(slot)?.map_or(Value::Missing, Value::Number))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Node {
    /// Index into the row.
    input: u32,
    op: CmpOp,
    value: f64,
    /// Child when the comparison holds / does not; `left == LEAF` for a leaf.
    left: u32,
    right: u32,
}

impl DirectModel {
    /// The direct form of the plan's model, when it has one.
    pub fn build(plan: &Plan) -> Option<DirectModel> {
        // Plain inputs pass a non-NaN number through unchanged.
        if !plan.inputs.iter().all(|i| i.plain) {
            return None;
        }
        // Outputs without expressions can be computed from the outcome alone; the final
        // ones of a lone (non-mining) model are exactly `plan.output_slots`.
        if plan
            .model
            .outputs
            .iter()
            .any(|o| matches!(o.feature, Feature::Transformed(_)))
        {
            return None;
        }
        let finals: Vec<usize> = plan
            .model
            .outputs
            .iter()
            .filter(|o| o.final_result)
            .map(|o| o.slot)
            .collect();
        if finals != plan.output_slots {
            return None;
        }
        // Row index of each slot; the last input of a slot is the one whose value it holds.
        let mut slot_input = vec![LEAF; plan.slots.len()];
        for (i, input) in plan.inputs.iter().enumerate() {
            *slot_input.get_mut(input.slot)? = u32::try_from(i).ok()?;
        }
        let input_of = |slot: usize| slot_input.get(slot).copied().filter(|&i| i != LEAF);
        match &plan.model.kind {
            ModelKind::Tree(t) => {
                if !matches!(t.nodes.first()?.predicate, Predicate::True) {
                    return None;
                }
                let mut nodes = Vec::with_capacity(t.nodes.len());
                for n in &t.nodes {
                    if n.children.is_empty() {
                        nodes.push(Node {
                            input: 0,
                            op: CmpOp::Eq,
                            value: 0.0,
                            left: LEAF,
                            right: LEAF,
                        });
                        continue;
                    }
                    let s = n.split?;
                    let (&left, &right) = (n.children.first()?, n.children.get(1)?);
                    if left == LEAF || right == LEAF {
                        return None;
                    }
                    nodes.push(Node {
                        input: input_of(s.slot)?,
                        op: s.op,
                        value: s.value,
                        left,
                        right,
                    });
                }
                Some(DirectModel::Tree(nodes))
            }
            ModelKind::Regression(r) => {
                let t = r.tables.first()?;
                // (float models take the generic path: its link is single precision)
                let simple = plan.model.function == Function::Regression
                    && !r.float
                    && t.categorical.is_empty()
                    && t.terms.is_empty()
                    && t.numeric
                        .iter()
                        .all(|(slot, _, _)| input_of(*slot).is_some());
                simple.then_some(DirectModel::Regression(slot_input))
            }
            ModelKind::General(g) => {
                let cells = g.params.iter().flatten().all(|c| match c {
                    Cell::Covariate { slot, .. } | Cell::Factor { slot, .. } => {
                        input_of(*slot).is_some()
                    }
                });
                let extra = [g.offset_slot, g.trials_slot]
                    .iter()
                    .flatten()
                    .all(|s| input_of(*s).is_some());
                (cells && extra).then_some(DirectModel::General(slot_input))
            }
            _ => None,
        }
    }

    /// Scores `row` (input-field order, already length-checked) into `out` when no value
    /// is NaN; `false` (and `out` untouched) otherwise.
    pub fn score(&self, plan: &Plan, row: &[f64], out: &mut Prediction) -> bool {
        if row.iter().any(|x| x.is_nan()) {
            return false;
        }
        let m = &plan.model;
        let outcome = match (self, &m.kind) {
            (DirectModel::Tree(nodes), ModelKind::Tree(t)) => match walk(nodes, row) {
                Some(leaf) => tree::outcome(t, m, Some(leaf)),
                None => return false,
            },
            (DirectModel::Regression(slot_input), ModelKind::Regression(r)) => {
                let Some(t) = r.tables.first() else {
                    return false;
                };
                let num = |slot: usize| {
                    Ok(slot_input
                        .get(slot)
                        .and_then(|&i| row.get(i as usize))
                        .copied())
                };
                match regression::numeric_part(t, num) {
                    Ok(Some(y)) => Outcome::Value(regression::link(r.norm, y)),
                    _ => return false,
                }
            }
            (DirectModel::General(slot_input), ModelKind::General(g)) => {
                let mut src = RowSource { row, slot_input };
                match general::eval_source(g, m, &mut src) {
                    Ok(o) => o,
                    Err(_) => return false,
                }
            }
            _ => return false,
        };
        let outcome = eval::apply_targets(m, outcome);
        out.push(eval::primary(m, &outcome));
        for o in m.outputs.iter().filter(|o| o.final_result) {
            let v = eval::feature_value(m, &o.feature, &outcome);
            out.push(eval::convert_output(&plan.slots, o.slot, v));
        }
        true
    }
}

/// The leaf a row without NaN reaches (`None` only for a malformed plan).
#[inline]
fn walk(nodes: &[Node], row: &[f64]) -> Option<usize> {
    let mut cur = 0usize;
    // At most one step per node: a malformed plan cannot loop.
    for _ in 0..nodes.len() {
        let n = nodes.get(cur)?;
        if n.left == LEAF {
            return Some(cur);
        }
        let x = *row.get(n.input as usize)?;
        cur = if n.op.holds(x, n.value) {
            n.left
        } else {
            n.right
        } as usize;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::PmmlModel;

    fn seed(name: &str) -> PmmlModel {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data")
            .join(name);
        let bytes = std::fs::read(path).expect("seed model");
        PmmlModel::from_bytes(&bytes).expect("loads")
    }

    #[test]
    fn seed_trees_take_the_direct_path() {
        for name in [
            "winequalityDesisionTreeRegression.pmml",
            "winequalityDecisionTreeClassification.pmml",
        ] {
            let m = seed(name);
            assert!(m.direct.is_some(), "{name}");
            // A missing input falls back to the generic path, with the same result shape.
            let mut row = vec![1.0; m.input_fields().len()];
            let direct = m.score_row(&row).expect("scores");
            row[0] = f64::NAN;
            let generic = m.score_row(&row).expect("scores");
            assert_eq!(direct.values().len(), generic.values().len());
        }
        assert!(seed("winequalityLinearRegression.pmml").direct.is_some());
        assert!(seed("winequalityGeneralizedLinearRegressionGamma.pmml")
            .direct
            .is_some());
        assert!(seed("winequalityMultilayerPerceptron.pmml")
            .direct
            .is_none());
    }

    #[test]
    fn a_reused_prediction_follows_the_model() {
        let reg = seed("winequalityDesisionTreeRegression.pmml");
        let cls = seed("winequalityDecisionTreeClassification.pmml");
        let mut p = crate::Prediction::default();
        for (m, nan) in [(&cls, false), (&reg, false), (&cls, true), (&reg, true)] {
            let mut row = vec![5.0; m.input_fields().len()];
            if nan {
                row[1] = f64::NAN;
            }
            m.score_row_into(&row, &mut p).expect("scores");
            assert_eq!(p.values().len(), m.output_fields().len());
            let names: Vec<&str> = p.outputs().map(|(n, _)| n).collect();
            assert_eq!(names, m.output_fields());
            assert_eq!(p, m.score_row(&row).expect("scores"));
        }
    }
}
