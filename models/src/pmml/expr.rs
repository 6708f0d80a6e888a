//! Expressions of DerivedFields and OutputFields: compiled once, evaluated per record.

use std::sync::Arc;

use roxmltree::Node;

use super::eval::Ctx;
use super::plan::{Builder, Interval};
use super::types::{
    self, as_bool, bool_value, compare_values, data_type_attr, values_equal, DataType,
};
use super::xml::{self, attr, children, num_attr, req_attr, req_num};
use crate::error::{Error, Result};
use crate::record::Value;

#[derive(Debug)]
pub enum Expr {
    Constant(Value),
    Field {
        slot: usize,
        map_missing: Option<Value>,
    },
    NormContinuous {
        slot: usize,
        /// (original, normalized) pairs, ascending in the original value.
        points: Vec<(f64, f64)>,
        outliers: NormOutliers,
        map_missing: Option<f64>,
    },
    NormDiscrete {
        slot: usize,
        value: Value,
        map_missing: Option<f64>,
    },
    Discretize {
        slot: usize,
        bins: Vec<(Interval, Value)>,
        map_missing: Option<Value>,
        default: Option<Value>,
    },
    MapValues {
        slots: Vec<usize>,
        rows: Vec<(Vec<Value>, Value)>,
        map_missing: Option<Value>,
        default: Option<Value>,
    },
    Apply {
        func: Func,
        args: Vec<Expr>,
        map_missing: Option<Value>,
        default: Option<Value>,
    },
    /// A call of a user-defined function (`functions.rs`).
    Call(Box<super::functions::Call>),
}

// Variant names follow the PMML attribute values (asIs, asMissingValues, ...).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormOutliers {
    AsIs,
    AsMissing,
    AsExtreme,
}

/// The built-in functions of `Apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Sum,
    Avg,
    Median,
    Product,
    Log10,
    Ln,
    Sqrt,
    Abs,
    Exp,
    Pow,
    Threshold,
    Floor,
    Ceil,
    Round,
    Rint,
    Expm1,
    Ln1p,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Atan2,
    Sinh,
    Cosh,
    Tanh,
    Hypot,
    Modulo,
    Erf,
    NormalCdf,
    NormalPdf,
    NormalIdf,
    StdNormalCdf,
    StdNormalPdf,
    StdNormalIdf,
    IsMissing,
    IsNotMissing,
    IsValid,
    IsNotValid,
    Equal,
    NotEqual,
    LessThan,
    LessOrEqual,
    GreaterThan,
    GreaterOrEqual,
    And,
    Or,
    Not,
    IsIn,
    IsNotIn,
    If,
    Uppercase,
    Lowercase,
    Substring,
    TrimBlanks,
    Concat,
}

impl Func {
    fn parse(name: &str) -> Option<Func> {
        use Func::*;
        Some(match name {
            "+" => Add,
            "-" => Sub,
            "*" => Mul,
            "/" => Div,
            "min" => Min,
            "max" => Max,
            "sum" => Sum,
            "avg" => Avg,
            "median" => Median,
            "product" => Product,
            "log10" => Log10,
            "ln" => Ln,
            "sqrt" => Sqrt,
            "abs" => Abs,
            "exp" => Exp,
            "pow" => Pow,
            "threshold" => Threshold,
            "floor" => Floor,
            "ceil" => Ceil,
            "round" => Round,
            "rint" => Rint,
            "expm1" => Expm1,
            "ln1p" => Ln1p,
            "sin" => Sin,
            "cos" => Cos,
            "tan" => Tan,
            "asin" => Asin,
            "acos" => Acos,
            "atan" => Atan,
            "atan2" => Atan2,
            "sinh" => Sinh,
            "cosh" => Cosh,
            "tanh" => Tanh,
            "hypot" => Hypot,
            "modulo" => Modulo,
            "erf" => Erf,
            "normalCDF" => NormalCdf,
            "normalPDF" => NormalPdf,
            "normalIDF" => NormalIdf,
            "stdNormalCDF" => StdNormalCdf,
            "stdNormalPDF" => StdNormalPdf,
            "stdNormalIDF" => StdNormalIdf,
            "isMissing" => IsMissing,
            "isNotMissing" => IsNotMissing,
            "isValid" => IsValid,
            "isNotValid" => IsNotValid,
            "equal" => Equal,
            "notEqual" => NotEqual,
            "lessThan" => LessThan,
            "lessOrEqual" => LessOrEqual,
            "greaterThan" => GreaterThan,
            "greaterOrEqual" => GreaterOrEqual,
            "and" => And,
            "or" => Or,
            "not" => Not,
            "isIn" => IsIn,
            "isNotIn" => IsNotIn,
            "if" => If,
            "uppercase" => Uppercase,
            "lowercase" => Lowercase,
            "substring" => Substring,
            "trimBlanks" => TrimBlanks,
            "concat" => Concat,
            _ => return None,
        })
    }

