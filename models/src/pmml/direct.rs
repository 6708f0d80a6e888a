//! Compiled forms of the common models for `score_row`, used when the row has no NaN (no
//! missing input) and every input is a plain double (passed through unchanged). Each is
//! built once from the plan and reads the row itself: no slot buffer, no `Value`s, no
//! three-valued logic, no allocation.
//!
//! - `Tree`: a TreeModel whose every inner node is a binary numeric split on an input,
//!   flattened into 16-byte nodes (threshold, input, first child) with both children side by
//!   side and every comparison normalized to `x <= t` (`x < v` is `x <= next_down(v)`; `>` and
//!   `>=` swap the children), so a step is one load, one compare and an add, no branch on the
//!   operator (Treelite's and lleaves' layout, interpreted).
//! - `Forest`: a MiningModel (average, weighted average, sum, weighted sum) of such trees
//!   whose segments are all `True`; leaf class probabilities are stored already remapped to
//!   the ensemble's classes and accumulated in a stack array.
//! - `Regression`: a regression RegressionModel with numeric predictors on inputs only.
//! - `General`: a GeneralRegressionModel (regression, covariates only) with its parameter
//!   cells resolved to row indices; `GeneralRow` any other one reading inputs only, through
//!   the generic code reading the row.
//! - `Neural`: a NeuralNetwork whose layers are dense (every neuron of a layer reads the same
//!   units in the same order): weights stored input-major, so a layer is computed for all its
//!   neurons at once (vectorized across neurons; each neuron still sums bias first, then its
//!   connections in document order, so the result is the generic evaluator's bit for bit).
//!
//! Everything after the core (targets, outputs, the `Prediction`) is the generic code, and
//! every core does the generic evaluator's float operations in its order, so results are
//! identical (`tests/golden.rs` checks `score_row` against `score` on every golden file).

use std::borrow::Cow;

use super::eval::{self, Outcome, Source};
use super::expr::{norm_continuous, Expr, NormOutliers};
use super::general::{self, Cell, GrmKind};
use super::mining::Method;
use super::neural::{self, Activation, LayerNorm, NeuralOutput};
use super::plan::{Feature, Function, ModelKind, ModelPlan, Plan};
use super::predicate::{CmpOp, Predicate};
use super::tree::TreePlan;
use super::types::DataType;
use super::{regression, tree};
use crate::error::Result;
use crate::record::Value;
use crate::Prediction;

/// Marks a leaf in [`FNode::input`] (and "not an input" in slot maps).
const LEAF: u32 = u32::MAX;
/// Most classes of a compiled ensemble or network (more: the generic path).
const MAX_CLASSES: usize = 64;
/// Most units (inputs + neurons) of a compiled network (more: the generic path).
const MAX_UNITS: usize = 1024;

#[derive(Debug)]
pub enum DirectModel {
    Tree(FlatTree),
    Forest(Forest),
    /// Intercept, then (row index, exponent, coefficient) per numeric predictor.
    Regression {
        intercept: f64,
        terms: Vec<(u32, f64, f64)>,
    },
    General(GeneralDirect),
    /// GeneralRegressionModel reading inputs only; row index of each slot.
    GeneralRow(Vec<u32>),
    Neural(NeuralDirect),
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

/// One node of a [`Binary`] tree: an inner node sends `row[input] <= threshold` to `next`
/// and the rest to `next + 1`. A leaf points to itself with a threshold of +inf (no number
/// is above it), so a walk of a fixed number of steps needs no leaf test: every tree is
/// walked exactly its depth, without a data-dependent branch.
#[derive(Debug, Clone, Copy)]
pub struct FNode {
    threshold: f64,
    input: u32,
    next: u32,
}

/// One tree flattened into binary nodes: the first stage of an [`Arena`]'s layout.
#[derive(Debug, Default)]
pub struct Binary {
    nodes: Vec<FNode>,
    /// A leaf's payload (plan node index, leaf value or probability offset), by node index.
    payload: Vec<u32>,
}

impl Binary {
    /// Flattens a tree of binary numeric splits on inputs; `leaf` gives a leaf's payload from
    /// its plan node index (`None`: no compiled form). Returns (root, depth).
    fn add(
        &mut self,
        t: &TreePlan,
        input_of: &impl Fn(usize) -> Option<u32>,
        mut leaf: impl FnMut(usize) -> Option<u32>,
    ) -> Option<(u32, u32)> {
        if !matches!(t.nodes.first()?.predicate, Predicate::True) {
            return None;
        }
        let root = self.alloc(1)?;
        let mut depth = 0u32;
        // (plan node, flat index, depth)
        let mut stack = vec![(0usize, root, 0u32)];
        while let Some((pi, fi, d)) = stack.pop() {
            let n = t.nodes.get(pi)?;
            let (node, payload) = if n.children.is_empty() {
                let node = FNode {
                    threshold: f64::INFINITY,
                    input: 0,
                    next: fi,
                };
                (node, leaf(pi)?)
            } else {
                let s = n.split?;
                let (a, b) = (*n.children.first()? as usize, *n.children.get(1)? as usize);
                // `x op v` true picks `a`; as `x <= t` true picks `yes`. For a number x,
                // `x < v` is `x <= next_down(v)` (v = -inf has no such bound: not compiled).
                let (threshold, yes, no) = match s.op {
                    CmpOp::Le => (s.value, a, b),
                    CmpOp::Gt => (s.value, b, a),
                    CmpOp::Lt if s.value > f64::NEG_INFINITY => (s.value.next_down(), a, b),
                    CmpOp::Ge if s.value > f64::NEG_INFINITY => (s.value.next_down(), b, a),
                    _ => return None,
                };
                let next = self.alloc(2)?;
                depth = depth.max(d + 1);
                stack.push((no, next + 1, d + 1));
                stack.push((yes, next, d + 1));
                let node = FNode {
                    threshold,
                    input: input_of(s.slot)?,
                    next,
                };
                (node, 0)
            };
            *self.nodes.get_mut(fi as usize)? = node;
            *self.payload.get_mut(fi as usize)? = payload;
        }
        Some((root, depth))
    }

