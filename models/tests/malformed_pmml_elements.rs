//! Malformed NearestNeighborModel, DefineFunction and mathContext="float" documents give
//! a typed error naming what failed, never a panic; every attribute of these elements is
//! also replaced by odd values (numbers, NaN, names, nothing) and the result loaded and
//! scored.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_models::{Error, Model, ModelType, Record};

fn load(doc: &str) -> Result<Model, Error> {
    Model::from_bytes(ModelType::Pmml, doc.as_bytes())
}

const KNN: &str = r#"<PMML xmlns="http://www.dmg.org/PMML-4_4" xmlns:data="http://jpmml.org/jpmml-model/InlineTable" version="4.4">
  <DataDictionary>
    <DataField name="y" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>
    <DataField name="x1" optype="continuous" dataType="double"/>
    <DataField name="x2" optype="continuous" dataType="double"/>
  </DataDictionary>
  <NearestNeighborModel functionName="classification" numberOfNeighbors="3" categoricalScoringMethod="majorityVote">
    <MiningSchema>
      <MiningField name="y" usageType="target"/>
      <MiningField name="x1"/>
      <MiningField name="x2"/>
    </MiningSchema>
    <Output>
      <OutputField name="n1" optype="categorical" dataType="string" feature="entityId"/>
      <OutputField name="n2" optype="categorical" dataType="string" feature="entityId" rank="2"/>
      <OutputField name="d1" optype="continuous" dataType="double" feature="affinity"/>
    </Output>
    <TrainingInstances isTransformed="true">
      <InstanceFields>
        <InstanceField field="y" column="data:y"/>
        <InstanceField field="x1" column="data:x1"/>
        <InstanceField field="x2" column="data:x2"/>
      </InstanceFields>
      <InlineTable>
        <row><data:y>a</data:y><data:x1>0</data:x1><data:x2>0</data:x2></row>
        <row><data:y>a</data:y><data:x1>1</data:x1><data:x2>0</data:x2></row>
        <row><data:y>b</data:y><data:x1>5</data:x1><data:x2>5</data:x2></row>
        <row><data:y>b</data:y><data:x1>6</data:x1><data:x2>5</data:x2></row>
        <row><data:y>b</data:y><data:x1>5</data:x1><data:x2>6</data:x2></row>
      </InlineTable>
    </TrainingInstances>
    <ComparisonMeasure kind="distance"><euclidean/></ComparisonMeasure>
    <KNNInputs>
      <KNNInput field="x1"/>
      <KNNInput field="x2" fieldWeight="1"/>
    </KNNInputs>
  </NearestNeighborModel>
</PMML>"#;

const FLOAT_FN: &str = r#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="float"/>
    <DataField name="y" optype="continuous" dataType="float"/>
  </DataDictionary>
  <TransformationDictionary>
    <DefineFunction name="shift" optype="continuous" dataType="double">
      <ParameterField name="v" dataType="double"/>
      <Apply function="+"><FieldRef field="v"/><Constant dataType="double">0.5</Constant></Apply>
    </DefineFunction>
    <DerivedField name="s" optype="continuous" dataType="double">
      <Apply function="shift"><FieldRef field="x"/></Apply>
    </DerivedField>
  </TransformationDictionary>
  <MiningModel functionName="regression" x-mathContext="float">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <Targets><Target rescaleConstant="0.1" rescaleFactor="3"/></Targets>
    <Segmentation multipleModelMethod="sum">
      <Segment id="1"><True/>
        <TreeModel functionName="regression" x-mathContext="float">
          <MiningSchema><MiningField name="s"/></MiningSchema>
          <Node><True/>
            <Node score="0.3"><SimplePredicate field="s" operator="lessThan" value="1.7"/></Node>
            <Node score="-0.7"><True/></Node>
          </Node>
        </TreeModel>
      </Segment>
      <Segment id="2"><True/>
        <RegressionModel functionName="regression" mathContext="float">
          <MiningSchema><MiningField name="s"/></MiningSchema>
          <RegressionTable intercept="0.2"><NumericPredictor name="s" coefficient="0.1"/></RegressionTable>
        </RegressionModel>
      </Segment>
    </Segmentation>
  </MiningModel>
</PMML>"#;

fn knn_record(x1: f64, x2: f64) -> Record {
    Record::new().with("x1", x1).with("x2", x2)
}

#[test]
fn the_sample_documents_score() {
    let m = load(KNN).unwrap();
    let p = m.score(&knn_record(0.4, 0.2)).unwrap();
    assert_eq!(p.get("y").unwrap().to_string(), "a");
    // Nearest: row 1 (0,0), then row 2 (1,0).
    assert_eq!(p.get("n1").unwrap().to_string(), "1");
    assert_eq!(p.get("n2").unwrap().to_string(), "2");
    let d1 = p.get("d1").unwrap().as_f64().unwrap();
    assert!((d1 - (0.4f64 * 0.4 + 0.2 * 0.2).sqrt()).abs() < 1e-15);
    // One input missing: the distance of the other, scaled by 2 inputs / 1 present.
    let p = m.score(&Record::new().with("x1", 5.5)).unwrap();
    assert_eq!(p.get("y").unwrap().to_string(), "b");
    assert!(matches!(
        m.score(&Record::new()),
        Err(Error::Evaluation(ref e)) if e.contains("missing")
    ));

    let m = load(FLOAT_FN).unwrap();
    for x in [0.7f64, 1.9, 1.2, 1.2000000001] {
        // The derived field is double (the predicate compares in double), the models
        // read it as float.
        let sd = x as f32 as f64 + 0.5;
        let tree = if sd < 1.7 { 0.3f32 } else { -0.7f32 };
        let s = sd as f32;
        let reg = 0.1f32 * s + 0.2f32;
        let expected = (0.0f32 + tree + reg) * 3.0f32 + 0.1f32;
        let p = m.score(&Record::new().with("x", x)).unwrap();
        assert_eq!(p.as_f64(), Some(f64::from(expected)), "x = {x}");
    }
}