    /// Functions that look at missing arguments themselves instead of propagating them.
    fn handles_missing(self) -> bool {
        matches!(
            self,
            Func::IsMissing | Func::IsNotMissing | Func::IsValid | Func::IsNotValid | Func::If
        )
    }
}

impl<'a, 'i> Builder<'a, 'i> {
    /// Compiles one expression element.
    pub fn expr(&mut self, node: Node) -> Result<Expr> {
        self.nested(|b| b.expr_inner(node))
    }

    fn expr_inner(&mut self, node: Node) -> Result<Expr> {
        let map_missing_raw = attr(node, "mapMissingTo");
        match xml::name(node) {
            "Constant" => {
                if attr(node, "missing") == Some("true") {
                    return Ok(Expr::Constant(Value::Missing));
                }
                let text = node.text().unwrap_or("").trim();
                let dtype = match attr(node, "dataType") {
                    Some(d) => DataType::parse(d),
                    None if types::parse_num(text).is_some() => DataType::Double,
                    None => DataType::String,
                };
                Ok(Expr::Constant(dtype.constant(text, "Constant")?))
            }
            "FieldRef" => {
                let slot = self.resolve(req_attr(node, "field")?)?;
                let map_missing = map_missing_raw
                    .map(|s| self.dtype(slot).constant(s, "mapMissingTo"))
                    .transpose()?;
                Ok(Expr::Field { slot, map_missing })
            }
            "NormContinuous" => {
                let slot = self.resolve(req_attr(node, "field")?)?;
                let mut points = Vec::new();
                for ln in children(node, "LinearNorm") {
                    points.push((req_num(ln, "orig")?, req_num(ln, "norm")?));
                }
                if points.len() < 2 {
                    return Err(Error::InvalidModel(
                        "NormContinuous needs two LinearNorm points".into(),
                    ));
                }
                if points.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err(Error::InvalidModel(
                        "NormContinuous points are not ascending".into(),
                    ));
                }
                let outliers = match attr(node, "outliers").unwrap_or("asIs") {
                    "asIs" => NormOutliers::AsIs,
                    "asMissingValues" => NormOutliers::AsMissing,
                    "asExtremeValues" => NormOutliers::AsExtreme,
                    o => return Err(xml::unsupported(node, &format!("outliers=\"{o}\""))),
                };
                Ok(Expr::NormContinuous {
                    slot,
                    points,
                    outliers,
                    map_missing: num_attr(node, "mapMissingTo")?,
                })
            }
            "NormDiscrete" => {
                let slot = self.resolve(req_attr(node, "field")?)?;
                let raw = req_attr(node, "value")?;
                let value = self
                    .dtype(slot)
                    .convert(&Value::text(raw))
                    .unwrap_or_else(|| Value::text(raw));
                Ok(Expr::NormDiscrete {
                    slot,
                    value,
                    map_missing: num_attr(node, "mapMissingTo")?,
                })
            }
            "Discretize" => {
                let slot = self.resolve(req_attr(node, "field")?)?;
                let dtype = data_type_attr(node, DataType::String);
                let mut bins = Vec::new();
                for bin in children(node, "DiscretizeBin") {
                    let iv = xml::child(bin, "Interval").ok_or_else(|| {
                        Error::InvalidModel("DiscretizeBin without Interval".into())
                    })?;
                    bins.push((
                        Interval::parse(iv)?,
                        dtype.constant(req_attr(bin, "binValue")?, "binValue")?,
                    ));
                }
                Ok(Expr::Discretize {
                    slot,
                    bins,
                    map_missing: map_missing_raw
                        .map(|s| dtype.constant(s, "mapMissingTo"))
                        .transpose()?,
                    default: attr(node, "defaultValue")
                        .map(|s| dtype.constant(s, "defaultValue"))
                        .transpose()?,
                })
            }
            "MapValues" => self.map_values(node),
            "Apply" => {
                let fname = req_attr(node, "function")?;
                let builtin = Func::parse(fname);
                if builtin.is_none() && !self.functions.contains_key(fname) {
                    return Err(Error::Unsupported(format!("Apply function `{fname}`")));
                }
                let mut args = Vec::new();
                for c in xml::elements(node).filter(|c| xml::name(*c) != "Extension") {
                    args.push(self.expr(c)?);
                }
                let guess = |s: &str| {
                    if types::parse_num(s).is_some() {
                        DataType::Double.constant(s, "Apply")
                    } else {
                        Ok(Value::text(s))
                    }
                };
                let Some(func) = builtin else {
                    let map_missing = map_missing_raw.map(guess).transpose()?;
                    let default = attr(node, "defaultValue").map(guess).transpose()?;
                    return match self.user_call(fname, args, map_missing, default)? {
                        Some(call) => Ok(Expr::Call(Box::new(call))),
                        None => Err(Error::Unsupported(format!("Apply function `{fname}`"))),
                    };
                };
                check_arity(func, args.len(), fname)?;
                if let Some(t) = attr(node, "invalidValueTreatment") {
                    if t != "returnInvalid" && t != "asMissing" {
                        return Err(xml::unsupported(
                            node,
                            &format!("invalidValueTreatment=\"{t}\""),
                        ));
                    }
                }
                Ok(Expr::Apply {
                    func,
                    args,
                    map_missing: map_missing_raw.map(guess).transpose()?,
                    default: attr(node, "defaultValue").map(guess).transpose()?,
                })
            }
            other => Err(Error::Unsupported(format!("expression <{other}>"))),
        }
    }

    fn map_values(&mut self, node: Node) -> Result<Expr> {
        let dtype = data_type_attr(node, DataType::String);
        let out_col = req_attr(node, "outputColumn")?;
        let mut cols = Vec::new();
        let mut slots = Vec::new();
        for pair in children(node, "FieldColumnPair") {
            slots.push(self.resolve(req_attr(pair, "field")?)?);
            cols.push(req_attr(pair, "column")?);
        }
        let table = xml::child(node, "InlineTable")
            .ok_or_else(|| xml::unsupported(node, "without an InlineTable"))?;
        let mut rows = Vec::new();
        for row in children(table, "row") {
            let cell = |col: &str| {
                xml::elements(row)
                    .find(|c| xml::name(*c) == col)
                    .map(|c| c.text().unwrap_or("").to_string())
            };
            let Some(out) = cell(out_col) else { continue };
            let mut keys = Vec::new();
            let mut complete = true;
            for (col, slot) in cols.iter().zip(&slots) {
                match cell(col) {
                    Some(k) => {
                        let v = self
                            .dtype(*slot)
                            .convert(&Value::text(&k))
                            .unwrap_or_else(|| Value::text(&k));
                        keys.push(v);
                    }
                    None => complete = false,
                }
            }
            if complete {
                rows.push((keys, dtype.constant(&out, "MapValues output")?));
            }
        }
        Ok(Expr::MapValues {
            slots,
            rows,
            map_missing: attr(node, "mapMissingTo")
                .map(|s| dtype.constant(s, "mapMissingTo"))
                .transpose()?,
            default: attr(node, "defaultValue")
                .map(|s| dtype.constant(s, "defaultValue"))
                .transpose()?,
        })
    }
}

