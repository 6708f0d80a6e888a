//! NeuralNetwork: inputs through derived expressions, layers of neurons with per-layer
//! activation/normalization overrides, outputs mapped back to the target.

use std::collections::HashMap;
use std::sync::Arc;

use roxmltree::Node;

use super::eval::{Ctx, Outcome};
use super::expr::{denorm_continuous, Expr};
use super::plan::{Builder, Function, ModelPlan};
use super::xml::{self, attr, child, children, num_attr, req_attr};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct NeuralPlan {
    pub inputs: Vec<Expr>,
    pub layers: Vec<Layer>,
    /// Total number of units (inputs + neurons); unit values live in one flat vector.
    pub units: usize,
    pub outputs: Vec<NeuralOutput>,
}

#[derive(Debug)]
pub struct Layer {
    pub activation: Activation,
    pub threshold: f64,
    pub normalization: LayerNorm,
    pub first_unit: usize,
    pub neurons: Vec<Neuron>,
}

#[derive(Debug)]
pub struct Neuron {
    pub bias: f64,
    pub width: f64,
    pub altitude: f64,
    pub inputs: Vec<(usize, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Threshold,
    Logistic,
    Tanh,
    Identity,
    Exponential,
    Reciprocal,
    Square,
    Gauss,
    Sine,
    Cosine,
    Elliott,
    Arctan,
    Rectifier,
    RadialBasis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerNorm {
    None,
    Simplemax,
    Softmax,
}

#[derive(Debug)]
pub enum NeuralOutput {
    /// Probability of a class is the unit's value.
    Class { unit: usize, class: usize },
    /// The regression value, optionally denormalized through NormContinuous points.
    Value {
        unit: usize,
        norm: Option<Vec<(f64, f64)>>,
    },
}

fn activation(s: &str, node: Node) -> Result<Activation> {
    Ok(match s {
        "threshold" => Activation::Threshold,
        "logistic" => Activation::Logistic,
        "tanh" => Activation::Tanh,
        "identity" => Activation::Identity,
        "exponential" => Activation::Exponential,
        "reciprocal" => Activation::Reciprocal,
        "square" => Activation::Square,
        "Gauss" => Activation::Gauss,
        "sine" => Activation::Sine,
        "cosine" => Activation::Cosine,
        "Elliott" => Activation::Elliott,
        "arctan" => Activation::Arctan,
        "rectifier" => Activation::Rectifier,
        "radialBasis" => Activation::RadialBasis,
        o => {
            return Err(xml::unsupported(
                node,
                &format!("activationFunction=\"{o}\""),
            ))
        }
    })
}

fn layer_norm(s: &str, node: Node) -> Result<LayerNorm> {
    Ok(match s {
        "none" => LayerNorm::None,
        "simplemax" => LayerNorm::Simplemax,
        "softmax" => LayerNorm::Softmax,
        o => {
            return Err(xml::unsupported(
                node,
                &format!("normalizationMethod=\"{o}\""),
            ))
        }
    })
}

pub fn build(
    b: &mut Builder,
    node: Node,
    function: Function,
    classes: &mut Vec<Arc<str>>,
    target: Option<&str>,
) -> Result<NeuralPlan> {
    let default_act = activation(req_attr(node, "activationFunction")?, node)?;
    let default_norm = layer_norm(attr(node, "normalizationMethod").unwrap_or("none"), node)?;
    let default_threshold = num_attr(node, "threshold")?.unwrap_or(0.0);
    let default_width = num_attr(node, "width")?;
    let default_altitude = num_attr(node, "altitude")?.unwrap_or(1.0);
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut inputs = Vec::new();
    let ni =
        child(node, "NeuralInputs").ok_or_else(|| Error::InvalidModel("no NeuralInputs".into()))?;
    for input in children(ni, "NeuralInput") {
        let df = child(input, "DerivedField")
            .ok_or_else(|| Error::InvalidModel("NeuralInput without DerivedField".into()))?;
        ids.insert(req_attr(input, "id")?.to_string(), inputs.len());
        inputs.push(b.derived_expr(df)?);
    }
    let mut units = inputs.len();
    let mut layers = Vec::new();
    for ln in children(node, "NeuralLayer") {
        let act = match attr(ln, "activationFunction") {
            Some(a) => activation(a, ln)?,
            None => default_act,
        };
        let width = num_attr(ln, "width")?.or(default_width);
        let altitude = num_attr(ln, "altitude")?.unwrap_or(default_altitude);
        let mut layer = Layer {
            activation: act,
            threshold: num_attr(ln, "threshold")?.unwrap_or(default_threshold),
            normalization: match attr(ln, "normalizationMethod") {
                Some(n) => layer_norm(n, ln)?,
                None => default_norm,
            },
            first_unit: units,
            neurons: Vec::new(),
        };
        let mut new_ids = Vec::new();
        for n in children(ln, "Neuron") {
            let mut conns = Vec::new();
            for c in children(n, "Con") {
                let from = req_attr(c, "from")?;
                // Connections only reach units of earlier layers, so no cycles.
                let unit = *ids.get(from).ok_or_else(|| {
                    Error::InvalidModel(format!("Con from unknown neuron `{from}`"))
                })?;
                conns.push((unit, xml::req_num(c, "weight")?));
            }
            let w = num_attr(n, "width")?.or(width);
            if act == Activation::RadialBasis && w.is_none() {
                return Err(Error::InvalidModel(
                    "radialBasis neuron without width".into(),
                ));
            }
            layer.neurons.push(Neuron {
                bias: num_attr(n, "bias")?.unwrap_or(0.0),
                width: w.unwrap_or(1.0),
                altitude: num_attr(n, "altitude")?.unwrap_or(altitude),
                inputs: conns,
            });
            new_ids.push((req_attr(n, "id")?.to_string(), units));
            units += 1;
        }
        ids.extend(new_ids);
        layers.push(layer);
    }
    let no = child(node, "NeuralOutputs")
        .ok_or_else(|| Error::InvalidModel("no NeuralOutputs".into()))?;
    let mut outputs = Vec::new();
    for o in children(no, "NeuralOutput") {
        let from = req_attr(o, "outputNeuron")?;
        let unit = *ids.get(from).ok_or_else(|| {
            Error::InvalidModel(format!("NeuralOutput from unknown neuron `{from}`"))
        })?;
        let df = child(o, "DerivedField")
            .ok_or_else(|| Error::InvalidModel("NeuralOutput without DerivedField".into()))?;
        let e = xml::elements(df)
            .find(|c| xml::name(*c) != "Extension")
            .ok_or_else(|| Error::InvalidModel("NeuralOutput DerivedField is empty".into()))?;
        // A FieldRef to a derived field may hide the actual NormDiscrete/NormContinuous.
        let out = match (xml::name(e), function) {
            ("NormDiscrete", Function::Classification) => NeuralOutput::Class {
                unit,
                class: Builder::class_index(classes, req_attr(e, "value")?),
            },
            ("NormContinuous", Function::Regression) => {
                let mut pts = Vec::new();
                for ln in children(e, "LinearNorm") {
                    pts.push((xml::req_num(ln, "orig")?, xml::req_num(ln, "norm")?));
                }
                NeuralOutput::Value {
                    unit,
                    norm: Some(pts),
                }
            }
            ("FieldRef", Function::Regression) => NeuralOutput::Value { unit, norm: None },
            (other, _) => {
                return Err(Error::Unsupported(format!(
                    "NeuralOutput with <{other}> for target {}",
                    target.unwrap_or("?")
                )))
            }
        };
        outputs.push(out);
    }
    Ok(NeuralPlan {
        inputs,
        layers,
        units,
        outputs,
    })
}

/// A neuron's activation of its summed input `z`.
#[inline]
pub fn activate(act: Activation, z: f64, threshold: f64) -> f64 {
    match act {
        Activation::Threshold => {
            if z > threshold {
                1.0
            } else {
                0.0
            }
        }
        Activation::Logistic => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Identity => z,
        Activation::Exponential => z.exp(),
        Activation::Reciprocal => 1.0 / z,
        Activation::Square => z * z,
        Activation::Gauss => (-(z * z)).exp(),
        Activation::Sine => z.sin(),
        Activation::Cosine => z.cos(),
        Activation::Elliott => z / (1.0 + z.abs()),
        Activation::Arctan => 2.0 * z.atan() / std::f64::consts::PI,
        Activation::Rectifier => z.max(0.0),
        // Handled in `eval` (needs the inputs, not just Z).
        Activation::RadialBasis => z,
    }
}

/// A layer's normalization of its neurons' outputs, in place.
#[inline]
pub fn normalize(norm: LayerNorm, out: &mut [f64]) {
    match norm {
        LayerNorm::None => {}
        LayerNorm::Softmax => {
            let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for v in out.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            for v in out.iter_mut() {
                *v /= sum;
            }
        }
        LayerNorm::Simplemax => {
            let sum: f64 = out.iter().sum();
            for v in out.iter_mut() {
                *v /= sum;
            }
        }
    }
}

thread_local! {
    /// Per-thread unit buffer, so a record does not allocate one.
    static UNITS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub fn eval(n: &NeuralPlan, m: &ModelPlan, ctx: &mut Ctx) -> Result<Outcome<'static>> {
    let mut units = UNITS.with(|u| u.take());
    units.clear();
    units.resize(n.units, 0.0);
    let r = eval_units(n, m, ctx, &mut units);
    UNITS.with(|u| u.replace(units));
    r
}

fn eval_units(
    n: &NeuralPlan,
    m: &ModelPlan,
    ctx: &mut Ctx,
    units: &mut [f64],
) -> Result<Outcome<'static>> {
    for (i, e) in n.inputs.iter().enumerate() {
        match e.eval(ctx)?.as_f64() {
            Some(v) => units[i] = v,
            None => return Ok(Outcome::Missing),
        }
    }
    for layer in &n.layers {
        let start = layer.first_unit;
        for (k, neuron) in layer.neurons.iter().enumerate() {
            let v = if layer.activation == Activation::RadialBasis {
                let mut z = 0.0;
                for &(u, w) in &neuron.inputs {
                    let d = units[u] - w;
                    z += d * d;
                }
                z /= 2.0 * neuron.width * neuron.width;
                let fan_in = neuron.inputs.len() as f64;
                (fan_in * neuron.altitude.ln() - z).exp()
            } else {
                let mut z = neuron.bias;
                for &(u, w) in &neuron.inputs {
                    z += units[u] * w;
                }
                activate(layer.activation, z, layer.threshold)
            };
            units[start + k] = v;
        }
        normalize(
            layer.normalization,
            &mut units[start..start + layer.neurons.len()],
        );
    }
    match m.function {
        Function::Regression => {
            for o in &n.outputs {
                if let NeuralOutput::Value { unit, norm } = o {
                    let y = units[*unit];
                    let v = match norm {
                        Some(pts) => denorm_continuous(pts, y),
                        None => Some(y),
                    };
                    return Ok(v.map(Outcome::Value).unwrap_or(Outcome::Missing));
                }
            }
            Ok(Outcome::Missing)
        }
        Function::Classification => {
            let mut probs = vec![0.0; m.classes.len()];
            for o in &n.outputs {
                if let NeuralOutput::Class { unit, class } = o {
                    if let Some(p) = probs.get_mut(*class) {
                        *p = units[*unit];
                    }
                }
            }
            Ok(Outcome::from_probs(probs))
        }
    }
}