    /// One step of a walk: the next node after `i` (`None` only for a malformed layout).
    #[inline(always)]
    fn step(&self, row: &[f64], i: u32) -> Option<u32> {
        let n = self.nodes.get(i as usize)?;
        let x = *row.get(n.input as usize)?;
        Some(n.next + u32::from(x > n.threshold))
    }

    /// `n` new nodes (filled in by `add`); the index of the first.
    fn alloc(&mut self, n: usize) -> Option<u32> {
        let first = u32::try_from(self.nodes.len()).ok()?;
        if first.checked_add(n as u32)? == u32::MAX {
            return None;
        }
        let filler = FNode {
            threshold: f64::INFINITY,
            input: 0,
            next: first,
        };
        self.nodes.extend(std::iter::repeat_n(filler, n));
        self.payload.extend(std::iter::repeat_n(0, n));
        Some(first)
    }
}

/// One node of an [`Arena`]: two levels of a binary tree in one, so that a walk takes
/// half the dependent steps. Split 0 is the node's own, splits 1 and 2 those of its yes and
/// no children; the four grandchildren are `next..next + 4` (yes-yes, yes-no, no-yes,
/// no-no). A leaf child becomes a split no number passes (+inf) leading to that leaf twice;
/// a leaf points to itself through +inf thresholds, so walks of a fixed number of steps need
/// no leaf test and no data-dependent branch.
#[derive(Debug, Clone, Copy)]
pub struct QNode {
    threshold: [f64; 3],
    input: [u32; 3],
    next: u32,
}

/// Flattened trees side by side in one node array.
#[derive(Debug, Default)]
pub struct Arena {
    nodes: Vec<QNode>,
    /// A leaf's payload (plan node index, leaf value or probability offset), by node index.
    payload: Vec<u32>,
}

impl Arena {
    /// Appends a tree of binary numeric splits on inputs; `leaf` gives a leaf's payload from
    /// its plan node index (`None`: no compiled form). Returns (root, steps of a walk).
    fn add(
        &mut self,
        t: &TreePlan,
        input_of: &impl Fn(usize) -> Option<u32>,
        leaf: impl FnMut(usize) -> Option<u32>,
    ) -> Option<(u32, u32)> {
        let mut b = Binary::default();
        let (root, depth) = b.add(t, input_of, leaf)?;
        let is_leaf = |i: u32| b.nodes.get(i as usize).map(|n| n.next == i);
        let qroot = self.alloc(1)?;
        let mut stack = vec![(root, qroot)];
        while let Some((bi, qi)) = stack.pop() {
            let n = *b.nodes.get(bi as usize)?;
            let node = if is_leaf(bi)? {
                *self.payload.get_mut(qi as usize)? = *b.payload.get(bi as usize)?;
                QNode {
                    threshold: [f64::INFINITY; 3],
                    input: [0; 3],
                    next: qi,
                }
            } else {
                let mut threshold = [n.threshold, f64::INFINITY, f64::INFINITY];
                let mut input = [n.input, 0, 0];
                let mut grand = [0u32; 4];
                for (k, c) in [n.next, n.next + 1].into_iter().enumerate() {
                    let cn = *b.nodes.get(c as usize)?;
                    let pair = if is_leaf(c)? {
                        [c, c]
                    } else {
                        threshold[k + 1] = cn.threshold;
                        input[k + 1] = cn.input;
                        [cn.next, cn.next + 1]
                    };
                    grand[2 * k] = pair[0];
                    grand[2 * k + 1] = pair[1];
                }
                let next = self.alloc(4)?;
                for (k, g) in grand.into_iter().enumerate() {
                    stack.push((g, next + k as u32));
                }
                QNode {
                    threshold,
                    input,
                    next,
                }
            };
            *self.nodes.get_mut(qi as usize)? = node;
        }
        Some((qroot, depth.div_ceil(2)))
    }

