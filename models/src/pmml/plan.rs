//! The evaluation plan: the PMML document resolved into slots, compiled expressions and
//! per-model structures, so that scoring does no XML or string work.
//!
//! Every field (input, derived, output) gets a slot index at build time; names are
//! resolved through a stack of scopes that mirrors PMML's scoping (TransformationDictionary,
//! then each model's LocalTransformations, then the outputs of earlier segments).

use std::collections::HashMap;
use std::sync::Arc;

use roxmltree::Node;

use super::expr::Expr;
use super::types::{data_type_attr, DataType};
use super::xml::{self, attr, child, children, num_attr, req_attr};
use super::{bayes, general, knn, mining, neural, regression, svm, tree};
use crate::error::{Error, Result};
use crate::record::Value;

/// The compiled document.
#[derive(Debug)]
pub struct Plan {
    /// Unique per built plan (never reused), so a per-thread slot buffer knows whether
    /// it was last filled by this plan.
    pub id: u64,
    pub slots: Vec<SlotDef>,
    /// Slots not set from the record (derived and written): reset before each record.
    /// Input slots need no reset, every record overwrites them.
    pub volatile_slots: Vec<usize>,
    pub inputs: Vec<InputPlan>,
    pub input_names: Vec<String>,
    pub model: ModelPlan,
    /// Target field name first, then the final-result output fields.
    pub output_names: Vec<String>,
    /// Slots of the final-result output fields, in `output_names[1..]` order.
    pub output_slots: Vec<usize>,
}

#[derive(Debug)]
pub struct SlotDef {
    pub name: String,
    pub dtype: DataType,
    pub kind: SlotKind,
}

#[derive(Debug)]
pub enum SlotKind {
    /// Set from the record before evaluation.
    Input,
    /// Computed on first use from an expression.
    Derived(Expr),
    /// Written by the evaluator (model outputs).
    Written,
}

/// How a MiningField prepares a raw input value.
#[derive(Debug)]
pub struct InputPlan {
    pub name: String,
    pub slot: usize,
    pub dtype: DataType,
    pub validity: Validity,
    /// Values the DataDictionary declares as meaning "missing".
    pub missing_values: Vec<Value>,
    pub missing_replacement: Option<Value>,
    pub missing_is_invalid: bool,
    pub invalid: InvalidTreatment,
    pub outliers: Outliers,
    /// A double field with no declared values, intervals or outlier bounds: a present
    /// number passes through unchanged (the common case, kept cheap).
    pub plain: bool,
}

#[derive(Debug)]
pub enum Validity {
    Any,
    Values(Vec<Value>),
    Intervals(Vec<Interval>),
}

#[derive(Debug)]
pub enum InvalidTreatment {
    ReturnInvalid,
    AsIs,
    AsMissing,
    AsValue(Value),
}

// Variant names follow the PMML attribute values (asIs, asMissingValues, ...).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy)]
pub enum Outliers {
    AsIs,
    AsMissing { low: f64, high: f64 },
    AsExtreme { low: f64, high: f64 },
}

/// A numeric interval with PMML closure semantics.
#[derive(Debug, Clone, Copy)]
pub struct Interval {
    pub left: f64,
    pub right: f64,
    pub left_closed: bool,
    pub right_closed: bool,
}

impl Interval {
    pub fn parse(node: Node) -> Result<Interval> {
        let closure = req_attr(node, "closure")?;
        let (left_closed, right_closed) = match closure {
            "openClosed" => (false, true),
            "openOpen" => (false, false),
            "closedOpen" => (true, false),
            "closedClosed" => (true, true),
            other => return Err(Error::InvalidModel(format!("interval closure `{other}`"))),
        };
        Ok(Interval {
            left: num_attr(node, "leftMargin")?.unwrap_or(f64::NEG_INFINITY),
            right: num_attr(node, "rightMargin")?.unwrap_or(f64::INFINITY),
            left_closed,
            right_closed,
        })
    }

