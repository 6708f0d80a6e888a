//! Predicates of tree nodes and segments, with PMML's three-valued logic
//! (`None` = UNKNOWN because an input is missing).

use roxmltree::Node;

use super::eval::Ctx;
use super::plan::Builder;
use super::types::{compare_values, values_equal, DataType};
use super::xml::{self, array_tokens, req_attr};
use crate::error::{Error, Result};
use crate::record::Value;

#[derive(Debug)]
pub enum Predicate {
    True,
    False,
    /// Numeric comparison against a constant: the hot path of every tree.
    Num {
        slot: usize,
        op: CmpOp,
        value: f64,
    },
    /// Comparison against a text constant.
    Text {
        slot: usize,
        op: CmpOp,
        value: Value,
    },
    IsMissing {
        slot: usize,
        negate: bool,
    },
    Set {
        slot: usize,
        negate: bool,
        values: Vec<Value>,
    },
    Compound {
        op: BoolOp,
        parts: Vec<Predicate>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// `x op value` for numbers.
    #[inline]
    pub fn holds(self, x: f64, value: f64) -> bool {
        match self {
            CmpOp::Eq => x == value,
            CmpOp::Ne => x != value,
            CmpOp::Lt => x < value,
            CmpOp::Le => x <= value,
            CmpOp::Gt => x > value,
            CmpOp::Ge => x >= value,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
    Surrogate,
}

impl<'a, 'i> Builder<'a, 'i> {
    /// Compiles the predicate element among the children of `owner` (a Node or Segment).
    pub fn predicate_of(&mut self, owner: Node) -> Result<Predicate> {
        let p = xml::elements(owner)
            .find(|c| {
                matches!(
                    xml::name(*c),
                    "True"
                        | "False"
                        | "SimplePredicate"
                        | "SimpleSetPredicate"
                        | "CompoundPredicate"
                )
            })
            .ok_or_else(|| {
                Error::InvalidModel(format!("<{}> without a predicate", xml::name(owner)))
            })?;
        self.predicate(p)
    }

    pub fn predicate(&mut self, node: Node) -> Result<Predicate> {
        self.nested(|b| b.predicate_inner(node))
    }

    fn predicate_inner(&mut self, node: Node) -> Result<Predicate> {
        match xml::name(node) {
            "True" => Ok(Predicate::True),
            "False" => Ok(Predicate::False),
            "SimplePredicate" => {
                let slot = self.resolve(req_attr(node, "field")?)?;
                let op = match req_attr(node, "operator")? {
                    "isMissing" => {
                        return Ok(Predicate::IsMissing {
                            slot,
                            negate: false,
                        })
                    }
                    "isNotMissing" => return Ok(Predicate::IsMissing { slot, negate: true }),
                    "equal" => CmpOp::Eq,
                    "notEqual" => CmpOp::Ne,
                    "lessThan" => CmpOp::Lt,
                    "lessOrEqual" => CmpOp::Le,
                    "greaterThan" => CmpOp::Gt,
                    "greaterOrEqual" => CmpOp::Ge,
                    o => return Err(xml::unsupported(node, &format!("operator=\"{o}\""))),
                };
                let raw = req_attr(node, "value")?;
                let dtype = self.dtype(slot);
                if dtype.is_numeric() {
                    if let Some(Value::Number(value)) =
                        dtype.convert(&Value::text(raw)).or_else(|| {
                            // An integer field compared with 2.5 still compares numerically.
                            DataType::Double.convert(&Value::text(raw))
                        })
                    {
                        return Ok(Predicate::Num { slot, op, value });
                    }
                }
                Ok(Predicate::Text {
                    slot,
                    op,
                    value: Value::text(raw),
                })
            }
            "SimpleSetPredicate" => {
                let slot = self.resolve(req_attr(node, "field")?)?;
                let negate = match req_attr(node, "booleanOperator")? {
                    "isIn" => false,
                    "isNotIn" => true,
                    o => return Err(xml::unsupported(node, &format!("booleanOperator=\"{o}\""))),
                };
                let array = xml::child(node, "Array").ok_or_else(|| {
                    Error::InvalidModel("SimpleSetPredicate without Array".into())
                })?;
                let dtype = self.dtype(slot);
                let values = array_tokens(array.text().unwrap_or(""))
                    .iter()
                    .map(|t| {
                        dtype
                            .convert(&Value::text(t))
                            .unwrap_or_else(|| Value::text(t))
                    })
                    .collect();
                Ok(Predicate::Set {
                    slot,
                    negate,
                    values,
                })
            }
            "CompoundPredicate" => {
                let op = match req_attr(node, "booleanOperator")? {
                    "and" => BoolOp::And,
                    "or" => BoolOp::Or,
                    "xor" => BoolOp::Xor,
                    "surrogate" => BoolOp::Surrogate,
                    o => return Err(xml::unsupported(node, &format!("booleanOperator=\"{o}\""))),
                };
                let mut parts = Vec::new();
                for c in xml::elements(node).filter(|c| xml::name(*c) != "Extension") {
                    parts.push(self.predicate(c)?);
                }
                if parts.is_empty() {
                    return Err(Error::InvalidModel(
                        "CompoundPredicate without predicates".into(),
                    ));
                }
                Ok(Predicate::Compound { op, parts })
            }
            other => Err(Error::Unsupported(format!("predicate <{other}>"))),
        }
    }
}

fn cmp_result(op: CmpOp, o: std::cmp::Ordering) -> bool {
    match op {
        CmpOp::Eq => o.is_eq(),
        CmpOp::Ne => o.is_ne(),
        CmpOp::Lt => o.is_lt(),
        CmpOp::Le => o.is_le(),
        CmpOp::Gt => o.is_gt(),
        CmpOp::Ge => o.is_ge(),
    }
}

impl Predicate {
    pub fn eval(&self, ctx: &mut Ctx) -> Result<Option<bool>> {
        Ok(match self {
            Predicate::True => Some(true),
            Predicate::False => Some(false),
            Predicate::Num { slot, op, value } => ctx.num(*slot)?.map(|x| op.holds(x, *value)),
            Predicate::Text { slot, op, value } => {
                let v = ctx.value(*slot)?;
                if v.is_missing() {
                    None
                } else {
                    match op {
                        CmpOp::Eq => Some(values_equal(&v, value)),
                        CmpOp::Ne => Some(!values_equal(&v, value)),
                        _ => compare_values(&v, value).map(|o| cmp_result(*op, o)),
                    }
                }
            }
            Predicate::IsMissing { slot, negate } => {
                Some(ctx.value(*slot)?.is_missing() != *negate)
            }
            Predicate::Set {
                slot,
                negate,
                values,
            } => {
                let v = ctx.value(*slot)?;
                if v.is_missing() {
                    None
                } else {
                    Some(values.iter().any(|x| values_equal(x, &v)) != *negate)
                }
            }
            Predicate::Compound { op, parts } => match op {
                BoolOp::And => {
                    let mut unknown = false;
                    for p in parts {
                        match p.eval(ctx)? {
                            Some(false) => return Ok(Some(false)),
                            None => unknown = true,
                            Some(true) => {}
                        }
                    }
                    if unknown {
                        None
                    } else {
                        Some(true)
                    }
                }
                BoolOp::Or => {
                    let mut unknown = false;
                    for p in parts {
                        match p.eval(ctx)? {
                            Some(true) => return Ok(Some(true)),
                            None => unknown = true,
                            Some(false) => {}
                        }
                    }
                    if unknown {
                        None
                    } else {
                        Some(false)
                    }
                }
                BoolOp::Xor => {
                    let mut acc = false;
                    for p in parts {
                        match p.eval(ctx)? {
                            None => return Ok(None),
                            Some(b) => acc ^= b,
                        }
                    }
                    Some(acc)
                }
                BoolOp::Surrogate => {
                    for p in parts {
                        if let Some(b) = p.eval(ctx)? {
                            return Ok(Some(b));
                        }
                    }
                    None
                }
            },
        })
    }
}
