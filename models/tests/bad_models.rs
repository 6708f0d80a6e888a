//! Bad model bytes give a typed error that names the problem, never a panic.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_models::{Error, Model, ModelType};

fn pmml(bytes: &[u8]) -> Result<Model, Error> {
    Model::from_bytes(ModelType::Pmml, bytes)
}

#[test]
fn random_bytes() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let err = pmml(&bytes).expect_err("random bytes are no PMML");
    assert!(
        matches!(err, Error::NotUtf8(_) | Error::Xml { .. }),
        "{err}"
    );
    let err =
        Model::from_bytes(ModelType::Tensorflow, &bytes).expect_err("random bytes are no graph");
    assert!(matches!(err, Error::Tensorflow(_)), "{err}");
}

#[test]
fn truncated_xml() {
    let full = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/winequalityLinearRegression.pmml"
    ))
    .expect("seed model");
    let err = pmml(&full[..full.len() / 2]).expect_err("truncated");
    assert!(matches!(err, Error::Xml { .. }), "{err}");
    assert!(err.to_string().contains("not well-formed XML"));
}

#[test]
fn not_pmml() {
    let err = pmml(b"<html><body/></html>").expect_err("html");
    assert!(matches!(err, Error::NotPmml(_)), "{err}");
}

#[test]
fn unsupported_element() {
    let doc = br#"<PMML version="4.4"><DataDictionary>
        <DataField name="x" optype="continuous" dataType="double"/></DataDictionary>
        <ClusteringModel functionName="clustering"><MiningSchema><MiningField name="x"/></MiningSchema></ClusteringModel>
        </PMML>"#;
    let err = pmml(doc).expect_err("clustering");
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("clustering"), "{err}");

    let doc = br#"<PMML version="4.4"><DataDictionary>
        <DataField name="x" optype="continuous" dataType="double"/></DataDictionary>
        <TimeSeriesModel functionName="regression"><MiningSchema><MiningField name="x"/></MiningSchema></TimeSeriesModel>
        </PMML>"#;
    let err = pmml(doc).expect_err("time series");
    assert!(
        matches!(err, Error::Unsupported(ref m) if m.contains("TimeSeriesModel")),
        "{err}"
    );
}

#[test]
fn doctype_is_rejected() {
    let doc = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<PMML version="4.4"><DataDictionary/></PMML>"#;
    let err = pmml(doc).expect_err("doctype");
    assert!(matches!(err, Error::Doctype), "{err}");
    assert!(err.to_string().contains("DOCTYPE"));
}

#[test]
fn hundred_megabyte_document() {
    let mut doc = b"<PMML version=\"4.4\"><!--".to_vec();
    doc.resize(100 * 1024 * 1024, b'x');
    doc.extend_from_slice(b"--></PMML>");
    let err = pmml(&doc).expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("too large"));
}

#[test]
fn deeply_nested_document() {
    let doc = format!("<PMML>{}", "<Extension>".repeat(100_000));
    let err = pmml(doc.as_bytes()).expect_err("deep");
    assert!(matches!(err, Error::TooDeep { .. }), "{err}");
}

#[test]
fn dangling_field_reference() {
    let doc = br#"<PMML version="4.4"><DataDictionary>
        <DataField name="x" optype="continuous" dataType="double"/></DataDictionary>
        <RegressionModel functionName="regression"><MiningSchema><MiningField name="x"/></MiningSchema>
        <RegressionTable intercept="1"><NumericPredictor name="nope" coefficient="2"/></RegressionTable>
        </RegressionModel></PMML>"#;
    let err = pmml(doc).expect_err("unknown field");
    assert!(
        matches!(err, Error::UnknownField(ref f) if f == "nope"),
        "{err}"
    );
}

#[test]
fn bad_number() {
    let doc = br#"<PMML version="4.4"><DataDictionary>
        <DataField name="x" optype="continuous" dataType="double"/></DataDictionary>
        <RegressionModel functionName="regression"><MiningSchema><MiningField name="x"/></MiningSchema>
        <RegressionTable intercept="one"/></RegressionModel></PMML>"#;
    let err = pmml(doc).expect_err("bad number");
    assert!(
        matches!(err, Error::InvalidModel(ref m) if m.contains("one")),
        "{err}"
    );
}

#[test]
fn deep_expressions_within_the_limit_do_not_overflow_the_stack() {
    let depth = 390;
    let mut e = String::from("<FieldRef field=\"x\"/>");
    for _ in 0..depth {
        e = format!("<Apply function=\"+\">{e}<Constant>1</Constant></Apply>");
    }
    let doc = format!(
        r#"<PMML version="4.4"><DataDictionary>
        <DataField name="x" optype="continuous" dataType="double"/></DataDictionary>
        <TransformationDictionary><DerivedField name="d" optype="continuous" dataType="double">{e}</DerivedField></TransformationDictionary>
        <RegressionModel functionName="regression"><MiningSchema><MiningField name="x"/></MiningSchema>
        <RegressionTable intercept="0"><NumericPredictor name="d" coefficient="1"/></RegressionTable>
        </RegressionModel></PMML>"#
    );
    match pmml(doc.as_bytes()) {
        Ok(m) => {
            let p = m
                .score(&ks_models::Record::new().with("x", 1.0))
                .expect("score");
            assert_eq!(p.as_f64(), Some(1.0 + depth as f64));
        }
        Err(e) => assert!(matches!(e, Error::TooDeep { .. }), "{e}"),
    }
}
