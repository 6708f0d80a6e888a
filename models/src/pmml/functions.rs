//! User-defined functions: `DefineFunction` in the TransformationDictionary, called by
//! `Apply function="<name>"` like a built-in.
//!
//! ```xml
//! <DefineFunction name="add_eps" optype="continuous" dataType="double">
//!   <ParameterField name="x"/>
//!   <Apply function="+"><FieldRef field="x"/><Constant>1e-8</Constant></Apply>
//! </DefineFunction>
//! ...
//! <Apply function="add_eps"><FieldRef field="fixed acidity"/></Apply>
//! ```
//!
//! Each parameter gets a slot of its own; the body is compiled against a scope that holds
//! only the parameters (a body cannot see the record's fields, as in JPMML). A call
//! evaluates the arguments, stores them in the parameter slots (restoring the previous
//! values afterwards, so that `f(f(x))` works), and evaluates the body.
//!
//! A function may call only built-ins and functions defined before it in the document:
//! that rules out recursion by construction, so a call chain is at most as deep as the
//! list of functions (and bounded by the evaluator's nesting limit besides).

use std::collections::HashMap;
use std::sync::Arc;

use roxmltree::Node;

use super::eval::Ctx;
use super::expr::Expr;
use super::plan::{Builder, SlotKind};
use super::types::{data_type_attr, DataType};
use super::xml::{self, children, req_attr};
use crate::error::{Error, Result};
use crate::record::Value;

/// A compiled `DefineFunction`.
#[derive(Debug)]
pub struct UserFunction {
    pub name: String,
    /// Parameter slots with their declared types and names, in call order.
    params: Vec<(usize, DataType, String)>,
    /// The function's result type.
    dtype: DataType,
    body: Expr,
}

/// A call of a user-defined function.
#[derive(Debug)]
pub struct Call {
    func: Arc<UserFunction>,
    args: Vec<Expr>,
    map_missing: Option<Value>,
    default: Option<Value>,
}

/// The user-defined functions of a document, by name.
pub type Registry = HashMap<String, Arc<UserFunction>>;

impl<'a, 'i> Builder<'a, 'i> {
    /// Compiles the `DefineFunction`s under `container` in document order.
    pub fn define_functions(&mut self, container: Node<'a, 'i>) -> Result<()> {
        for d in children(container, "DefineFunction") {
            let name = req_attr(d, "name")?;
            if self.functions.contains_key(name) {
                return Err(Error::InvalidModel(format!(
                    "DefineFunction `{name}` is defined twice"
                )));
            }
            let mut params = Vec::new();
            let mut scope = HashMap::new();
            for p in children(d, "ParameterField") {
                let pname = req_attr(p, "name")?;
                let dtype = data_type_attr(p, DataType::Double);
                let slot = self.add_unscoped_slot(&format!("{name}/{pname}"), dtype);
                if scope.insert(pname.to_string(), slot).is_some() {
                    return Err(Error::InvalidModel(format!(
                        "DefineFunction `{name}` has two parameters named `{pname}`"
                    )));
                }
                params.push((slot, dtype, pname.to_string()));
            }
            let body_node = xml::elements(d)
                .find(|c| !matches!(xml::name(*c), "Extension" | "ParameterField"))
                .ok_or_else(|| {
                    Error::InvalidModel(format!("DefineFunction `{name}` without an expression"))
                })?;
            let body = self
                .with_only_scope(scope, |b| b.expr(body_node))
                .map_err(|e| match e {
                    Error::UnknownField(f) => Error::InvalidModel(format!(
                        "DefineFunction `{name}` refers to `{f}`, which is not one of its parameters"
                    )),
                    other => other,
                })?;
            let func = UserFunction {
                name: name.to_string(),
                params,
                dtype: data_type_attr(d, DataType::Double),
                body,
            };
            self.functions.insert(name.to_string(), Arc::new(func));
        }
        Ok(())
    }

    /// An `Apply` of a user-defined function, or `None` when `name` is not one.
    pub fn user_call(
        &mut self,
        name: &str,
        args: Vec<Expr>,
        map_missing: Option<Value>,
        default: Option<Value>,
    ) -> Result<Option<Call>> {
        let Some(func) = self.functions.get(name).cloned() else {
            return Ok(None);
        };
        if args.len() != func.params.len() {
            return Err(Error::InvalidModel(format!(
                "function `{name}` takes {} arguments, called with {}",
                func.params.len(),
                args.len()
            )));
        }
        Ok(Some(Call {
            func,
            args,
            map_missing,
            default,
        }))
    }

    fn add_unscoped_slot(&mut self, name: &str, dtype: DataType) -> usize {
        let id = self.slots.len();
        self.slots.push(super::plan::SlotDef {
            name: name.to_string(),
            dtype,
            kind: SlotKind::Written,
        });
        id
    }
}

