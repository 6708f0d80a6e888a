//! PMML data types and the value conversions and comparisons the evaluator needs.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::record::Value;

/// The `dataType` of a field; anything non-numeric we do not model is treated as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    String,
    Integer,
    Float,
    Double,
    Boolean,
}

impl DataType {
    pub fn parse(s: &str) -> DataType {
        match s {
            "integer" => DataType::Integer,
            "float" => DataType::Float,
            "double" => DataType::Double,
            "boolean" => DataType::Boolean,
            // Dates and times are rare in exported models; comparing them as text keeps
            // equality predicates working.
            _ => DataType::String,
        }
    }

    pub fn is_numeric(self) -> bool {
        !matches!(self, DataType::String)
    }

    /// Converts a value to this type; `None` means the value is invalid for the type.
    pub fn convert(self, v: &Value) -> Option<Value> {
        match (self, v) {
            (_, Value::Missing) => Some(Value::Missing),
            (DataType::String, Value::Text(_)) => Some(v.clone()),
            (DataType::String, Value::Number(n)) => Some(Value::Text(Arc::from(format_num(*n)))),
            (t, Value::Number(n)) => t.cast_f64(*n),
            (DataType::Boolean, Value::Text(s)) => match s.trim() {
                "true" | "TRUE" | "True" => Some(Value::Number(1.0)),
                "false" | "FALSE" | "False" => Some(Value::Number(0.0)),
                other => other
                    .parse::<f64>()
                    .ok()
                    .and_then(|n| DataType::Boolean.cast_f64(n)),
            },
            (t, Value::Text(s)) => parse_num(s).and_then(|n| t.cast_f64(n)),
        }
    }

    fn cast_f64(self, n: f64) -> Option<Value> {
        match self {
            DataType::Double => Some(Value::Number(n)),
            // JPMML keeps float fields in single precision, so thresholds compare the same.
            DataType::Float => Some(Value::Number(n as f32 as f64)),
            DataType::Integer => (n.fract() == 0.0).then_some(Value::Number(n)),
            DataType::Boolean => (n == 0.0 || n == 1.0).then_some(Value::Number(n)),
            DataType::String => Some(Value::Text(Arc::from(format_num(n)))),
        }
    }

    /// Converts a constant from the document, failing with a model error.
    pub fn constant(self, s: &str, what: &str) -> Result<Value> {
        self.convert(&Value::text(s))
            .ok_or_else(|| Error::InvalidModel(format!("`{s}` is not a valid {self:?} ({what})")))
    }
}

/// Parses a number the way PMML writes them (`INF`, `NaN` included).
pub fn parse_num(s: &str) -> Option<f64> {
    match s.trim() {
        "INF" | "Infinity" => Some(f64::INFINITY),
        "-INF" | "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        t => t.parse().ok(),
    }
}

/// Numbers turned into categories: integral values without a fraction, so that `1.0`
/// matches the category `1` the way exporters write integer labels.
pub fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:?}")
    }
}

/// `dataType` of an element, defaulting when absent.
pub fn data_type_attr(node: roxmltree::Node, default: DataType) -> DataType {
    node.attribute("dataType")
        .map(DataType::parse)
        .unwrap_or(default)
}

/// Equality across representations: numbers numerically, text textually, mixed by reading
/// the text as a number.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::Text(x), Value::Text(y)) => x == y,
        (Value::Number(x), Value::Text(t)) | (Value::Text(t), Value::Number(x)) => {
            parse_num(t).is_some_and(|y| y == *x)
        }
        (Value::Missing, Value::Missing) => true,
        _ => false,
    }
}

/// Ordering across representations; `None` when the values are not comparable.
pub fn compare_values(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        (Value::Text(x), Value::Text(y)) => match (parse_num(x), parse_num(y)) {
            (Some(p), Some(q)) => p.partial_cmp(&q),
            _ => Some(x.cmp(y)),
        },
        (Value::Number(x), Value::Text(t)) => parse_num(t).and_then(|y| x.partial_cmp(&y)),
        (Value::Text(t), Value::Number(y)) => parse_num(t).and_then(|x| x.partial_cmp(y)),
        _ => None,
    }
}

/// Truthiness of a value used as a boolean (`if`, `and`, ...).
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Number(n) => Some(*n != 0.0),
        Value::Text(t) => match t.trim() {
            "true" => Some(true),
            "false" => Some(false),
            other => parse_num(other).map(|n| n != 0.0),
        },
        Value::Missing => None,
    }
}

pub fn bool_value(b: bool) -> Value {
    Value::Number(if b { 1.0 } else { 0.0 })
}

/// The standard normal CDF, accurate to about 1e-15 (probit links need the evaluator to
/// match JPMML to 1e-9).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Inverse of [`normal_cdf`] by Newton steps from a rational first guess.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    // Abramowitz-Stegun 26.2.23 as the starting point.
    let q = if p < 0.5 { p } else { 1.0 - p };
    let t = (-2.0 * q.ln()).sqrt();
    let mut x = t
        - (2.515517 + 0.802853 * t + 0.010328 * t * t)
            / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    if p < 0.5 {
        x = -x;
    }
    for _ in 0..50 {
        let err = normal_cdf(x) - p;
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        if pdf == 0.0 {
            break;
        }
        let step = err / pdf;
        x -= step;
        if step.abs() < 1e-15 * x.abs().max(1.0) {
            break;
        }
    }
    x
}

/// The error function.
pub fn erf(x: f64) -> f64 {
    1.0 - erfc(x)
}

/// Complementary error function: a Taylor series near zero, a continued fraction in the
/// tails (where the series would cancel catastrophically).
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 {
        // erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0;
        let mut term = x;
        let x2 = x * x;
        let mut n = 0.0;
        loop {
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
            n += 1.0;
            term *= -x2 / n;
            if n > 200.0 {
                break;
            }
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // Lentz evaluation of erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let tiny = 1e-300;
        let mut f = x;
        let mut c = x;
        let mut d = 0.0;
        for i in 1..300 {
            let a = i as f64 / 2.0;
            d = x + a * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = x + a / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(
            DataType::Double.convert(&Value::text(" 2.5")),
            Some(Value::Number(2.5))
        );
        assert_eq!(DataType::Integer.convert(&Value::text("2.5")), None);
        assert_eq!(
            DataType::String.convert(&Value::Number(3.0)),
            Some(Value::text("3"))
        );
        assert_eq!(
            DataType::Float.convert(&Value::Number(0.1)),
            Some(Value::Number(0.1f32 as f64))
        );
        assert_eq!(
            DataType::Boolean.convert(&Value::text("true")),
            Some(Value::Number(1.0))
        );
    }

    #[test]
    fn normal_distribution() {
        // Reference values of Phi from tables (15 digits).
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15);
        assert!((normal_cdf(1.0) - 0.841344746068543).abs() < 1e-14);
        assert!((normal_cdf(-2.0) - 0.0227501319481792).abs() < 1e-14);
        assert!((normal_cdf(-4.0) - 3.16712418331199e-05).abs() < 1e-17);
        assert!((erf(0.5) - 0.520499877813047).abs() < 1e-14);
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-12);
    }
}