    pub fn contains(&self, x: f64) -> bool {
        let left_ok = if self.left_closed {
            x >= self.left
        } else {
            x > self.left
        };
        let right_ok = if self.right_closed {
            x <= self.right
        } else {
            x < self.right
        };
        left_ok && right_ok
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Regression,
    Classification,
}

/// One model (top-level or a segment) with what surrounds its core algorithm.
#[derive(Debug)]
pub struct ModelPlan {
    pub function: Function,
    /// Class labels of a classifier; probability vectors are indexed by them.
    pub classes: Vec<Arc<str>>,
    pub kind: ModelKind,
    pub targets: Option<TargetPlan>,
    pub outputs: Vec<OutputPlan>,
}

#[derive(Debug)]
pub enum ModelKind {
    Tree(tree::TreePlan),
    Regression(regression::RegressionPlan),
    General(general::GeneralPlan),
    Neural(neural::NeuralPlan),
    Mining(mining::MiningPlan),
    Svm(svm::SvmPlan),
    Bayes(bayes::BayesPlan),
    Knn(knn::KnnPlan),
}

/// `Targets/Target` post-processing of a regression result.
#[derive(Debug, Clone, Copy)]
pub struct TargetPlan {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub factor: f64,
    pub constant: f64,
    pub cast: Option<CastInteger>,
    pub default: Option<f64>,
    /// The model computes in float (`float.rs`): so does the rescaling.
    pub float: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum CastInteger {
    Round,
    Ceiling,
    Floor,
}

impl TargetPlan {
    pub fn apply(&self, mut v: f64) -> f64 {
        if self.float {
            return self.apply_f32(v as f32).into();
        }
        if let Some(min) = self.min {
            v = v.max(min);
        }
        if let Some(max) = self.max {
            v = v.min(max);
        }
        v = v * self.factor + self.constant;
        match self.cast {
            None => v,
            Some(CastInteger::Round) => v.round(),
            Some(CastInteger::Ceiling) => v.ceil(),
            Some(CastInteger::Floor) => v.floor(),
        }
    }

    /// JPMML's `TargetUtil.processValue` on a float value.
    fn apply_f32(&self, mut v: f32) -> f32 {
        if self.min.is_some() || self.max.is_some() {
            v = v.max(self.min.unwrap_or(f64::NEG_INFINITY) as f32);
            v = v.min(self.max.unwrap_or(f64::INFINITY) as f32);
        }
        v = v * self.factor as f32 + self.constant as f32;
        match self.cast {
            None => v,
            // Java's Math.round(float): half up.
            Some(CastInteger::Round) => (v + 0.5).floor(),
            Some(CastInteger::Ceiling) => v.ceil(),
            Some(CastInteger::Floor) => v.floor(),
        }
    }
}

#[derive(Debug)]
pub struct OutputPlan {
    pub slot: usize,
    pub feature: Feature,
    pub final_result: bool,
}

#[derive(Debug)]
pub enum Feature {
    PredictedValue,
    PredictedDisplayValue,
    /// Probability of a class (index into the model's classes), or of the winner.
    Probability(Option<usize>),
    Transformed(Expr),
    /// `entityId` of a k-NN model: the id of the neighbour of this rank (1 = nearest).
    EntityId(usize),
    /// `affinity` of a k-NN model: the distance of the neighbour of this rank.
    Affinity(usize),
}

/// Builds the plan; lives only during `Plan::build`.
pub struct Builder<'a, 'i> {
    pub slots: Vec<SlotDef>,
    /// Current nesting of expressions, predicates and models being built; bounded so that
    /// neither building nor the (recursive) evaluation can exhaust the stack.
    depth: usize,
    scopes: Vec<HashMap<String, usize>>,
    data_fields: HashMap<String, Node<'a, 'i>>,
    /// User-defined functions (`DefineFunction`) seen so far.
    pub functions: super::functions::Registry,
}

/// Deepest nesting of expressions, predicates and models; real models stay far below.
pub const MAX_NESTING: usize = 64;

impl<'a, 'i> Builder<'a, 'i> {
    /// Runs `f` one nesting level deeper, failing beyond [`MAX_NESTING`].
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_NESTING {
            return Err(Error::TooDeep { limit: MAX_NESTING });
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Resolves a field name in the innermost scope that defines it.
    pub fn resolve(&self, name: &str) -> Result<usize> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name).copied())
            .ok_or_else(|| Error::UnknownField(name.to_string()))
    }

    pub fn dtype(&self, slot: usize) -> DataType {
        self.slots
            .get(slot)
            .map(|s| s.dtype)
            .unwrap_or(DataType::Double)
    }

    pub fn add_slot(&mut self, name: &str, dtype: DataType, kind: SlotKind) -> usize {
        let id = self.slots.len();
        self.slots.push(SlotDef {
            name: name.to_string(),
            dtype,
            kind,
        });
        self.register(name, id);
        id
    }

