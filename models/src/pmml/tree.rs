//! TreeModel: nodes flattened into a vector, walked iteratively (no recursion per record).

use std::borrow::Cow;
use std::sync::Arc;

use roxmltree::Node;

use super::eval::{Ctx, Outcome};
use super::plan::{Builder, Function, ModelPlan};
use super::predicate::{CmpOp, Predicate};
use super::xml::{self, attr, children, num_attr};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct TreePlan {
    pub nodes: Vec<TreeNode>,
    pub missing: MissingStrategy,
    pub return_last: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingStrategy {
    None,
    LastPrediction,
    NullPrediction,
    DefaultChild,
}

#[derive(Debug)]
pub struct TreeNode {
    pub predicate: Predicate,
    pub children: Vec<u32>,
    pub default_child: Option<u32>,
    /// Regression score.
    pub value: Option<f64>,
    /// Classification: winning class and the class probabilities.
    pub winner: Option<usize>,
    pub probs: Vec<f64>,
    /// Set when the node has two children whose predicates are one numeric comparison
    /// and its complement (`x <= v` / `x > v`, the usual binary split): one comparison
    /// then picks the child.
    pub split: Option<Split>,
}

/// A binary split: `slot op value` true selects `children[0]`, false `children[1]`.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    pub slot: usize,
    pub op: CmpOp,
    pub value: f64,
}

/// The split of a node whose two children test `x op v` and its exact complement.
fn binary_split(nodes: &[TreeNode], children: &[u32]) -> Option<Split> {
    let [a, b] = children else {
        return None;
    };
    let (
        Predicate::Num { slot, op, value },
        Predicate::Num {
            slot: slot_b,
            op: op_b,
            value: value_b,
        },
    ) = (
        &nodes.get(*a as usize)?.predicate,
        &nodes.get(*b as usize)?.predicate,
    )
    else {
        return None;
    };
    let complement = match op {
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Ge => CmpOp::Lt,
        // x == v / x != v are complements only for non-NaN x, which holds below, but
        // they do not occur in binary splits worth the extra case.
        CmpOp::Eq | CmpOp::Ne => return None,
    };
    // The same constant bit for bit (a NaN constant never qualifies).
    (slot == slot_b && *op_b == complement && value == value_b).then_some(Split {
        slot: *slot,
        op: *op,
        value: *value,
    })
}

pub fn build(
    b: &mut Builder,
    node: Node,
    function: Function,
    classes: &mut Vec<Arc<str>>,
) -> Result<TreePlan> {
    let missing = match attr(node, "missingValueStrategy").unwrap_or("none") {
        "none" => MissingStrategy::None,
        "lastPrediction" => MissingStrategy::LastPrediction,
        "nullPrediction" => MissingStrategy::NullPrediction,
        "defaultChild" => MissingStrategy::DefaultChild,
        o => {
            return Err(xml::unsupported(
                node,
                &format!("missingValueStrategy=\"{o}\""),
            ))
        }
    };
    let return_last = match attr(node, "noTrueChildStrategy").unwrap_or("returnNullPrediction") {
        "returnNullPrediction" => false,
        "returnLastPrediction" => true,
        o => {
            return Err(xml::unsupported(
                node,
                &format!("noTrueChildStrategy=\"{o}\""),
            ))
        }
    };
    let root = xml::child(node, "Node")
        .ok_or_else(|| Error::InvalidModel("TreeModel without Node".into()))?;
    // Float scores are read straight as f32 (`float.rs`), as JPMML parses them.
    let float = super::float::declared(node)?;
    if float && function == Function::Classification {
        return Err(super::float::unsupported(node, "classification"));
    }
    let mut plan = TreePlan {
        nodes: Vec::new(),
        missing,
        return_last,
    };
    // Explicit stack: (xml node, index of the parent plan node).
    let mut stack = vec![(root, None::<usize>)];
    let mut ids: Vec<(usize, Option<String>)> = Vec::new();
    while let Some((xn, parent)) = stack.pop() {
        let idx = plan.nodes.len();
        let tn = build_node(b, xn, function, classes, float)?;
        plan.nodes.push(tn);
        ids.push((idx, attr(xn, "id").map(str::to_string)));
        if let Some(p) = parent {
            plan.nodes[p].children.push(idx as u32);
        }
        let kids: Vec<Node> = children(xn, "Node").collect();
        for k in kids.into_iter().rev() {
            stack.push((k, Some(idx)));
        }
    }
    if missing == MissingStrategy::DefaultChild {
        resolve_defaults(&mut plan, &ids, root)?;
    }
    // Probability vectors are sized to the final class list.
    for n in &mut plan.nodes {
        if function == Function::Classification {
            n.probs.resize(classes.len(), 0.0);
        }
    }
    for i in 0..plan.nodes.len() {
        let split = binary_split(&plan.nodes, &plan.nodes[i].children);
        plan.nodes[i].split = split;
    }
    Ok(plan)
}