impl Call {
    pub fn eval(&self, ctx: &mut Ctx) -> Result<Value> {
        let mut vals = Vec::with_capacity(self.args.len());
        for a in &self.args {
            vals.push(a.eval(ctx)?);
        }
        if vals.iter().any(Value::is_missing) {
            if let Some(m) = &self.map_missing {
                return Ok(m.clone());
            }
        }
        let mut saved = Vec::with_capacity(vals.len());
        for ((slot, dtype, pname), v) in self.func.params.iter().zip(vals) {
            let (slot, dtype) = (*slot, *dtype);
            let v = dtype.convert(&v).ok_or_else(|| Error::InvalidValue {
                field: format!("{pname} (parameter of `{}`)", self.func.name),
                value: v.to_string(),
            })?;
            saved.push((slot, ctx.value(slot)?));
            ctx.set(slot, v);
        }
        let r = self.func.body.eval(ctx);
        for (slot, v) in saved {
            ctx.set(slot, v);
        }
        let r = r?;
        let r = self.func.dtype.convert(&r).unwrap_or(r);
        Ok(match (&r, &self.default) {
            (Value::Missing, Some(d)) => d.clone(),
            _ => r,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::PmmlModel;
    use crate::error::Error;
    use crate::record::Record;

    fn doc(functions: &str, derived: &str) -> String {
        format!(
            r#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <TransformationDictionary>{functions}{derived}</TransformationDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <RegressionTable intercept="0"><NumericPredictor name="d" coefficient="1"/></RegressionTable>
  </RegressionModel>
</PMML>"#
        )
    }

    const AFFINE: &str = r#"<DefineFunction name="affine" dataType="double">
      <ParameterField name="v"/><ParameterField name="k"/>
      <Apply function="+"><Apply function="*"><FieldRef field="v"/><FieldRef field="k"/></Apply>
        <Constant>1</Constant></Apply></DefineFunction>"#;

    #[test]
    fn nested_calls_and_later_functions() {
        let twice = r#"<DefineFunction name="twice" dataType="double"><ParameterField name="v"/>
          <Apply function="affine"><Apply function="affine"><FieldRef field="v"/><Constant>2</Constant></Apply>
          <Constant>3</Constant></Apply></DefineFunction>"#;
        let derived = r#"<DerivedField name="d" optype="continuous" dataType="double">
          <Apply function="twice"><FieldRef field="x"/></Apply></DerivedField>"#;
        let m = PmmlModel::from_bytes(doc(&format!("{AFFINE}{twice}"), derived).as_bytes())
            .expect("loads");
        // twice(5) = (5*2+1)*3+1 = 34
        let p = m.score(&Record::new().with("x", 5.0)).expect("scores");
        assert_eq!(p.as_f64(), Some(34.0));
        // A missing argument propagates through the arithmetic.
        let p = m.score(&Record::new()).expect("scores");
        assert_eq!(p.as_f64(), None);
    }

    #[test]
    fn bad_functions_name_the_problem() {
        let derived = r#"<DerivedField name="d" optype="continuous" dataType="double">
          <Apply function="affine"><FieldRef field="x"/></Apply></DerivedField>"#;
        let err = PmmlModel::from_bytes(doc(AFFINE, derived).as_bytes()).expect_err("arity");
        assert!(
            matches!(err, Error::InvalidModel(ref m) if m.contains("affine") && m.contains("2 arguments")),
            "{err}"
        );
        let leaky = r#"<DefineFunction name="leak"><ParameterField name="v"/>
          <FieldRef field="x"/></DefineFunction>"#;
        let err = PmmlModel::from_bytes(doc(leaky, "").as_bytes()).expect_err("scope");
        assert!(
            matches!(err, Error::InvalidModel(ref m) if m.contains("leak") && m.contains("`x`")),
            "{err}"
        );
        let recursive = r#"<DefineFunction name="r"><ParameterField name="v"/>
          <Apply function="r"><FieldRef field="v"/></Apply></DefineFunction>"#;
        let err = PmmlModel::from_bytes(doc(recursive, "").as_bytes()).expect_err("recursion");
        assert!(
            matches!(err, Error::Unsupported(ref m) if m.contains("`r`")),
            "{err}"
        );
        let twice = format!("{AFFINE}{AFFINE}");
        let err = PmmlModel::from_bytes(doc(&twice, "").as_bytes()).expect_err("duplicate");
        assert!(err.to_string().contains("defined twice"), "{err}");
        let empty = r#"<DefineFunction name="e"><ParameterField name="v"/></DefineFunction>"#;
        let err = PmmlModel::from_bytes(doc(empty, "").as_bytes()).expect_err("no body");
        assert!(err.to_string().contains("without an expression"), "{err}");
    }
}