    /// `n` new nodes (filled in by `add`); the index of the first.
    fn alloc(&mut self, n: usize) -> Option<u32> {
        let first = u32::try_from(self.nodes.len()).ok()?;
        if first.checked_add(n as u32)? >= u32::MAX - 4 {
            return None;
        }
        let filler = QNode {
            threshold: [f64::INFINITY; 3],
            input: [0; 3],
            next: first,
        };
        self.nodes.extend(std::iter::repeat_n(filler, n));
        self.payload.extend(std::iter::repeat_n(0, n));
        Some(first)
    }

    /// One step of a walk (two tree levels): the next node after `i` (`None` only for a
    /// malformed layout). The three comparisons are independent; the grandchild is picked
    /// with bit operations, not branches.
    #[inline(always)]
    fn step(&self, row: &[f64], i: u32) -> Option<u32> {
        let n = self.nodes.get(i as usize)?;
        let c0 = *row.get(n.input[0] as usize)? > n.threshold[0];
        let c1 = *row.get(n.input[1] as usize)? > n.threshold[1];
        let c2 = *row.get(n.input[2] as usize)? > n.threshold[2];
        let low = (c0 & c2) | (!c0 & c1);
        Some(n.next + ((u32::from(c0) << 1) | u32::from(low)))
    }

    /// The payload of the leaf a row without NaN reaches from `root` in `steps` steps.
    #[inline]
    fn walk(&self, row: &[f64], root: u32, steps: u32) -> Option<u32> {
        let mut i = root;
        for _ in 0..steps {
            i = self.step(row, i)?;
        }
        self.payload.get(i as usize).copied()
    }
}

/// A single flattened tree.
#[derive(Debug)]
pub struct FlatTree {
    arena: Arena,
    root: u32,
    depth: u32,
}

/// A tree ensemble: see the module docs.
#[derive(Debug)]
pub struct Forest {
    /// Binary nodes: members walked side by side are throughput-bound, where two-level
    /// nodes (a latency win for one tree) only add comparisons.
    arena: Binary,
    /// (root, depth) of each member, in segment order.
    trees: Vec<(u32, u32)>,
    weights: Vec<f64>,
    method: Method,
    /// Classification: `classes` probabilities per leaf (in the ensemble's class order), a
    /// leaf's payload is its offset; regression: one value per leaf, payload the index.
    leaves: Vec<f64>,
    classes: usize,
}

/// Members walked side by side: their independent steps overlap in the CPU.
const LANES: usize = 8;

/// A regression GeneralRegressionModel of covariates on inputs.
#[derive(Debug)]
pub struct GeneralDirect {
    /// Per parameter, its cells' range in `cells`.
    params: Vec<(u32, u32)>,
    /// (row index, exponent) per covariate cell.
    cells: Vec<(u32, f64)>,
    betas: Vec<f64>,
    offset_row: Option<u32>,
    trials_row: Option<u32>,
}

#[derive(Debug)]
enum NeuralInput {
    Field(u32),
    Norm {
        row: u32,
        points: Vec<(f64, f64)>,
        outliers: NormOutliers,
    },
}

#[derive(Debug)]
struct DenseLayer {
    activation: Activation,
    threshold: f64,
    normalization: LayerNorm,
    first_unit: usize,
    /// The units every neuron reads, in connection order.
    from: Vec<u32>,
    bias: Vec<f64>,
    /// `weights[j * neurons + k]`: neuron `k`'s weight on `from[j]`.
    weights: Vec<f64>,
}

/// (original, normalized) pairs of a NormContinuous.
type Points = Vec<(f64, f64)>;

/// A NeuralNetwork of dense layers: see the module docs.
#[derive(Debug)]
pub struct NeuralDirect {
    inputs: Vec<NeuralInput>,
    layers: Vec<DenseLayer>,
    units: usize,
    /// Regression: the output unit and its NormContinuous points (orig/norm swapped and
    /// sorted, as `denorm_continuous` builds them per record).
    value: Option<(usize, Option<Points>)>,
    /// Classification: (unit, class) per output.
    classes: Vec<(usize, usize)>,
}

impl DirectModel {
    /// The compiled form of the plan's model, when it has one.
    pub fn build(plan: &Plan) -> Option<DirectModel> {
        // Plain inputs pass a non-NaN number through unchanged.
        if !plan.inputs.iter().all(|i| i.plain) {
            return None;
        }
        // Outputs without expressions can be computed from the outcome alone; the final
        // ones of a lone (non-chain) model are exactly `plan.output_slots`.
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
        let m = &plan.model;
        match &m.kind {
            ModelKind::Tree(t) => {
                let mut arena = Arena::default();
                let (root, depth) = arena.add(t, &input_of, |i| u32::try_from(i).ok())?;
                Some(DirectModel::Tree(FlatTree { arena, root, depth }))
            }
            // (float ensembles combine in single precision: the generic path)
            ModelKind::Mining(mp) if mp.float => None,
            ModelKind::Mining(mp) => Forest::build(m, mp, &input_of).map(DirectModel::Forest),
            ModelKind::Regression(r) => {
                let t = r.tables.first()?;
                // (float models take the generic path: its link is single precision)
                if m.function != Function::Regression
                    || r.float
                    || !t.categorical.is_empty()
                    || !t.terms.is_empty()
                {
                    return None;
                }
                let terms = t
                    .numeric
                    .iter()
                    .map(|&(slot, exp, coef)| Some((input_of(slot)?, exp, coef)))
                    .collect::<Option<_>>()?;
                Some(DirectModel::Regression {
                    intercept: t.intercept,
                    terms,
                })
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
                if !(cells && extra) {
                    return None;
                }
                match GeneralDirect::build(m, g, &input_of) {
                    Some(d) => Some(DirectModel::General(d)),
                    None => Some(DirectModel::GeneralRow(slot_input.clone())),
                }
            }
            ModelKind::Neural(n) => NeuralDirect::build(m, n, &input_of).map(DirectModel::Neural),
            _ => None,
        }
    }