    fn register(&mut self, name: &str, slot: usize) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), slot);
        }
    }

    /// Runs `f` with `scope` as the only visible scope (a function body sees its
    /// parameters and nothing else).
    pub fn with_only_scope<T>(
        &mut self,
        scope: HashMap<String, usize>,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let outer = std::mem::replace(&mut self.scopes, vec![scope]);
        let r = f(self);
        self.scopes = outer;
        r
    }

    fn push_scope(&mut self) {
        self.scopes.push(HashMap::new());
    }

    fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    /// Declared class labels of a categorical DataField (valid values only).
    fn declared_classes(&self, target: &str) -> Vec<Arc<str>> {
        let Some(df) = self.data_fields.get(target) else {
            return Vec::new();
        };
        children(*df, "Value")
            .filter(|v| matches!(attr(*v, "property"), None | Some("valid")))
            .filter_map(|v| attr(v, "value"))
            .map(Arc::from)
            .collect()
    }

    /// Registers the DerivedFields under `container`. All names are registered first so
    /// that fields may refer to fields defined later in the same dictionary.
    fn derived_fields(&mut self, container: Node<'a, 'i>) -> Result<()> {
        let fields: Vec<_> = children(container, "DerivedField").collect();
        let mut ids = Vec::with_capacity(fields.len());
        for f in &fields {
            let name = req_attr(*f, "name")?;
            let dtype = data_type_attr(*f, DataType::Double);
            ids.push(self.add_slot(name, dtype, SlotKind::Written));
        }
        for (f, id) in fields.iter().zip(ids) {
            let expr = self.derived_expr(*f)?;
            self.slots[id].kind = SlotKind::Derived(expr);
        }
        Ok(())
    }

    /// The expression inside a DerivedField.
    pub fn derived_expr(&mut self, field: Node) -> Result<Expr> {
        let e = xml::elements(field)
            .find(|c| !matches!(xml::name(*c), "Extension" | "Value"))
            .ok_or_else(|| Error::InvalidModel("DerivedField without an expression".into()))?;
        self.expr(e)
    }

    /// Finds the class index of `label`, adding the label when new. Numeric labels match
    /// numerically, so that `5` and `5.0` are the same class.
    pub fn class_index(classes: &mut Vec<Arc<str>>, label: &str) -> usize {
        if let Some(i) = classes.iter().position(|c| &**c == label) {
            return i;
        }
        if let Some(n) = super::types::parse_num(label) {
            if let Some(i) = classes
                .iter()
                .position(|c| super::types::parse_num(c) == Some(n))
            {
                return i;
            }
        }
        classes.push(Arc::from(label));
        classes.len() - 1
    }

    /// Builds one model element (top-level or segment).
    pub fn model(&mut self, node: Node<'a, 'i>, parent_target: Option<&str>) -> Result<ModelPlan> {
        let function = match req_attr(node, "functionName")? {
            "regression" => Function::Regression,
            "classification" => Function::Classification,
            other => return Err(xml::unsupported(node, &format!("functionName=\"{other}\""))),
        };
        if attr(node, "isScorable") == Some("false") {
            return Err(xml::unsupported(node, "marked isScorable=\"false\""));
        }
        self.push_scope();
        let result = self.nested(|b| b.model_in_scope(node, function, parent_target));
        let outputs: Vec<(String, usize)> = match &result {
            Ok(m) => m
                .outputs
                .iter()
                .map(|o| (self.slots[o.slot].name.clone(), o.slot))
                .collect(),
            Err(_) => Vec::new(),
        };
        self.pop_scope();
        // Later segments of a chain see the outputs of earlier ones.
        for (name, slot) in outputs {
            self.register(&name, slot);
        }
        result
    }

    fn model_in_scope(
        &mut self,
        node: Node<'a, 'i>,
        function: Function,
        parent_target: Option<&str>,
    ) -> Result<ModelPlan> {
        let schema = child(node, "MiningSchema").ok_or_else(|| {
            Error::InvalidModel(format!("<{}> without MiningSchema", xml::name(node)))
        })?;
        let target = children(schema, "MiningField")
            .find(|f| matches!(attr(*f, "usageType"), Some("target") | Some("predicted")))
            .and_then(|f| attr(f, "name"))
            .or(parent_target)
            .map(str::to_string);
        if let Some(lt) = child(node, "LocalTransformations") {
            if let Some(d) = children(lt, "DefineFunction").next() {
                // The schema allows DefineFunction only in the TransformationDictionary.
                return Err(xml::unsupported(d, "inside LocalTransformations"));
            }
            self.derived_fields(lt)?;
        }
        let mut classes = match (&target, function) {
            (Some(t), Function::Classification) => self.declared_classes(t),
            _ => Vec::new(),
        };
        let float = super::float::declared(node)?;
        let targets = match child(node, "Targets") {
            Some(t) => self.targets(t)?.map(|t| TargetPlan { float, ..t }),
            None => None,
        };
        let target_ref = target.as_deref();
        let kind = match xml::name(node) {
            "TreeModel" => ModelKind::Tree(tree::build(self, node, function, &mut classes)?),
            "RegressionModel" => {
                ModelKind::Regression(regression::build(self, node, function, &mut classes)?)
            }
            "GeneralRegressionModel" => {
                ModelKind::General(general::build(self, node, function, &mut classes)?)
            }
            "NeuralNetwork" => ModelKind::Neural(neural::build(
                self,
                node,
                function,
                &mut classes,
                target_ref,
            )?),
            "MiningModel" => ModelKind::Mining(mining::build(
                self,
                node,
                function,
                &mut classes,
                target_ref,
            )?),
            "SupportVectorMachineModel" => {
                ModelKind::Svm(svm::build(self, node, function, &mut classes)?)
            }
            "NaiveBayesModel" => {
                ModelKind::Bayes(bayes::build(self, node, function, &mut classes)?)
            }
            "NearestNeighborModel" => {
                ModelKind::Knn(knn::build(self, node, function, &mut classes, target_ref)?)
            }
            other => return Err(Error::Unsupported(format!("model element <{other}>"))),
        };
        if float
            && !matches!(
                kind,
                ModelKind::Tree(_) | ModelKind::Regression(_) | ModelKind::Mining(_)
            )
        {
            return Err(super::float::unsupported(node, "this model type"));
        }
        let outputs = match child(node, "Output") {
            Some(o) => self.outputs(o, function, &mut classes)?,
            None => Vec::new(),
        };
        let plan = ModelPlan {
            function,
            classes,
            kind,
            targets,
            outputs,
        };
        knn::check_outputs(&plan, node)?;
        Ok(plan)
    }

    fn targets(&mut self, node: Node) -> Result<Option<TargetPlan>> {
        let Some(t) = children(node, "Target").next() else {
            return Ok(None);
        };
        let cast = match attr(t, "castInteger") {
            None => None,
            Some("round") => Some(CastInteger::Round),
            Some("ceiling") => Some(CastInteger::Ceiling),
            Some("floor") => Some(CastInteger::Floor),
            Some(o) => return Err(Error::InvalidModel(format!("castInteger=\"{o}\""))),
        };
        let default = match children(t, "TargetValue").find(|v| attr(*v, "defaultValue").is_some())
        {
            Some(v) => num_attr(v, "defaultValue")?,
            None => None,
        };
        Ok(Some(TargetPlan {
            min: num_attr(t, "min")?,
            max: num_attr(t, "max")?,
            factor: num_attr(t, "rescaleFactor")?.unwrap_or(1.0),
            constant: num_attr(t, "rescaleConstant")?.unwrap_or(0.0),
            cast,
            default,
            float: false,
        }))
    }

    fn outputs(
        &mut self,
        node: Node<'a, 'i>,
        function: Function,
        classes: &mut Vec<Arc<str>>,
    ) -> Result<Vec<OutputPlan>> {
        let mut out = Vec::new();
        for f in children(node, "OutputField") {
            let name = req_attr(f, "name")?;
            if attr(f, "segmentId").is_some() {
                return Err(xml::unsupported(f, "with segmentId"));
            }
            let feature = match attr(f, "feature").unwrap_or("predictedValue") {
                "predictedValue" => Feature::PredictedValue,
                "predictedDisplayValue" => Feature::PredictedDisplayValue,
                "probability" | "confidence" if function == Function::Classification => {
                    Feature::Probability(attr(f, "value").map(|v| Builder::class_index(classes, v)))
                }
                "entityId" | "affinity" => {
                    if attr(f, "value").is_some() {
                        return Err(xml::unsupported(f, "with a value (only ranks)"));
                    }
                    let rank = match num_attr(f, "rank")? {
                        None => 1,
                        Some(r) if r >= 1.0 && r.fract() == 0.0 && r <= u32::MAX as f64 => {
                            r as usize
                        }
                        Some(r) => {
                            return Err(Error::InvalidModel(format!(
                                "output `{name}` has rank=\"{r}\", not a positive integer"
                            )))
                        }
                    };
                    if attr(f, "feature") == Some("entityId") {
                        Feature::EntityId(rank)
                    } else {
                        Feature::Affinity(rank)
                    }
                }
                "transformedValue" | "decision" => {
                    let e = xml::elements(f)
                        .find(|c| !matches!(xml::name(*c), "Extension" | "Decisions" | "Value"))
                        .ok_or_else(|| {
                            Error::InvalidModel(format!("output `{name}` without expression"))
                        })?;
                    Feature::Transformed(self.expr(e)?)
                }
                other => return Err(xml::unsupported(f, &format!("feature=\"{other}\""))),
            };
            let default = if matches!(feature, Feature::Probability(_) | Feature::Affinity(_)) {
                DataType::Double
            } else if matches!(feature, Feature::EntityId(_))
                || (function == Function::Classification
                    && matches!(
                        feature,
                        Feature::PredictedValue | Feature::PredictedDisplayValue
                    ))
            {
                DataType::String
            } else {
                DataType::Double
            };
            let dtype = data_type_attr(f, default);
            let slot = self.add_slot(name, dtype, SlotKind::Written);
            out.push(OutputPlan {
                slot,
                feature,
                final_result: attr(f, "isFinalResult") != Some("false"),
            });
        }
        Ok(out)
    }

    /// The top-level MiningSchema: which record fields are read and how.
    fn inputs(&mut self, model: Node) -> Result<Vec<InputPlan>> {
        let schema = child(model, "MiningSchema")
            .ok_or_else(|| Error::InvalidModel("top-level model without MiningSchema".into()))?;
        let mut out = Vec::new();
        for mf in children(schema, "MiningField") {
            let usage = attr(mf, "usageType").unwrap_or("active");
            if !matches!(usage, "active" | "group" | "order") {
                continue;
            }
            let name = req_attr(mf, "name")?;
            let slot = self.resolve(name)?;
            let dtype = self.dtype(slot);
            let df = self.data_fields.get(name).copied();
            let (validity, missing_values) = match df {
                Some(df) => self.validity(df, dtype)?,
                None => (Validity::Any, Vec::new()),
            };
            let replacement = match attr(mf, "missingValueReplacement") {
                Some(s) => Some(dtype.constant(s, "missingValueReplacement")?),
                None => None,
            };
            let invalid = match attr(mf, "invalidValueTreatment").unwrap_or("returnInvalid") {
                "returnInvalid" => InvalidTreatment::ReturnInvalid,
                "asIs" => InvalidTreatment::AsIs,
                "asMissing" => InvalidTreatment::AsMissing,
                "asValue" => {
                    let s = req_attr(mf, "invalidValueReplacement")?;
                    InvalidTreatment::AsValue(dtype.constant(s, "invalidValueReplacement")?)
                }
                other => {
                    return Err(xml::unsupported(
                        mf,
                        &format!("invalidValueTreatment=\"{other}\""),
                    ))
                }
            };
            let low = num_attr(mf, "lowValue")?;
            let high = num_attr(mf, "highValue")?;
            let bounds = (
                low.unwrap_or(f64::NEG_INFINITY),
                high.unwrap_or(f64::INFINITY),
            );
            let outliers = match attr(mf, "outliers").unwrap_or("asIs") {
                "asIs" => Outliers::AsIs,
                "asMissingValues" => Outliers::AsMissing {
                    low: bounds.0,
                    high: bounds.1,
                },
                "asExtremeValues" => Outliers::AsExtreme {
                    low: bounds.0,
                    high: bounds.1,
                },
                other => return Err(xml::unsupported(mf, &format!("outliers=\"{other}\""))),
            };
            let plain = dtype == DataType::Double
                && matches!(validity, Validity::Any)
                && missing_values.is_empty()
                && matches!(outliers, Outliers::AsIs);
            out.push(InputPlan {
                plain,
                name: name.to_string(),
                slot,
                dtype,
                validity,
                missing_values,
                missing_replacement: replacement,
                missing_is_invalid: attr(mf, "missingValueTreatment") == Some("returnInvalid"),
                invalid,
                outliers,
            });
        }
        Ok(out)
    }

    fn validity(&self, df: Node, dtype: DataType) -> Result<(Validity, Vec<Value>)> {
        let mut valid = Vec::new();
        let mut missing = Vec::new();
        for v in children(df, "Value") {
            let raw = req_attr(v, "value")?;
            // Declared values that do not fit the type can never match; skip rather than fail.
            let Some(val) = dtype.convert(&Value::text(raw)) else {
                continue;
            };
            match attr(v, "property").unwrap_or("valid") {
                "valid" => valid.push(val),
                "missing" => missing.push(val),
                _ => {}
            }
        }
        let intervals: Vec<Interval> = children(df, "Interval")
            .map(Interval::parse)
            .collect::<Result<_>>()?;
        let categorical = matches!(attr(df, "optype"), Some("categorical") | Some("ordinal"));
        let validity = if !valid.is_empty() && (categorical || intervals.is_empty()) {
            Validity::Values(valid)
        } else if !intervals.is_empty() {
            Validity::Intervals(intervals)
        } else {
            Validity::Any
        };
        Ok((validity, missing))
    }
}