#[test]
fn broken_elements_name_what_failed() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            KNN,
            r#"numberOfNeighbors="3""#,
            r#"numberOfNeighbors="9""#,
            "only 5 training instances",
        ),
        (
            KNN,
            r#"numberOfNeighbors="3""#,
            r#"numberOfNeighbors="0""#,
            "numberOfNeighbors",
        ),
        (KNN, r#"numberOfNeighbors="3""#, "", "numberOfNeighbors"),
        (KNN, "<euclidean/>", "<jaccard/>", "jaccard"),
        (
            KNN,
            r#"kind="distance""#,
            r#"kind="similarity""#,
            "similarity",
        ),
        (
            KNN,
            "<data:x1>5</data:x1><data:x2>6</data:x2>",
            "<data:x2>6</data:x2>",
            "training instance 5",
        ),
        (KNN, "<data:x1>6</data:x1>", "<data:x1>six</data:x1>", "six"),
        (
            KNN,
            r#"<KNNInput field="x1"/>"#,
            r#"<KNNInput field="x9"/>"#,
            "x9",
        ),
        (KNN, r#"rank="2""#, r#"rank="-2""#, "rank"),
        (
            KNN,
            r#"<InstanceField field="x1" column="data:x1"/>"#,
            "",
            "x1",
        ),
        (
            KNN,
            r#"categoricalScoringMethod="majorityVote""#,
            r#"categoricalScoringMethod="median""#,
            "median",
        ),
        (
            FLOAT_FN,
            r#"x-mathContext="float">
    <MiningSchema>"#,
            r#"x-mathContext="half">
    <MiningSchema>"#,
            "half",
        ),
        (
            FLOAT_FN,
            r#"multipleModelMethod="sum""#,
            r#"multipleModelMethod="median""#,
            "float",
        ),
        (
            FLOAT_FN,
            r#"<Apply function="shift">"#,
            r#"<Apply function="shift2">"#,
            "shift2",
        ),
        (
            FLOAT_FN,
            r#"<FieldRef field="v"/>"#,
            r#"<FieldRef field="x"/>"#,
            "not one of its parameters",
        ),
        (
            FLOAT_FN,
            r#"<ParameterField name="v" dataType="double"/>"#,
            r#"<ParameterField name="v"/><ParameterField name="w"/>"#,
            "takes 2 arguments",
        ),
    ];
    for (doc, from, to, needle) in cases {
        assert!(
            doc.contains(from),
            "case {from} -> {to}: not in the document"
        );
        let bad = doc.replacen(from, to, 1);
        let err = match load(&bad) {
            Err(e) => e,
            Ok(m) => match m.score(&knn_record(1.0, 2.0).with("x", 1.0)) {
                Err(e) => e,
                Ok(p) => panic!("{from} -> {to}: loaded and scored to {p:?}"),
            },
        };
        assert!(
            matches!(
                err,
                Error::InvalidModel(_) | Error::Unsupported(_) | Error::UnknownField(_)
            ),
            "{from} -> {to}: {err:?}"
        );
        assert!(
            err.to_string().contains(needle),
            "{from} -> {to}: `{err}` lacks `{needle}`"
        );
    }
}

const ODD: &[&str] = &[
    "",
    "0",
    "-1",
    "1e308",
    "NaN",
    "INF",
    "abc",
    "x1",
    "y",
    "v",
    "float",
    "double",
    "2",
    "999999999999",
];

#[test]
fn every_attribute_replaced_never_panics() {
    let records = [
        knn_record(0.5, 0.5).with("x", 0.25),
        Record::new(),
        Record::new().with("x1", "abc").with("x", "abc"),
    ];
    let (mut loaded, mut rejected) = (0, 0);
    for doc in [KNN, FLOAT_FN] {
        // Each attribute value (and each cell text) in turn.
        let mut at = 0;
        while let Some(i) = doc[at..].find("=\"").map(|i| at + i + 2) {
            let Some(len) = doc[i..].find('"') else { break };
            for odd in ODD {
                let m = format!("{}{odd}{}", &doc[..i], &doc[i + len..]);
                match load(&m) {
                    Ok(model) => {
                        loaded += 1;
                        for r in &records {
                            let _ = model.score(r);
                        }
                    }
                    Err(e) => {
                        rejected += 1;
                        assert!(!e.to_string().is_empty());
                    }
                }
            }
            at = i + len;
        }
    }
    eprintln!("loaded {loaded}, rejected {rejected}");
    assert!(loaded > 0 && rejected > 0);
}