    /// Scores `row` (input-field order, already length-checked) into `out` when no value
    /// is NaN; `false` (and `out` untouched) otherwise.
    #[inline]
    pub fn score(&self, plan: &Plan, row: &[f64], out: &mut Prediction) -> bool {
        if row.iter().any(|x| x.is_nan()) {
            return false;
        }
        let m = &plan.model;
        let outcome = match (self, &m.kind) {
            (DirectModel::Tree(f), ModelKind::Tree(t)) => {
                match f.arena.walk(row, f.root, f.depth) {
                    Some(leaf) => tree::outcome(t, m, Some(leaf as usize)),
                    None => return false,
                }
            }
            (DirectModel::Forest(f), ModelKind::Mining(_)) => {
                return with_buf(f.classes, |acc| match f.score(row, acc) {
                    Some(o) => {
                        emit(plan, m, o, out);
                        true
                    }
                    None => false,
                })
            }
            (DirectModel::Regression { intercept, terms }, ModelKind::Regression(r)) => {
                let mut y = *intercept;
                for &(i, exp, coef) in terms {
                    let Some(&x) = row.get(i as usize) else {
                        return false;
                    };
                    y += coef * if exp == 1.0 { x } else { x.powf(exp) };
                }
                Outcome::Value(regression::link(r.norm, y))
            }
            (DirectModel::General(d), ModelKind::General(g)) => match d.score(g, row) {
                Some(v) => Outcome::Value(v),
                None => return false,
            },
            (DirectModel::GeneralRow(slot_input), ModelKind::General(g)) => {
                let mut src = RowSource { row, slot_input };
                match general::eval_source(g, m, &mut src) {
                    Ok(o) => o,
                    Err(_) => return false,
                }
            }
            (DirectModel::Neural(d), ModelKind::Neural(_)) => {
                return with_buf(d.units, |units| {
                    with_buf(m.classes.len(), |acc| match d.score(row, units, acc) {
                        Some(o) => {
                            emit(plan, m, o, out);
                            true
                        }
                        None => false,
                    })
                })
            }
            _ => return false,
        };
        emit(plan, m, outcome, out);
        true
    }
}

/// Runs `f` on `n` zeroed numbers: on the stack for the usual sizes (only as many zeroed
/// as the size class needs), on the heap beyond.
#[inline(never)]
fn with_buf<R>(n: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    if n <= 16 {
        let mut b = [0.0f64; 16];
        f(&mut b[..n])
    } else if n <= 64 {
        let mut b = [0.0f64; 64];
        f(&mut b[..n])
    } else if n <= 256 {
        let mut b = [0.0f64; 256];
        f(&mut b[..n])
    } else {
        f(&mut vec![0.0; n])
    }
}

/// Targets, the primary value and the final outputs, as the generic path derives them.
#[inline]
fn emit(plan: &Plan, m: &ModelPlan, outcome: Outcome, out: &mut Prediction) {
    let outcome = eval::apply_targets(m, outcome);
    out.push(eval::primary(m, &outcome));
    for o in m.outputs.iter().filter(|o| o.final_result) {
        let v = eval::feature_value(m, &o.feature, &outcome);
        // A number into a double field is itself (what `convert_output` returns).
        let double = plan.slots.get(o.slot).map(|s| s.dtype) == Some(DataType::Double);
        if double && matches!(v, Value::Number(_)) {
            out.push(v);
        } else {
            out.push(eval::convert_output(&plan.slots, o.slot, v));
        }
    }
}

/// The outcome of class probabilities held by the caller: the first highest (NaN skipped)
/// wins, as `Outcome::from_probs` decides.
fn class_outcome(probs: &[f64]) -> Outcome<'_> {
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
            probs: Cow::Borrowed(probs),
        },
        None => Outcome::Missing,
    }
}

