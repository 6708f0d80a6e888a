//! ONNX models (skl2onnx exports in data/onnx/): inputs and outputs come from the graph, the
//! fast paths agree with the batch path, and bad graphs or inputs are typed errors.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use ks_models::{Error, Model, ModelType, Record, Value};
use ks_proto::{WineRecord, WINE_FEATURES};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(p)
}

fn load(stem: &str) -> Model {
    let bytes = std::fs::read(data(&format!("onnx/{stem}.onnx"))).unwrap();
    Model::from_bytes(ModelType::Onnx, &bytes).unwrap()
}

fn wine_rows(n: usize) -> Vec<WineRecord> {
    std::fs::read_to_string(data("winequality_red.csv"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| WineRecord::from_csv_line(l, "wine").unwrap())
        .collect()
}

#[test]
fn inputs_and_outputs_are_discovered_from_the_graph() {
    let m = load("onnx_rf_classifier");
    assert_eq!(m.model_type(), ModelType::Onnx);
    // The single [N, 11] input's fields come from the `ks.input_fields` metadata.
    assert_eq!(m.input_fields(), WINE_FEATURES);
    let classes = ["label[0]"]
        .into_iter()
        .map(String::from)
        .chain((0..6).map(|i| format!("probabilities[{i}]")))
        .collect::<Vec<_>>();
    assert_eq!(m.output_fields(), classes);
    let lin = load("onnx_linear_regression");
    assert_eq!(lin.output_fields(), ["variable[0]"]);
}

#[test]
fn classifier_labels_are_text_and_probabilities_sum_to_one() {
    let m = load("onnx_logreg");
    for w in wine_rows(50) {
        let p = m.score(&Record::from_wine(&w)).unwrap();
        let Value::Text(label) = p.value() else {
            panic!("label is not text: {p:?}");
        };
        assert!(["3", "4", "5", "6", "7", "8"].contains(&&**label));
        let sum: f64 = p.values()[1..].iter().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    }
}

#[test]
fn row_and_batch_paths_agree_at_float32_tolerance() {
    for stem in [
        "onnx_logreg",
        "onnx_rf_classifier",
        "onnx_linear_regression",
    ] {
        let m = load(stem);
        let wines = wine_rows(40);
        let records: Vec<Record> = wines.iter().map(Record::from_wine).collect();
        let batch = m.score_batch(&records).unwrap();
        let flat: Vec<f64> = wines.iter().flat_map(|w| w.features()).collect();
        let rows = m.score_rows(&flat).unwrap();
        assert_eq!(rows.len(), batch.len());
        for ((w, b), r) in wines.iter().zip(&batch).zip(&rows) {
            let one = m.score_row(&w.features()).unwrap();
            for p in [&one, r] {
                assert_eq!(p.value(), b.value(), "{stem}");
                for (x, y) in p.values()[1..].iter().zip(&b.values()[1..]) {
                    let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                    assert!(
                        (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                        "{stem}: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_bytes_and_bad_inputs_are_typed_errors() {
    let err = Model::from_bytes(ModelType::Onnx, b"definitely not a protobuf").unwrap_err();
    assert!(matches!(err, Error::Onnx(_)), "{err}");
    let err = Model::from_bytes(ModelType::Onnx, b"").unwrap_err();
    assert!(matches!(err, Error::Onnx(_)), "{err}");
    let m = load("onnx_logreg");
    let err = m.score(&Record::new().with("alcohol", 9.4)).unwrap_err();
    assert!(matches!(err, Error::MissingValue(_)), "{err}");
    let err = m.score_rows(&[1.0, 2.0, 3.0]).unwrap_err();
    assert!(matches!(err, Error::Input(_)), "{err}");
    assert!(m.score_batch(&[]).unwrap().is_empty());
}

#[test]
fn ks_score_writes_one_column_per_output_element() {
    let dir = std::env::temp_dir().join(format!("ks-score-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("out.csv");
    let status = Command::new(env!("CARGO_BIN_EXE_ks-score"))
        .arg("--model")
        .arg(data("onnx/onnx_rf_classifier.onnx"))
        .args(["--type", "onnx", "--input"])
        .arg(data("golden/onnx_rf_classifier.csv"))
        .arg("--output")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&output).unwrap();
    let golden = std::fs::read_to_string(data("golden/onnx_rf_classifier.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "label[0],probabilities[0],probabilities[1],probabilities[2],probabilities[3],probabilities[4],probabilities[5]"
    );
    let mut n = 0;
    for (line, g) in lines.zip(golden.lines().skip(1)) {
        let got: Vec<&str> = line.split(',').collect();
        let exp: Vec<&str> = g.split(',').skip(11).collect();
        assert_eq!(got[0], exp[0], "label");
        for (a, e) in got[1..].iter().zip(&exp[1..]) {
            let (a, e): (f64, f64) = (a.parse().unwrap(), e.parse().unwrap());
            assert!((a - e).abs() <= 1e-5, "{a} vs {e}");
        }
        n += 1;
    }
    assert_eq!(n, 1599);
    // Without --type the extension decides.
    let out = Command::new(env!("CARGO_BIN_EXE_ks-score"))
        .arg("--model")
        .arg(data("onnx/onnx_linear_regression.onnx"))
        .arg("--input")
        .arg(data("golden/onnx_linear_regression.csv"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("variable[0]\n"));
}