fn check_arity(func: Func, n: usize, name: &str) -> Result<()> {
    use Func::*;
    let ok = match func {
        Add | Sub | Mul | Div | Pow | Threshold | Atan2 | Hypot | Modulo | Equal | NotEqual
        | LessThan | LessOrEqual | GreaterThan | GreaterOrEqual => n == 2,
        Log10 | Ln | Sqrt | Abs | Exp | Floor | Ceil | Round | Rint | Expm1 | Ln1p | Sin | Cos
        | Tan | Asin | Acos | Atan | Sinh | Cosh | Tanh | Erf | StdNormalCdf | StdNormalPdf
        | StdNormalIdf | IsMissing | IsNotMissing | IsValid | IsNotValid | Not | Uppercase
        | Lowercase | TrimBlanks => n == 1,
        NormalCdf | NormalPdf | NormalIdf | Substring => n == 3,
        If => n == 2 || n == 3,
        IsIn | IsNotIn => n >= 2,
        Min | Max | Sum | Avg | Median | Product | And | Or | Concat => n >= 1,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidModel(format!(
            "function `{name}` with {n} arguments"
        )))
    }
}

impl Expr {
    pub fn eval(&self, ctx: &mut Ctx) -> Result<Value> {
        if let Expr::Constant(v) = self {
            return Ok(v.clone());
        }
        ctx.descend()?;
        let r = self.eval_inner(ctx);
        ctx.ascend();
        r
    }