impl Forest {
    fn build(
        m: &ModelPlan,
        mp: &super::mining::MiningPlan,
        input_of: &impl Fn(usize) -> Option<u32>,
    ) -> Option<Forest> {
        let classes = m.classes.len();
        let supported = match m.function {
            Function::Classification => {
                matches!(
                    mp.method,
                    Method::Average | Method::WeightedAverage | Method::Sum
                ) && classes <= MAX_CLASSES
            }
            Function::Regression => matches!(
                mp.method,
                Method::Average | Method::WeightedAverage | Method::Sum | Method::WeightedSum
            ),
        };
        if !supported {
            return None;
        }
        let mut arena = Binary::default();
        let mut trees = Vec::with_capacity(mp.segments.len());
        let mut weights = Vec::with_capacity(mp.segments.len());
        let mut leaves = Vec::new();
        for s in &mp.segments {
            let sm = &s.model;
            // A plain member: always selected, nothing of its own to derive.
            if !matches!(s.predicate, Predicate::True)
                || !sm.outputs.is_empty()
                || sm.targets.is_some()
                || sm.function != m.function
            {
                return None;
            }
            let ModelKind::Tree(t) = &sm.kind else {
                return None;
            };
            let tree = arena.add(t, input_of, |i| {
                let n = t.nodes.get(i)?;
                let payload = u32::try_from(leaves.len()).ok()?;
                match m.function {
                    Function::Regression => leaves.push(n.value?),
                    Function::Classification => {
                        n.winner?;
                        // The member's probabilities in the ensemble's class order, as
                        // `mining::remap` adds them up from zero.
                        let mut p = vec![0.0; classes];
                        for (i, v) in n.probs.iter().enumerate() {
                            let j = if s.identity { i } else { *s.class_map.get(i)? };
                            *p.get_mut(j)? += v;
                        }
                        leaves.extend(p);
                    }
                }
                Some(payload)
            })?;
            trees.push(tree);
            weights.push(s.weight);
        }
        Some(Forest {
            arena,
            trees,
            weights,
            method: mp.method,
            leaves,
            classes,
        })
    }

    /// The leaf payloads of all members, `LANES` members walked side by side, handed to
    /// `each` in member order.
    #[inline]
    fn leaves_of(&self, row: &[f64], mut each: impl FnMut(usize, u32)) -> Option<()> {
        let mut member = 0;
        for chunk in self.trees.chunks(LANES) {
            let mut at = [0u32; LANES];
            let mut depth = 0;
            for (a, &(root, d)) in at.iter_mut().zip(chunk) {
                *a = root;
                depth = depth.max(d);
            }
            let at = at.get_mut(..chunk.len())?;
            // Leaves point to themselves: walking a shallower member further is harmless.
            for _ in 0..depth {
                for a in at.iter_mut() {
                    *a = self.arena.step(row, *a)?;
                }
            }
            for &a in at.iter() {
                each(member, *self.arena.payload.get(a as usize)?);
                member += 1;
            }
        }
        Some(())
    }