impl Plan {
    /// Compiles a parsed PMML document.
    pub fn build(doc: &roxmltree::Document) -> Result<Plan> {
        let root = doc.root_element();
        if xml::name(root) != "PMML" {
            return Err(Error::NotPmml(format!(
                "root element is <{}>",
                xml::name(root)
            )));
        }
        let dd = child(root, "DataDictionary")
            .ok_or_else(|| Error::InvalidModel("no DataDictionary".into()))?;
        let mut b = Builder {
            slots: Vec::new(),
            depth: 0,
            scopes: vec![HashMap::new()],
            data_fields: HashMap::new(),
            functions: Default::default(),
        };
        for df in children(dd, "DataField") {
            let name = req_attr(df, "name")?;
            let dtype = data_type_attr(df, DataType::Double);
            b.add_slot(name, dtype, SlotKind::Input);
            b.data_fields.insert(name.to_string(), df);
        }
        if let Some(td) = child(root, "TransformationDictionary") {
            b.define_functions(td)?;
            b.derived_fields(td)?;
        }
        let model_node = xml::elements(root)
            .find(|c| {
                !matches!(
                    xml::name(*c),
                    "Header"
                        | "MiningBuildTask"
                        | "DataDictionary"
                        | "TransformationDictionary"
                        | "Extension"
                )
            })
            .ok_or_else(|| Error::InvalidModel("no model element".into()))?;
        let inputs = b.inputs(model_node)?;
        let target_name = child(model_node, "MiningSchema")
            .and_then(|s| {
                children(s, "MiningField")
                    .find(|f| matches!(attr(*f, "usageType"), Some("target") | Some("predicted")))
            })
            .and_then(|f| attr(f, "name"))
            .unwrap_or("_target")
            .to_string();
        let model = b.model(model_node, Some(&target_name))?;
        let mut output_names = vec![target_name];
        // JPMML reports every output field of the top-level model (isFinalResult="false"
        // ones too) and the final ones of a chain's segments.
        let mut output_slots: Vec<usize> = model.outputs.iter().map(|o| o.slot).collect();
        if let ModelKind::Mining(m) = &model.kind {
            if m.method == mining::Method::ModelChain {
                for s in &m.segments {
                    collect_final_outputs(&s.model, &mut output_slots);
                }
            }
        }
        for slot in &output_slots {
            output_names.push(b.slots[*slot].name.clone());
        }
        // Slots of DataFields that are not inputs stay unset (missing) and are never
        // written, so they are as stable as the inputs.
        let input_slots: std::collections::HashSet<usize> = inputs.iter().map(|i| i.slot).collect();
        let volatile_slots = b
            .slots
            .iter()
            .enumerate()
            .filter(|(i, s)| !matches!(s.kind, SlotKind::Input) && !input_slots.contains(i))
            .map(|(i, _)| i)
            .collect();
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Plan {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            volatile_slots,
            input_names: inputs.iter().map(|i| i.name.clone()).collect(),
            inputs,
            slots: b.slots,
            model,
            output_names,
            output_slots,
        })
    }
}

/// Final-result output fields of a model; a model chain also exposes those of its
/// segments (JPMML does, and sklearn2pmml puts class probabilities on the last segment).
fn collect_final_outputs(model: &ModelPlan, out: &mut Vec<usize>) {
    out.extend(
        model
            .outputs
            .iter()
            .filter(|o| o.final_result)
            .map(|o| o.slot),
    );
    if let ModelKind::Mining(m) = &model.kind {
        if m.method == mining::Method::ModelChain {
            for s in &m.segments {
                collect_final_outputs(&s.model, out);
            }
        }
    }
}