    fn eval_inner(&self, ctx: &mut Ctx) -> Result<Value> {
        match self {
            Expr::Constant(v) => Ok(v.clone()),
            Expr::Field { slot, map_missing } => {
                let v = ctx.value(*slot)?;
                Ok(match (v, map_missing) {
                    (Value::Missing, Some(m)) => m.clone(),
                    (v, _) => v,
                })
            }
            Expr::NormContinuous {
                slot,
                points,
                outliers,
                map_missing,
            } => {
                let Some(x) = ctx.value(*slot)?.as_f64() else {
                    return Ok(map_missing.map(Value::Number).unwrap_or(Value::Missing));
                };
                Ok(norm_continuous(points, *outliers, x)
                    .map(Value::Number)
                    .unwrap_or(Value::Missing))
            }
            Expr::NormDiscrete {
                slot,
                value,
                map_missing,
            } => {
                let v = ctx.value(*slot)?;
                if v.is_missing() {
                    return Ok(map_missing.map(Value::Number).unwrap_or(Value::Missing));
                }
                Ok(bool_value(values_equal(&v, value)))
            }
            Expr::Discretize {
                slot,
                bins,
                map_missing,
                default,
            } => {
                let Some(x) = ctx.value(*slot)?.as_f64() else {
                    return Ok(map_missing.clone().unwrap_or(Value::Missing));
                };
                Ok(bins
                    .iter()
                    .find(|(iv, _)| iv.contains(x))
                    .map(|(_, v)| v.clone())
                    .or_else(|| default.clone())
                    .unwrap_or(Value::Missing))
            }
            Expr::MapValues {
                slots,
                rows,
                map_missing,
                default,
            } => {
                let mut keys = Vec::with_capacity(slots.len());
                for s in slots {
                    let v = ctx.value(*s)?;
                    if v.is_missing() {
                        return Ok(map_missing.clone().unwrap_or(Value::Missing));
                    }
                    keys.push(v);
                }
                Ok(rows
                    .iter()
                    .find(|(k, _)| k.iter().zip(&keys).all(|(a, b)| values_equal(a, b)))
                    .map(|(_, v)| v.clone())
                    .or_else(|| default.clone())
                    .unwrap_or(Value::Missing))
            }
            Expr::Call(call) => call.eval(ctx),
            Expr::Apply {
                func,
                args,
                map_missing,
                default,
            } => {
                if *func == Func::If {
                    let cond = args[0].eval(ctx)?;
                    let r = match as_bool(&cond) {
                        None => Value::Missing,
                        Some(true) => args[1].eval(ctx)?,
                        Some(false) => match args.get(2) {
                            Some(e) => e.eval(ctx)?,
                            None => Value::Missing,
                        },
                    };
                    return Ok(finish(r, default));
                }
                if matches!(func, Func::And | Func::Or) {
                    // Short-circuit with three-valued logic.
                    let mut unknown = false;
                    for a in args {
                        match as_bool(&a.eval(ctx)?) {
                            None => unknown = true,
                            Some(b) if b == (*func == Func::Or) => return Ok(bool_value(b)),
                            Some(_) => {}
                        }
                    }
                    if unknown {
                        return Ok(map_missing.clone().unwrap_or(Value::Missing));
                    }
                    return Ok(bool_value(*func == Func::And));
                }
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(a.eval(ctx)?);
                }
                if !func.handles_missing() && vals.iter().any(Value::is_missing) {
                    if let Some(m) = map_missing {
                        return Ok(m.clone());
                    }
                    // Aggregates skip missing values; everything else propagates them.
                    if !matches!(
                        func,
                        Func::Min
                            | Func::Max
                            | Func::Sum
                            | Func::Avg
                            | Func::Median
                            | Func::Product
                    ) {
                        return Ok(finish(Value::Missing, default));
                    }
                }
                Ok(finish(apply(*func, &vals), default))
            }
        }
    }
}

