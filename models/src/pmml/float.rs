//! `mathContext="float"` (written `x-mathContext` by the JPMML converters for XGBoost):
//! a model whose arithmetic is single precision, as JPMML-Evaluator's `FloatValue` does it.
//!
//! Every intermediate result is rounded to `f32` and the order of operations is JPMML's:
//! a regression table sums `coefficient * x` over its predictors from zero and adds the
//! intercept last; a segmentation sums its members in order from zero; `exp(x)` is
//! `(float) Math.pow(2.7182817d, x)` (JPMML's emulation of a float exp). Values leave a
//! model as `f64` holding an `f32`, so results compare equal to JPMML's bit for bit.
//!
//! Float arithmetic is implemented for TreeModel (regression), MiningModel (sum, average,
//! their weighted forms, modelChain, selectFirst) and RegressionModel; another model
//! declaring it is refused with [`Error::Unsupported`].
//!
//! ```
//! use ks_models::{Model, ModelType, Record};
//! let pmml = br#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
//!   <DataDictionary>
//!     <DataField name="x" optype="continuous" dataType="float"/>
//!     <DataField name="y" optype="continuous" dataType="float"/>
//!   </DataDictionary>
//!   <RegressionModel functionName="regression" mathContext="float">
//!     <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
//!     <RegressionTable intercept="0.1"><NumericPredictor name="x" coefficient="0.2"/></RegressionTable>
//!   </RegressionModel>
//! </PMML>"#;
//! let model = Model::from_bytes(ModelType::Pmml, pmml)?;
//! let y = model.score(&Record::new().with("x", 0.3))?.as_f64();
//! assert_eq!(y, Some((0.2f32 * 0.3f32 + 0.1f32) as f64));
//! # Ok::<(), ks_models::Error>(())
//! ```

use roxmltree::Node;

use super::xml::{self, attr};
use crate::error::{Error, Result};

/// JPMML's `FloatValue.E`: a double literal, so that `Math.pow` sees exactly this base
/// (truncated on purpose: results must equal JPMML's, not the exact constant's).
#[allow(clippy::approx_constant)]
const E: f64 = 2.718_281_7;
/// JPMML's `FloatValue.PI`, truncated the same way.
#[allow(clippy::approx_constant)]
const PI: f64 = 3.141_592_7;

/// Whether `node` (a model element) declares single-precision arithmetic.
pub fn declared(node: Node) -> Result<bool> {
    let value = attr(node, "mathContext").or_else(|| attr(node, "x-mathContext"));
    match value {
        None | Some("double") => Ok(false),
        Some("float") => Ok(true),
        Some(o) => Err(xml::unsupported(node, &format!("mathContext=\"{o}\""))),
    }
}

/// An error for a part of a float model that is not implemented in float.
pub fn unsupported(node: Node, what: &str) -> Error {
    xml::unsupported(node, &format!("{what} with mathContext=\"float\""))
}

/// A number from the document read as `f32` (not via `f64`, which could round twice).
pub fn parse(s: &str, what: &str) -> Result<f64> {
    let t = s.trim();
    let v = match t {
        "INF" | "Infinity" => Ok(f32::INFINITY),
        "-INF" | "-Infinity" => Ok(f32::NEG_INFINITY),
        "NaN" => Ok(f32::NAN),
        _ => t.parse::<f32>(),
    };
    v.map(f64::from)
        .map_err(|_| Error::InvalidModel(format!("`{s}` is not a number ({what})")))
}

/// JPMML's float `exp`.
pub fn exp(x: f32) -> f32 {
    E.powf(f64::from(x)) as f32
}

/// `1 / (1 + exp(-x))` in float.
pub fn inverse_logit(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

pub fn inverse_cloglog(x: f32) -> f32 {
    1.0 - exp(-exp(x))
}

pub fn inverse_loglog(x: f32) -> f32 {
    exp(-exp(-x))
}

pub fn inverse_cauchit(x: f32) -> f32 {
    0.5 + (1.0 / PI as f32) * (f64::from(x).atan() as f32)
}

/// Softmax in float the way JPMML's `ValueUtil.normalizeSoftMax` runs it: subtract the
/// maximum, exponentiate, sum in order, divide (skipped when the sum is exactly 1).
pub fn softmax(ys: &mut [f32]) {
    let Some(max) = ys.iter().copied().reduce(|a, b| if a < b { b } else { a }) else {
        return;
    };
    let mut sum = 0.0f32;
    for (i, y) in ys.iter_mut().enumerate() {
        *y = exp(*y - max);
        sum = if i == 0 { *y } else { sum + *y };
    }
    if sum == 1.0 {
        return;
    }
    for y in ys {
        *y /= sum;
    }
}

/// Each value divided by their sum (JPMML's `normalizeSimpleMax`), in float.
pub fn simplemax(ys: &mut [f32]) {
    let mut sum = 0.0f32;
    for (i, y) in ys.iter().enumerate() {
        sum = if i == 0 { *y } else { sum + *y };
    }
    if sum == 1.0 {
        return;
    }
    for y in ys {
        *y /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_jpmml_emulation() {
        // (float) Math.pow(2.7182817d, 1d), which is not (float) Math.exp(1d).
        assert_eq!(exp(1.0), 2.718_281_7_f64.powf(1.0) as f32);
        assert_eq!(exp(0.0), 1.0);
        let mut p = [1.0f32, 2.0, 3.0];
        softmax(&mut p);
        let s: f32 = p.iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
    }
}