    /// The ensemble's outcome, as `mining::eval` combines its members'; class
    /// probabilities are accumulated in `acc`.
    #[inline]
    fn score<'a>(&self, row: &[f64], acc: &'a mut [f64]) -> Option<Outcome<'a>> {
        let mut ok = true;
        if self.classes == 0 {
            // Regression: the same sums, in the same order, as `combine_values`.
            let zero: f64 = std::iter::empty::<f64>().sum();
            let (mut sum, mut weighted, mut total_weight) = (zero, zero, zero);
            self.leaves_of(row, |member, leaf| {
                let (Some(v), Some(w)) = (self.leaves.get(leaf as usize), self.weights.get(member))
                else {
                    ok = false;
                    return;
                };
                sum += v;
                weighted += w * v;
                total_weight += w;
            })?;
            if !ok {
                return None;
            }
            let v = match self.method {
                Method::Average => sum / self.trees.len() as f64,
                Method::WeightedAverage => weighted / total_weight,
                Method::Sum => sum,
                Method::WeightedSum => weighted,
                _ => return None,
            };
            return Some(Outcome::Value(v));
        }
        let n = self.classes;
        let mut total = 0.0;
        let weighted = self.method == Method::WeightedAverage;
        self.leaves_of(row, |member, off| {
            let off = off as usize;
            let (Some(probs), Some(w)) = (self.leaves.get(off..off + n), self.weights.get(member))
            else {
                ok = false;
                return;
            };
            let w = if weighted { *w } else { 1.0 };
            for (a, p) in acc.iter_mut().zip(probs) {
                *a += w * p;
            }
            total += w;
        })?;
        if !ok {
            return None;
        }
        if self.method != Method::Sum && total > 0.0 {
            for a in acc.iter_mut() {
                *a /= total;
            }
        }
        Some(class_outcome(acc))
    }
}

impl GeneralDirect {
    fn build(
        m: &ModelPlan,
        g: &general::GeneralPlan,
        input_of: &impl Fn(usize) -> Option<u32>,
    ) -> Option<GeneralDirect> {
        if m.function != Function::Regression || g.kind == GrmKind::Multinomial {
            return None;
        }
        let mut params = Vec::with_capacity(g.params.len());
        let mut cells = Vec::new();
        for p in &g.params {
            let start = u32::try_from(cells.len()).ok()?;
            for c in p {
                match c {
                    Cell::Covariate { slot, exponent } => cells.push((input_of(*slot)?, *exponent)),
                    Cell::Factor { .. } => return None,
                }
            }
            params.push((start, u32::try_from(cells.len()).ok()?));
        }
        let betas = g.predictors.first()?.1.clone();
        Some(GeneralDirect {
            params,
            cells,
            betas,
            offset_row: g
                .offset_slot
                .map(input_of)
                .map(|r| r.ok_or(()))
                .transpose()
                .ok()?,
            trials_row: g
                .trials_slot
                .map(input_of)
                .map(|r| r.ok_or(()))
                .transpose()
                .ok()?,
        })
    }

    /// The regression value, with the generic evaluator's operations in its order.
    #[inline]
    fn score(&self, g: &general::GeneralPlan, row: &[f64]) -> Option<f64> {
        let mut failed = false;
        let x = self.params.iter().map(|&(a, b)| {
            let mut v = 1.0;
            for &(i, exponent) in self.cells.get(a as usize..b as usize).unwrap_or(&[]) {
                let Some(&f) = row.get(i as usize) else {
                    failed = true;
                    return v;
                };
                v *= if exponent == 1.0 { f } else { f.powf(exponent) };
            }
            v
        });
        let mut offset = g.offset_value;
        if let Some(i) = self.offset_row {
            offset += *row.get(i as usize)?;
        }
        let e = self.betas.iter().zip(x).map(|(b, x)| b * x).sum::<f64>() + offset;
        if failed {
            return None;
        }
        let mut mu = match g.kind {
            GrmKind::Linear => e,
            _ => general::inverse_link(g.link, e, g.link_parameter, g.dist_parameter),
        };
        let trials = match self.trials_row {
            Some(i) => Some(*row.get(i as usize)?),
            None => g.trials_value,
        };
        if let Some(t) = trials {
            mu *= t;
        }
        Some(mu)
    }
}