fn finish(v: Value, default: &Option<Value>) -> Value {
    match (v, default) {
        (Value::Missing, Some(d)) => d.clone(),
        (Value::Number(n), Some(d)) if n.is_nan() => d.clone(),
        (v, _) => v,
    }
}

/// Piecewise linear normalization between the LinearNorm points.
pub fn norm_continuous(points: &[(f64, f64)], outliers: NormOutliers, x: f64) -> Option<f64> {
    let first = points.first()?;
    let last = points.last()?;
    let (mut lo, mut hi) = (points.first()?, points.get(1)?);
    if x < first.0 || x > last.0 {
        match outliers {
            NormOutliers::AsMissing => return None,
            NormOutliers::AsExtreme => return Some(if x < first.0 { first.1 } else { last.1 }),
            NormOutliers::AsIs => {
                if x > last.0 {
                    lo = &points[points.len() - 2];
                    hi = last;
                }
            }
        }
    } else {
        for w in points.windows(2) {
            if x <= w[1].0 {
                lo = &w[0];
                hi = &w[1];
                break;
            }
        }
    }
    Some(lo.1 + (x - lo.0) / (hi.0 - lo.0) * (hi.1 - lo.1))
}

/// Inverse of [`norm_continuous`]: from a normalized value back to the original scale.
pub fn denorm_continuous(points: &[(f64, f64)], y: f64) -> Option<f64> {
    let swapped: Vec<(f64, f64)> = points.iter().map(|(o, n)| (*n, *o)).collect();
    let mut sorted = swapped;
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    norm_continuous(&sorted, NormOutliers::AsIs, y)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn number(x: f64) -> Value {
    Value::Number(x)
}

fn apply(func: Func, vals: &[Value]) -> Value {
    use Func::*;
    let a = || num(&vals[0]);
    let b = || num(&vals[1]);
    let present = || vals.iter().filter(|v| !v.is_missing()).map(num);
    match func {
        Add => number(a() + b()),
        Sub => number(a() - b()),
        Mul => number(a() * b()),
        Div => number(a() / b()),
        Min => present()
            .reduce(f64::min)
            .map(number)
            .unwrap_or(Value::Missing),
        Max => present()
            .reduce(f64::max)
            .map(number)
            .unwrap_or(Value::Missing),
        Sum => number(present().sum()),
        Product => number(present().product()),
        Avg => {
            let v: Vec<f64> = present().collect();
            if v.is_empty() {
                Value::Missing
            } else {
                number(v.iter().sum::<f64>() / v.len() as f64)
            }
        }
        Median => {
            let mut v: Vec<f64> = present().collect();
            v.sort_by(f64::total_cmp);
            match v.len() {
                0 => Value::Missing,
                n if n % 2 == 1 => number(v[n / 2]),
                n => number((v[n / 2 - 1] + v[n / 2]) / 2.0),
            }
        }
        Log10 => number(a().log10()),
        Ln => number(a().ln()),
        Sqrt => number(a().sqrt()),
        Abs => number(a().abs()),
        Exp => number(a().exp()),
        Pow => number(a().powf(b())),
        Threshold => number(if a() > b() { 1.0 } else { 0.0 }),
        Floor => number(a().floor()),
        Ceil => number(a().ceil()),
        // Java's Math.round: half up.
        Round => number((a() + 0.5).floor()),
        Rint => number(a().round_ties_even()),
        Expm1 => number(a().exp_m1()),
        Ln1p => number(a().ln_1p()),
        Sin => number(a().sin()),
        Cos => number(a().cos()),
        Tan => number(a().tan()),
        Asin => number(a().asin()),
        Acos => number(a().acos()),
        Atan => number(a().atan()),
        Atan2 => number(a().atan2(b())),
        Sinh => number(a().sinh()),
        Cosh => number(a().cosh()),
        Tanh => number(a().tanh()),
        Hypot => number(a().hypot(b())),
        Modulo => {
            let (x, y) = (a(), b());
            number(x - y * (x / y).floor())
        }
        Erf => number(types::erf(a())),
        StdNormalCdf => number(types::normal_cdf(a())),
        StdNormalPdf => number((-0.5 * a() * a()).exp() / (2.0 * std::f64::consts::PI).sqrt()),
        StdNormalIdf => number(types::normal_quantile(a())),
        NormalCdf => {
            let (x, mu, sigma) = (a(), b(), num(&vals[2]));
            number(types::normal_cdf((x - mu) / sigma))
        }
        NormalPdf => {
            let (x, mu, sigma) = (a(), b(), num(&vals[2]));
            let z = (x - mu) / sigma;
            number((-0.5 * z * z).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt()))
        }
        NormalIdf => {
            let (p, mu, sigma) = (a(), b(), num(&vals[2]));
            number(mu + sigma * types::normal_quantile(p))
        }
        IsMissing => bool_value(vals[0].is_missing()),
        IsNotMissing | IsValid => bool_value(!vals[0].is_missing()),
        IsNotValid => bool_value(false),
        Equal => bool_value(values_equal(&vals[0], &vals[1])),
        NotEqual => bool_value(!values_equal(&vals[0], &vals[1])),
        LessThan | LessOrEqual | GreaterThan | GreaterOrEqual => {
            match compare_values(&vals[0], &vals[1]) {
                None => Value::Missing,
                Some(o) => bool_value(match func {
                    LessThan => o.is_lt(),
                    LessOrEqual => o.is_le(),
                    GreaterThan => o.is_gt(),
                    _ => o.is_ge(),
                }),
            }
        }
        Not => as_bool(&vals[0])
            .map(|b| bool_value(!b))
            .unwrap_or(Value::Missing),
        IsIn => bool_value(vals[1..].iter().any(|v| values_equal(&vals[0], v))),
        IsNotIn => bool_value(!vals[1..].iter().any(|v| values_equal(&vals[0], v))),
        Uppercase => text(&vals[0], |s| s.to_uppercase()),
        Lowercase => text(&vals[0], |s| s.to_lowercase()),
        TrimBlanks => text(&vals[0], |s| s.trim().to_string()),
        Substring => {
            // 1-based start and a length, as in the spec.
            let start = b().max(1.0) as usize - 1;
            let len = num(&vals[2]).max(0.0) as usize;
            text(&vals[0], |s| s.chars().skip(start).take(len).collect())
        }
        Concat => Value::Text(Arc::from(
            vals.iter()
                .filter(|v| !v.is_missing())
                .map(|v| match v {
                    Value::Number(n) => types::format_num(*n),
                    other => other.to_string(),
                })
                .collect::<String>(),
        )),
        // Handled before evaluation of the arguments.
        And | Or | If => Value::Missing,
    }
}

