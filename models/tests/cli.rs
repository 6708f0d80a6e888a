//! The `ks-score` binary end to end: CSV in, JPMML-shaped CSV out, `--bench` last line.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(p)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ks-score-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The first `n` rows of a golden file as an input CSV (with its expected columns left in,
/// which the CLI must ignore).
fn golden_head(stem: &str, n: usize) -> (PathBuf, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(data(&format!("golden/{stem}.csv"))).expect("golden");
    let lines: Vec<&str> = text.lines().take(n + 1).collect();
    let path = scratch(&format!("{stem}.csv"));
    std::fs::write(&path, lines.join("\n")).expect("write input");
    let rows = lines[1..]
        .iter()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (path, rows)
}

#[test]
fn scores_pmml_classification_csv() {
    let (input, rows) = golden_head("winequalityDecisionTreeClassification", 5);
    let output = scratch("dt-out.csv");
    let status = Command::new(env!("CARGO_BIN_EXE_ks-score"))
        .arg("--model")
        .arg(data("winequalityDecisionTreeClassification.pmml"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .status()
        .expect("run ks-score");
    assert!(status.success());
    let text = std::fs::read_to_string(&output).expect("output");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "quality,probability(5),probability(6),probability(7),probability(4),probability(8),probability(3)"
    );
    assert_eq!(lines.len(), 6);
    for (line, golden) in lines[1..].iter().zip(&rows) {
        let got: Vec<&str> = line.split(',').collect();
        assert_eq!(got[0], golden[11], "class label");
        for (g, e) in got[1..].iter().zip(&golden[12..]) {
            let (g, e): (f64, f64) = (g.parse().unwrap_or(f64::NAN), e.parse().unwrap_or(f64::NAN));
            assert!((g - e).abs() < 1e-12, "{g} vs {e}");
        }
    }
}

#[test]
fn scores_tensorflow_with_bench() {
    let (input, rows) = golden_head("optimized_WineQuality", 4);
    let out = Command::new(env!("CARGO_BIN_EXE_ks-score"))
        .arg("--model")
        .arg(data("optimized_WineQuality.pb"))
        .arg("--type")
        .arg("tensorflow")
        .arg("--input")
        .arg(&input)
        .arg("--bench")
        .arg("3")
        .output()
        .expect("run ks-score");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("prediction,probability(0),"));
    // The rows, then the bench's samples and its median last.
    assert_eq!(lines.len(), 1 + rows.len() + 2);
    let samples = lines[lines.len() - 2];
    assert!(
        samples.starts_with("bench: {\"records\":4,\"passes\":3,\"generic_ns\":["),
        "{samples}"
    );
    for (line, golden) in lines[1..=rows.len()].iter().zip(&rows) {
        assert_eq!(line.split(',').next(), golden.last().map(String::as_str));
    }
    let last = lines.last().copied().unwrap_or_default();
    let ns: f64 = last
        .strip_prefix("ns/record: ")
        .and_then(|v| v.parse().ok())
        .expect("bench line");
    assert!(ns > 0.0);
}

#[test]
fn reports_bad_model_clearly() {
    let bad = scratch("bad.pmml");
    std::fs::write(&bad, "<PMML><DataDictionary>").expect("write");
    let (input, _) = golden_head("winequalityLinearRegression", 1);
    let out = Command::new(env!("CARGO_BIN_EXE_ks-score"))
        .arg("--model")
        .arg(&bad)
        .arg("--input")
        .arg(&input)
        .output()
        .expect("run ks-score");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not well-formed XML"), "{err}");
}