impl NeuralDirect {
    fn build(
        m: &ModelPlan,
        n: &neural::NeuralPlan,
        input_of: &impl Fn(usize) -> Option<u32>,
    ) -> Option<NeuralDirect> {
        if n.units > MAX_UNITS || m.classes.len() > MAX_CLASSES {
            return None;
        }
        let mut inputs = Vec::with_capacity(n.inputs.len());
        for e in &n.inputs {
            inputs.push(match e {
                Expr::Field { slot, .. } => NeuralInput::Field(input_of(*slot)?),
                Expr::NormContinuous {
                    slot,
                    points,
                    outliers,
                    ..
                } => NeuralInput::Norm {
                    row: input_of(*slot)?,
                    points: points.clone(),
                    outliers: *outliers,
                },
                _ => return None,
            });
        }
        let mut layers = Vec::with_capacity(n.layers.len());
        for l in &n.layers {
            if l.activation == Activation::RadialBasis {
                return None;
            }
            let first = l.neurons.first()?;
            let from: Vec<u32> = first
                .inputs
                .iter()
                .map(|&(u, _)| u32::try_from(u).ok())
                .collect::<Option<_>>()?;
            // Dense: every neuron reads the same earlier units in the same order.
            let dense = l.neurons.iter().all(|neuron| {
                neuron.inputs.len() == from.len()
                    && neuron
                        .inputs
                        .iter()
                        .zip(&from)
                        .all(|(&(u, _), &f)| u == f as usize && u < l.first_unit)
            });
            if !dense {
                return None;
            }
            let k = l.neurons.len();
            let mut weights = vec![0.0; from.len() * k];
            for (ni, neuron) in l.neurons.iter().enumerate() {
                for (j, &(_, w)) in neuron.inputs.iter().enumerate() {
                    *weights.get_mut(j * k + ni)? = w;
                }
            }
            layers.push(DenseLayer {
                activation: l.activation,
                threshold: l.threshold,
                normalization: l.normalization,
                first_unit: l.first_unit,
                from,
                bias: l.neurons.iter().map(|neuron| neuron.bias).collect(),
                weights,
            });
        }
        let (value, classes) = match m.function {
            Function::Regression => {
                let v = n.outputs.iter().find_map(|o| match o {
                    NeuralOutput::Value { unit, norm } => Some((
                        *unit,
                        norm.as_ref().map(|pts| {
                            let mut s: Vec<(f64, f64)> =
                                pts.iter().map(|(o, n)| (*n, *o)).collect();
                            s.sort_by(|a, b| a.0.total_cmp(&b.0));
                            s
                        }),
                    )),
                    NeuralOutput::Class { .. } => None,
                });
                (Some(v?), Vec::new())
            }
            Function::Classification => {
                let c = n
                    .outputs
                    .iter()
                    .filter_map(|o| match o {
                        NeuralOutput::Class { unit, class } => Some((*unit, *class)),
                        NeuralOutput::Value { .. } => None,
                    })
                    .collect();
                (None, c)
            }
        };
        let units_ok = value.iter().map(|v| v.0).chain(classes.iter().map(|c| c.0));
        if units_ok.into_iter().any(|u| u >= n.units) {
            return None;
        }
        Some(NeuralDirect {
            inputs,
            layers,
            units: n.units,
            value,
            classes,
        })
    }