fn text(v: &Value, f: impl Fn(&str) -> String) -> Value {
    match v {
        Value::Text(t) => Value::Text(Arc::from(f(t))),
        Value::Number(n) => Value::Text(Arc::from(f(&types::format_num(*n)))),
        Value::Missing => Value::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_continuous_interpolates_and_extrapolates() {
        let pts = [(0.0, 0.0), (10.0, 1.0), (20.0, 3.0)];
        assert_eq!(norm_continuous(&pts, NormOutliers::AsIs, 5.0), Some(0.5));
        assert_eq!(norm_continuous(&pts, NormOutliers::AsIs, 15.0), Some(2.0));
        // Outside: the nearest segment is extended.
        assert_eq!(norm_continuous(&pts, NormOutliers::AsIs, -10.0), Some(-1.0));
        assert_eq!(norm_continuous(&pts, NormOutliers::AsIs, 30.0), Some(5.0));
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsExtreme, 30.0),
            Some(3.0)
        );
        assert_eq!(norm_continuous(&pts, NormOutliers::AsMissing, 30.0), None);
        assert_eq!(denorm_continuous(&pts, 2.0), Some(15.0));
    }

    #[test]
    fn functions() {
        assert_eq!(
            apply(Func::Round, &[Value::Number(-2.5)]),
            Value::Number(-2.0)
        );
        assert_eq!(
            apply(Func::Modulo, &[Value::Number(-7.0), Value::Number(3.0)]),
            Value::Number(2.0)
        );
        assert_eq!(
            apply(
                Func::Substring,
                &[
                    Value::text("abcdef"),
                    Value::Number(2.0),
                    Value::Number(3.0)
                ]
            ),
            Value::text("bcd")
        );
    }
}
