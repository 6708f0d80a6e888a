//! PMML features beyond the seed models, each on a hand-written document whose expected
//! result is derived by hand from the PMML specification.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_models::{Error, Model, ModelType, Prediction, Record, Value};

fn model(xml: &str) -> Model {
    match Model::from_bytes(ModelType::Pmml, xml.as_bytes()) {
        Ok(m) => m,
        Err(e) => panic!("model does not load: {e}"),
    }
}

fn doc(fields: &str, body: &str) -> String {
    format!(
        r#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><DataDictionary>{fields}</DataDictionary>{body}</PMML>"#
    )
}

fn num(p: &Prediction, name: &str) -> f64 {
    p.get(name).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn assert_close(a: f64, e: f64) {
    assert!((a - e).abs() <= 1e-12 * e.abs().max(1.0), "{a} != {e}");
}

const XC: &str = r#"<DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="c" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>"#;

#[test]
fn transformations_targets_and_mining_schema() {
    let m = model(&doc(
        &format!(r#"{XC}<DataField name="y" optype="continuous" dataType="double"/>"#),
        r#"<TransformationDictionary>
          <DerivedField name="d1" optype="continuous" dataType="double">
            <Discretize field="x" dataType="double">
              <DiscretizeBin binValue="1"><Interval closure="openClosed" rightMargin="0"/></DiscretizeBin>
              <DiscretizeBin binValue="2"><Interval closure="openOpen" leftMargin="0"/></DiscretizeBin>
            </Discretize></DerivedField>
          <DerivedField name="m1" optype="continuous" dataType="double">
            <MapValues outputColumn="out" dataType="double">
              <FieldColumnPair field="c" column="in"/>
              <InlineTable><row><in>a</in><out>10</out></row><row><in>b</in><out>20</out></row></InlineTable>
            </MapValues></DerivedField>
          <DerivedField name="n1" optype="continuous" dataType="double">
            <NormContinuous field="x"><LinearNorm orig="0" norm="0"/><LinearNorm orig="10" norm="1"/></NormContinuous>
          </DerivedField>
        </TransformationDictionary>
        <RegressionModel functionName="regression">
          <MiningSchema><MiningField name="y" usageType="target"/>
            <MiningField name="x" missingValueReplacement="4"/><MiningField name="c"/></MiningSchema>
          <Targets><Target field="y" rescaleFactor="2" rescaleConstant="1"/></Targets>
          <RegressionTable intercept="1">
            <NumericPredictor name="d1" coefficient="1"/>
            <NumericPredictor name="m1" coefficient="1"/>
            <NumericPredictor name="n1" coefficient="1"/>
            <NumericPredictor name="x" exponent="2" coefficient="0.5"/>
          </RegressionTable>
        </RegressionModel>"#,
    ));
    // x=5, c=b: 1 + 2 + 20 + 0.5 + 12.5 = 36, rescaled 36*2+1.
    let p = m
        .score(&Record::new().with("x", 5.0).with("c", "b"))
        .expect("score");
    assert_close(num(&p, "y"), 73.0);
    // x=-10, c=a: 1 + 1 + 10 + (-1, extrapolated) + 50 = 61 -> 123.
    let p = m
        .score(&Record::new().with("x", -10.0).with("c", "a"))
        .expect("score");
    assert_close(num(&p, "y"), 123.0);
    // x missing -> replaced by 4: 1 + 2 + 10 + 0.4 + 8 = 21.4 -> 43.8.
    let p = m.score(&Record::new().with("c", "a")).expect("score");
    assert_close(num(&p, "y"), 43.8);
    // c outside its declared values: returnInvalid is the default treatment.
    let err = m
        .score(&Record::new().with("x", 1.0).with("c", "z"))
        .expect_err("invalid");
    assert!(
        matches!(err, Error::InvalidValue { ref field, .. } if field == "c"),
        "{err}"
    );
}

#[test]
fn apply_if_is_missing_and_invalid_as_missing() {
    let m = model(&doc(
        &format!(r#"{XC}<DataField name="y" optype="continuous" dataType="double"/>"#),
        r#"<TransformationDictionary>
          <DerivedField name="i1" optype="continuous" dataType="double">
            <Apply function="if">
              <Apply function="isMissing"><FieldRef field="x"/></Apply>
              <Constant>-1</Constant>
              <Apply function="*"><FieldRef field="x"/><Constant>2</Constant></Apply>
            </Apply></DerivedField>
        </TransformationDictionary>
        <RegressionModel functionName="regression">
          <MiningSchema><MiningField name="y" usageType="target"/>
            <MiningField name="x"/><MiningField name="c" invalidValueTreatment="asMissing"/></MiningSchema>
          <RegressionTable intercept="0"><NumericPredictor name="i1" coefficient="1"/>
            <CategoricalPredictor name="c" value="a" coefficient="100"/></RegressionTable>
        </RegressionModel>"#,
    ));
    let p = m
        .score(&Record::new().with("x", 3.0).with("c", "a"))
        .expect("score");
    assert_close(num(&p, "y"), 106.0);
    let p = m.score(&Record::new().with("c", "b")).expect("score");
    assert_close(num(&p, "y"), -1.0);
    // Invalid c becomes missing, and a missing categorical predictor makes y missing.
    let p = m
        .score(&Record::new().with("x", 3.0).with("c", "zzz"))
        .expect("score");
    assert!(p.value().is_missing());
}

const TREE_FIELDS: &str = r#"<DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="c" optype="categorical" dataType="string"/>
    <DataField name="y" optype="categorical" dataType="string"><Value value="no"/><Value value="yes"/></DataField>"#;

#[test]
fn tree_compound_set_predicates_and_strategies() {
    let m = model(&doc(
        TREE_FIELDS,
        r#"<TreeModel functionName="classification" missingValueStrategy="lastPrediction" noTrueChildStrategy="returnLastPrediction">
          <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/><MiningField name="c"/></MiningSchema>
          <Output>
            <OutputField name="pred" feature="predictedValue" dataType="string"/>
            <OutputField name="conf" feature="probability" dataType="double"/>
            <OutputField name="pct" feature="transformedValue" dataType="double">
              <Apply function="*"><FieldRef field="conf"/><Constant>100</Constant></Apply></OutputField>
          </Output>
          <Node score="no"><True/>
            <ScoreDistribution value="no" recordCount="6"/><ScoreDistribution value="yes" recordCount="4"/>
            <Node score="yes">
              <CompoundPredicate booleanOperator="and">
                <SimplePredicate field="x" operator="greaterThan" value="5"/>
                <SimpleSetPredicate field="c" booleanOperator="isIn"><Array type="string">a "b c"</Array></SimpleSetPredicate>
              </CompoundPredicate>
              <ScoreDistribution value="no" probability="0.1"/><ScoreDistribution value="yes" probability="0.9"/>
            </Node>
            <Node score="no"><SimplePredicate field="x" operator="lessOrEqual" value="0"/>
              <ScoreDistribution value="no" recordCount="8"/><ScoreDistribution value="yes" recordCount="2"/>
            </Node>
          </Node>
        </TreeModel>"#,
    ));
    assert_eq!(m.output_fields(), ["y", "pred", "conf", "pct"]);
    let p = m
        .score(&Record::new().with("x", 7.0).with("c", "b c"))
        .expect("score");
    assert_eq!(p.to_string(), "yes");
    assert_eq!(p.get("pred"), Some(&Value::text("yes")));
    assert_close(num(&p, "conf"), 0.9);
    assert_close(num(&p, "pct"), 90.0);
    let p = m
        .score(&Record::new().with("x", -1.0).with("c", "z"))
        .expect("score");
    assert_eq!(p.to_string(), "no");
    assert_close(num(&p, "conf"), 0.8);
    // No child is true: returnLastPrediction gives the root.
    let p = m
        .score(&Record::new().with("x", 3.0).with("c", "a"))
        .expect("score");
    assert_eq!(p.to_string(), "no");
    assert_close(num(&p, "conf"), 0.6);
    // x missing: the AND is UNKNOWN, lastPrediction stops at the root.
    let p = m.score(&Record::new().with("c", "a")).expect("score");
    assert_close(num(&p, "conf"), 0.6);
}

fn reg_segment(id: u32, weight: f64, predicate: &str, intercept: f64, coef: f64) -> String {
    format!(
        r#"<Segment id="{id}" weight="{weight}">{predicate}<RegressionModel functionName="regression">
          <MiningSchema><MiningField name="x"/></MiningSchema>
          <RegressionTable intercept="{intercept}"><NumericPredictor name="x" coefficient="{coef}"/></RegressionTable>
        </RegressionModel></Segment>"#
    )
}

fn mining(method: &str, segments: &str) -> Model {
    model(&doc(
        r#"<DataField name="x" optype="continuous" dataType="double"/><DataField name="y" optype="continuous" dataType="double"/>"#,
        &format!(
            r#"<MiningModel functionName="regression"><MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/></MiningSchema>
            <Segmentation multipleModelMethod="{method}">{segments}</Segmentation></MiningModel>"#
        ),
    ))
}

#[test]
fn segmentation_methods() {
    let x4 = Record::new().with("x", 4.0);
    let t = "<True/>";
    // weightedAverage: (4*1 + 8*3) / 4 = 7.
    let m = mining(
        "weightedAverage",
        &(reg_segment(1, 1.0, t, 0.0, 1.0) + &reg_segment(2, 3.0, t, 0.0, 2.0)),
    );
    assert_close(
        m.score(&x4).expect("score").as_f64().unwrap_or(f64::NAN),
        7.0,
    );
    // median of 4, 8, 10 = 8.
    let three = reg_segment(1, 1.0, t, 0.0, 1.0)
        + &reg_segment(2, 1.0, t, 0.0, 2.0)
        + &reg_segment(3, 1.0, t, 10.0, 0.0);
    assert_close(
        mining("median", &three)
            .score(&x4)
            .expect("score")
            .as_f64()
            .unwrap_or(f64::NAN),
        8.0,
    );
    assert_close(
        mining("sum", &three)
            .score(&x4)
            .expect("score")
            .as_f64()
            .unwrap_or(f64::NAN),
        22.0,
    );
    // selectFirst: the first segment whose predicate is true.
    let gt5 = r#"<SimplePredicate field="x" operator="greaterThan" value="5"/>"#;
    let m = mining(
        "selectFirst",
        &(reg_segment(1, 1.0, gt5, 100.0, 0.0) + &reg_segment(2, 1.0, t, 0.0, 1.0)),
    );
    assert_close(
        m.score(&x4).expect("score").as_f64().unwrap_or(f64::NAN),
        4.0,
    );
    assert_close(
        m.score(&Record::new().with("x", 6.0))
            .expect("score")
            .as_f64()
            .unwrap_or(f64::NAN),
        100.0,
    );
}

#[test]
fn model_chain_passes_outputs_on() {
    let m = mining(
        "modelChain",
        r#"<Segment id="1"><True/><RegressionModel functionName="regression">
            <MiningSchema><MiningField name="x"/></MiningSchema>
            <Output><OutputField name="s1" feature="predictedValue" dataType="double" isFinalResult="false"/></Output>
            <RegressionTable intercept="0"><NumericPredictor name="x" coefficient="2"/></RegressionTable>
          </RegressionModel></Segment>
          <Segment id="2"><True/><RegressionModel functionName="regression">
            <MiningSchema><MiningField name="s1"/></MiningSchema>
            <RegressionTable intercept="1"><NumericPredictor name="s1" coefficient="1"/></RegressionTable>
          </RegressionModel></Segment>"#,
    );
    // s1 = 2*3 = 6, y = 6 + 1.
    assert_close(
        m.score(&Record::new().with("x", 3.0))
            .expect("score")
            .as_f64()
            .unwrap_or(f64::NAN),
        7.0,
    );
    assert_eq!(m.output_fields(), ["y"]);
}

#[test]
fn majority_vote() {
    let leaf = |label: &str| {
        format!(
            r#"<Segment><True/><TreeModel functionName="classification"><MiningSchema><MiningField name="x"/></MiningSchema>
            <Node score="{label}"><True/></Node></TreeModel></Segment>"#
        )
    };
    let m = model(&doc(
        r#"<DataField name="x" optype="continuous" dataType="double"/>
        <DataField name="y" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>"#,
        &format!(
            r#"<MiningModel functionName="classification"><MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/></MiningSchema>
            <Output><OutputField name="probability(a)" feature="probability" value="a"/></Output>
            <Segmentation multipleModelMethod="majorityVote">{}{}{}</Segmentation></MiningModel>"#,
            leaf("a"),
            leaf("b"),
            leaf("a")
        ),
    ));
    let p = m.score(&Record::new().with("x", 0.0)).expect("score");
    assert_eq!(p.to_string(), "a");
    assert_close(num(&p, "probability(a)"), 2.0 / 3.0);
}

fn regression_classifier(norm: &str, tables: &str) -> Model {
    model(&doc(
        r#"<DataField name="x" optype="continuous" dataType="double"/>
        <DataField name="y" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/><Value value="c"/></DataField>"#,
        &format!(
            r#"<RegressionModel functionName="classification" normalizationMethod="{norm}">
            <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/></MiningSchema>
            <Output><OutputField name="pa" feature="probability" value="a"/><OutputField name="pb" feature="probability" value="b"/>
              <OutputField name="pc" feature="probability" value="c"/></Output>
            {tables}</RegressionModel>"#
        ),
    ))
}

#[test]
fn regression_classification_normalizations() {
    let m = regression_classifier(
        "softmax",
        r#"<RegressionTable targetCategory="a" intercept="1"/>
           <RegressionTable targetCategory="b" intercept="0"><NumericPredictor name="x" coefficient="1"/></RegressionTable>
           <RegressionTable targetCategory="c" intercept="0"/>"#,
    );
    let p = m.score(&Record::new().with("x", 1.0)).expect("score");
    let e = std::f64::consts::E;
    assert_close(num(&p, "pa"), e / (2.0 * e + 1.0));
    assert_close(num(&p, "pc"), 1.0 / (2.0 * e + 1.0));
    assert_eq!(p.to_string(), "a", "ties go to the first class");

    let m = regression_classifier(
        "logit",
        r#"<RegressionTable targetCategory="b" intercept="0"><NumericPredictor name="x" coefficient="1"/></RegressionTable>
           <RegressionTable targetCategory="a" intercept="0"/>"#,
    );
    let p = m.score(&Record::new().with("x", 2.0)).expect("score");
    let pb = 1.0 / (1.0 + (-2.0f64).exp());
    assert_close(num(&p, "pb"), pb);
    assert_close(num(&p, "pa"), 1.0 - pb);
    assert_eq!(p.to_string(), "b");
}

#[test]
fn general_regression_power_link_factors_and_exponents() {
    let m = model(&doc(
        &format!(r#"{XC}<DataField name="y" optype="continuous" dataType="double"/>"#),
        r#"<GeneralRegressionModel modelType="generalizedLinear" functionName="regression" linkFunction="power" linkParameter="0.5">
          <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/><MiningField name="c"/></MiningSchema>
          <ParameterList><Parameter name="p0"/><Parameter name="p1"/><Parameter name="p2"/></ParameterList>
          <FactorList><Predictor name="c"/></FactorList>
          <CovariateList><Predictor name="x"/></CovariateList>
          <PPMatrix><PPCell value="2" predictorName="x" parameterName="p1"/><PPCell value="a" predictorName="c" parameterName="p2"/></PPMatrix>
          <ParamMatrix><PCell parameterName="p0" beta="1"/><PCell parameterName="p1" beta="0.5"/><PCell parameterName="p2" beta="3"/></ParamMatrix>
        </GeneralRegressionModel>"#,
    ));
    // eta = 1 + 0.5 * 2^2 + 3 = 6; power link with 0.5: mu = eta^(1/0.5) = 36.
    let p = m
        .score(&Record::new().with("x", 2.0).with("c", "a"))
        .expect("score");
    assert_close(p.as_f64().unwrap_or(f64::NAN), 36.0);
    // c = b: eta = 3, mu = 9.
    let p = m
        .score(&Record::new().with("x", 2.0).with("c", "b"))
        .expect("score");
    assert_close(p.as_f64().unwrap_or(f64::NAN), 9.0);
}

#[test]
fn neural_network_regression_with_normalized_io() {
    let m = model(&doc(
        r#"<DataField name="x" optype="continuous" dataType="double"/><DataField name="y" optype="continuous" dataType="double"/>"#,
        r#"<NeuralNetwork functionName="regression" activationFunction="tanh">
          <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/></MiningSchema>
          <NeuralInputs><NeuralInput id="0"><DerivedField optype="continuous" dataType="double">
            <NormContinuous field="x"><LinearNorm orig="0" norm="0"/><LinearNorm orig="10" norm="1"/></NormContinuous>
          </DerivedField></NeuralInput></NeuralInputs>
          <NeuralLayer><Neuron id="1" bias="0.5"><Con from="0" weight="2"/></Neuron></NeuralLayer>
          <NeuralLayer activationFunction="identity"><Neuron id="2" bias="1"><Con from="1" weight="3"/></Neuron></NeuralLayer>
          <NeuralOutputs><NeuralOutput outputNeuron="2"><DerivedField optype="continuous" dataType="double">
            <NormContinuous field="y"><LinearNorm orig="0" norm="0"/><LinearNorm orig="100" norm="1"/></NormContinuous>
          </DerivedField></NeuralOutput></NeuralOutputs>
        </NeuralNetwork>"#,
    ));
    // input 0.5; hidden tanh(0.5*2 + 0.5); output 1 + 3*hidden; denormalized * 100.
    let expected = 100.0 * (1.0 + 3.0 * 1.5f64.tanh());
    let p = m.score(&Record::new().with("x", 5.0)).expect("score");
    assert_close(p.as_f64().unwrap_or(f64::NAN), expected);
}

#[test]
fn neural_network_softmax_classification() {
    let m = model(&doc(
        r#"<DataField name="x" optype="continuous" dataType="double"/>
        <DataField name="y" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>"#,
        r#"<NeuralNetwork functionName="classification" activationFunction="rectifier">
          <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/></MiningSchema>
          <Output><OutputField name="probability(b)" feature="probability" value="b"/></Output>
          <NeuralInputs><NeuralInput id="0"><DerivedField optype="continuous" dataType="double"><FieldRef field="x"/></DerivedField></NeuralInput></NeuralInputs>
          <NeuralLayer><Neuron id="h" bias="-1"><Con from="0" weight="1"/></Neuron></NeuralLayer>
          <NeuralLayer activationFunction="identity" normalizationMethod="softmax">
            <Neuron id="a" bias="1"/><Neuron id="b" bias="0"><Con from="h" weight="1"/></Neuron></NeuralLayer>
          <NeuralOutputs>
            <NeuralOutput outputNeuron="a"><DerivedField optype="categorical" dataType="string"><NormDiscrete field="y" value="a"/></DerivedField></NeuralOutput>
            <NeuralOutput outputNeuron="b"><DerivedField optype="categorical" dataType="string"><NormDiscrete field="y" value="b"/></DerivedField></NeuralOutput>
          </NeuralOutputs>
        </NeuralNetwork>"#,
    ));
    // x=3: h = max(0, 2) = 2; scores a=1, b=2; softmax p(b) = e^2 / (e + e^2).
    let p = m.score(&Record::new().with("x", 3.0)).expect("score");
    let e = std::f64::consts::E;
    assert_close(num(&p, "probability(b)"), e * e / (e + e * e));
    assert_eq!(p.to_string(), "b");
    // x=0: h = 0 (rectified); a=1, b=0: a wins.
    let p = m.score(&Record::new().with("x", 0.0)).expect("score");
    assert_eq!(p.to_string(), "a");
}

#[test]
fn fast_path_matches_record_path() {
    let m = mining(
        "average",
        &(reg_segment(1, 1.0, "<True/>", 1.0, 1.0) + &reg_segment(2, 1.0, "<True/>", 0.0, 3.0)),
    );
    let a = m.score(&Record::new().with("x", 2.0)).expect("record");
    let b = m.score_row(&[2.0]).expect("row");
    assert_eq!(a, b);
    // (1 + 2) and 3 * 2, averaged.
    assert_close(b.as_f64().unwrap_or(f64::NAN), 4.5);
    assert!(matches!(m.score_row(&[1.0, 2.0]), Err(Error::Input(_))));
}