    /// The network's outcome; class probabilities are gathered in `acc`.
    #[inline]
    fn score<'a>(&self, row: &[f64], units: &mut [f64], acc: &'a mut [f64]) -> Option<Outcome<'a>> {
        for (u, input) in units.iter_mut().zip(&self.inputs) {
            *u = match input {
                NeuralInput::Field(i) => *row.get(*i as usize)?,
                NeuralInput::Norm {
                    row: i,
                    points,
                    outliers,
                } => match norm_continuous(points, *outliers, *row.get(*i as usize)?) {
                    Some(v) => v,
                    None => return Some(Outcome::Missing),
                },
            };
        }
        for l in &self.layers {
            let (before, rest) = units.split_at_mut(l.first_unit);
            let k = l.bias.len();
            let out = rest.get_mut(..k)?;
            out.copy_from_slice(&l.bias);
            for (&u, w) in l.from.iter().zip(l.weights.chunks_exact(k)) {
                let x = *before.get(u as usize)?;
                for (z, w) in out.iter_mut().zip(w) {
                    *z += x * w;
                }
            }
            for z in out.iter_mut() {
                *z = neural::activate(l.activation, *z, l.threshold);
            }
            neural::normalize(l.normalization, out);
        }
        if let Some((unit, norm)) = &self.value {
            let y = *units.get(*unit)?;
            let v = match norm {
                Some(pts) => norm_continuous(pts, NormOutliers::AsIs, y),
                None => Some(y),
            };
            return Some(v.map(Outcome::Value).unwrap_or(Outcome::Missing));
        }
        let probs = acc;
        for &(unit, class) in &self.classes {
            if let Some(p) = probs.get_mut(class) {
                *p = *units.get(unit)?;
            }
        }
        Some(class_outcome(probs))
    }
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
        for name in [
            "winequalityMultilayerPerceptron.pmml",
            "winequalityRandonForrestClassification.pmml",
            "winequalityGeneralizedLinearRegressionGaussian.pmml",
        ] {
            assert!(seed(name).direct.is_some(), "{name}");
        }
    }

    fn pmml(body: &str, function: &str) -> PmmlModel {
        let target = if function == "classification" {
            r#"<DataField name="y" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>"#
        } else {
            r#"<DataField name="y" optype="continuous" dataType="double"/>"#
        };
        let doc = format!(
            r#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><DataDictionary>
            <DataField name="x1" optype="continuous" dataType="double"/>
            <DataField name="x2" optype="continuous" dataType="double"/>{target}</DataDictionary>{body}</PMML>"#
        );
        PmmlModel::from_bytes(doc.as_bytes()).expect("loads")
    }

    /// A tree of every comparison operator, leaves scored 1..=5.
    fn tree(function: &str, with_output: bool) -> String {
        let leaf = |n: u32| {
            if function == "classification" {
                let p = f64::from(n) / 10.0;
                format!(
                    r#"score="{}"><ScoreDistribution value="a" recordCount="{}"/><ScoreDistribution value="b" recordCount="{}"/>"#,
                    if n.is_multiple_of(2) { "a" } else { "b" },
                    p,
                    1.0 - p
                )
            } else {
                format!(r#"score="{n}">"#)
            }
        };
        let output = if with_output && function == "classification" {
            r#"<Output><OutputField name="pa" feature="probability" value="a"/><OutputField name="pb" feature="probability" value="b"/></Output>"#
        } else {
            ""
        };
        format!(
            r#"<TreeModel functionName="{function}"><MiningSchema><MiningField name="x1"/><MiningField name="x2"/><MiningField name="y" usageType="target"/></MiningSchema>{output}
            <Node><True/>
              <Node><SimplePredicate field="x1" operator="lessThan" value="1.5"/>
                <Node {}<SimplePredicate field="x2" operator="greaterThan" value="-2"/></Node>
                <Node {}<SimplePredicate field="x2" operator="lessOrEqual" value="-2"/></Node>
              </Node>
              <Node><SimplePredicate field="x1" operator="greaterOrEqual" value="1.5"/>
                <Node><SimplePredicate field="x2" operator="greaterOrEqual" value="0.25"/>
                  <Node {}<SimplePredicate field="x1" operator="lessOrEqual" value="3"/></Node>
                  <Node {}<SimplePredicate field="x1" operator="greaterThan" value="3"/></Node>
                </Node>
                <Node {}<SimplePredicate field="x2" operator="lessThan" value="0.25"/></Node>
              </Node>
            </Node></TreeModel>"#,
            leaf(1),
            leaf(2),
            leaf(3),
            leaf(4),
            leaf(5),
        )
    }

    /// Values at, just below and just above every threshold, and the infinities.
    fn probes() -> Vec<f64> {
        let mut v = vec![f64::NEG_INFINITY, f64::INFINITY, 0.0, -0.0, 10.0, -10.0];
        for t in [1.5f64, -2.0, 0.25, 3.0] {
            v.extend([t, t.next_down(), t.next_up()]);
        }
        v
    }

    fn assert_direct_equals_generic(m: &PmmlModel) {
        assert!(m.direct.is_some());
        for &a in &probes() {
            for &b in &probes() {
                let direct = m.score_row(&[a, b]).expect("scores");
                let record = crate::Record::new().with("x1", a).with("x2", b);
                let generic = m.score(&record).expect("scores");
                assert_eq!(direct, generic, "x1={a} x2={b}");
            }
        }
    }

    #[test]
    fn flattened_trees_decide_every_operator_like_the_generic_walk() {
        assert_direct_equals_generic(&pmml(&tree("regression", false), "regression"));
        assert_direct_equals_generic(&pmml(&tree("classification", true), "classification"));
    }

    #[test]
    fn forests_combine_like_the_generic_ensemble() {
        for (function, method, output) in [
            ("regression", "average", ""),
            ("regression", "weightedAverage", ""),
            ("regression", "sum", ""),
            ("regression", "weightedSum", ""),
            (
                "classification",
                "average",
                r#"<Output><OutputField name="pa" feature="probability" value="a"/><OutputField name="pb" feature="probability" value="b"/></Output>"#,
            ),
            (
                "classification",
                "weightedAverage",
                r#"<Output><OutputField name="pb" feature="probability" value="b"/></Output>"#,
            ),
            ("classification", "sum", ""),
        ] {
            let segments: String = (1..=3)
                .map(|i| {
                    format!(
                        r#"<Segment id="{i}" weight="{}"><True/>{}</Segment>"#,
                        f64::from(i) * 0.7,
                        tree(function, false)
                    )
                })
                .collect();
            let body = format!(
                r#"<MiningModel functionName="{function}"><MiningSchema><MiningField name="x1"/><MiningField name="x2"/><MiningField name="y" usageType="target"/></MiningSchema>{output}
                <Segmentation multipleModelMethod="{method}">{segments}</Segmentation></MiningModel>"#
            );
            let m = pmml(&body, function);
            assert!(
                matches!(m.direct, Some(super::DirectModel::Forest(_))),
                "{function} {method}"
            );
            assert_direct_equals_generic(&m);
        }
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