fn resolve_defaults(
    plan: &mut TreePlan,
    ids: &[(usize, Option<String>)],
    root: Node,
) -> Result<()> {
    // Nodes were numbered in pre-order; walking the XML in the same order pairs each
    // defaultChild id with a node index.
    let mut order = Vec::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        order.push(n);
        let kids: Vec<Node> = children(n, "Node").collect();
        stack.extend(kids.into_iter().rev());
    }
    for (i, xn) in order.iter().enumerate() {
        if let Some(dc) = attr(*xn, "defaultChild") {
            let target = plan.nodes[i]
                .children
                .iter()
                .copied()
                .find(|c| ids.get(*c as usize).and_then(|(_, id)| id.as_deref()) == Some(dc))
                .ok_or_else(|| {
                    Error::InvalidModel(format!("defaultChild `{dc}` is not a child"))
                })?;
            plan.nodes[i].default_child = Some(target);
        }
    }
    Ok(())
}

fn build_node(
    b: &mut Builder,
    xn: Node,
    function: Function,
    classes: &mut Vec<Arc<str>>,
    float: bool,
) -> Result<TreeNode> {
    let predicate = b.predicate_of(xn)?;
    let score = attr(xn, "score");
    let mut node = TreeNode {
        predicate,
        children: Vec::new(),
        default_child: None,
        value: None,
        winner: None,
        probs: Vec::new(),
        split: None,
    };
    match function {
        Function::Regression => {
            node.value = match score {
                Some(s) if float => Some(super::float::parse(s, "Node@score")?),
                Some(s) => Some(xml::parse_f64(s, "Node@score")?),
                None => None,
            };
        }
        Function::Classification => {
            let dists: Vec<Node> = children(xn, "ScoreDistribution").collect();
            let mut pairs = Vec::with_capacity(dists.len());
            let mut has_prob = false;
            for d in &dists {
                let label = xml::req_attr(*d, "value")?;
                let idx = Builder::class_index(classes, label);
                let p = num_attr(*d, "probability")?;
                has_prob |= p.is_some();
                pairs.push((idx, p, num_attr(*d, "recordCount")?.unwrap_or(0.0)));
            }
            let total: f64 = pairs.iter().map(|p| p.2).sum();
            for (idx, p, count) in pairs {
                let prob = if has_prob {
                    p.unwrap_or(0.0)
                } else if total > 0.0 {
                    count / total
                } else {
                    0.0
                };
                if node.probs.len() <= idx {
                    node.probs.resize(idx + 1, 0.0);
                }
                node.probs[idx] = prob;
            }
            node.winner = match score {
                Some(s) => Some(Builder::class_index(classes, s)),
                None => argmax(&node.probs),
            };
            if dists.is_empty() {
                if let Some(w) = node.winner {
                    node.probs.resize(w + 1, 0.0);
                    node.probs[w] = 1.0;
                }
            }
        }
    }
    Ok(node)
}

fn argmax(p: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in p.iter().enumerate() {
        if best.is_none_or(|b| *v > p[b]) {
            best = Some(i);
        }
    }
    best
}

/// The index of the node that decides the record, or `None` for a null prediction.
pub fn select(t: &TreePlan, ctx: &mut Ctx) -> Result<Option<usize>> {
    let Some(root) = t.nodes.first() else {
        return Ok(None);
    };
    if root.predicate.eval(ctx)? != Some(true) {
        return Ok(None);
    }
    let mut cur = 0usize;
    loop {
        let node = &t.nodes[cur];
        if node.children.is_empty() {
            return Ok(Some(cur));
        }
        if let Some(s) = &node.split {
            // A present, non-NaN value satisfies exactly one of the two predicates, so
            // the generic loop below would pick the same child; otherwise it decides.
            if let Some(x) = ctx.num(s.slot)? {
                if !x.is_nan() {
                    let first = s.op.holds(x, s.value);
                    let pick = if first { 0 } else { 1 };
                    if let Some(&c) = node.children.get(pick) {
                        cur = c as usize;
                        continue;
                    }
                }
            }
        }
        let mut next = None;
        for &c in &node.children {
            match t.nodes[c as usize].predicate.eval(ctx)? {
                Some(true) => {
                    next = Some(c as usize);
                    break;
                }
                Some(false) => {}
                None => match t.missing {
                    MissingStrategy::None => {}
                    MissingStrategy::LastPrediction => return Ok(Some(cur)),
                    MissingStrategy::NullPrediction => return Ok(None),
                    MissingStrategy::DefaultChild => {
                        next = node.default_child.map(|d| d as usize);
                        if next.is_none() {
                            return Ok(Some(cur));
                        }
                        break;
                    }
                },
            }
        }
        match next {
            Some(n) => cur = n,
            None if t.return_last => return Ok(Some(cur)),
            None => return Ok(None),
        }
    }
}

pub fn eval<'p>(t: &'p TreePlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'p>> {
    Ok(outcome(t, m, select(t, ctx)?))
}

/// The outcome of the selected node (`None`: a null prediction).
pub fn outcome<'p>(t: &'p TreePlan, m: &ModelPlan, selected: Option<usize>) -> Outcome<'p> {
    let Some(n) = selected.and_then(|i| t.nodes.get(i)) else {
        return Outcome::Missing;
    };
    match m.function {
        Function::Regression => n.value.map(Outcome::Value).unwrap_or(Outcome::Missing),
        Function::Classification => match n.winner {
            Some(w) => Outcome::Class {
                winner: w,
                probs: Cow::Borrowed(&n.probs),
            },
            None => Outcome::Missing,
        },
    }
}
