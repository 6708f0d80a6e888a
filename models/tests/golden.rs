//! Every data/golden/<stem>.csv is scored with its model (data/<stem>.pmml,
//! data/<stem>.pb, data/sklearn/<stem>.pmml or data/onnx/<stem>.onnx) and compared cell by
//! cell with the reference outputs (JPMML-Evaluator for PMML, TensorFlow for the graph,
//! onnxruntime for ONNX).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::{Path, PathBuf};

use ks_models::{Model, ModelType, Prediction, Record, Value};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn find_model(stem: &str) -> Option<(ModelType, PathBuf)> {
    let d = data_dir();
    [
        (ModelType::Pmml, d.join(format!("{stem}.pmml"))),
        (ModelType::Tensorflow, d.join(format!("{stem}.pb"))),
        (
            ModelType::Pmml,
            d.join("sklearn").join(format!("{stem}.pmml")),
        ),
        (ModelType::Onnx, d.join("onnx").join(format!("{stem}.onnx"))),
    ]
    .into_iter()
    .find(|(_, p)| p.exists())
}

struct Golden {
    inputs: Vec<String>,
    expected: Vec<String>,
    input_cols: Vec<usize>,
    expected_cols: Vec<usize>,
    rows: Vec<csv::StringRecord>,
}

fn read_golden(path: &Path) -> Golden {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .expect("open golden");
    let header = rdr.headers().expect("golden header").clone();
    let mut g = Golden {
        inputs: Vec::new(),
        expected: Vec::new(),
        input_cols: Vec::new(),
        expected_cols: Vec::new(),
        rows: Vec::new(),
    };
    for (i, h) in header.iter().enumerate() {
        match h.strip_prefix("expected:") {
            Some(e) => {
                g.expected.push(e.to_string());
                g.expected_cols.push(i);
            }
            None => {
                g.inputs.push(h.to_string());
                g.input_cols.push(i);
            }
        }
    }
    g.rows = rdr.records().map(|r| r.expect("golden row")).collect();
    g
}

fn close(actual: f64, expected: f64, tol: f64) -> bool {
    if actual.is_nan() || expected.is_nan() {
        return actual.is_nan() && expected.is_nan();
    }
    (actual - expected).abs() <= tol * expected.abs().max(1.0)
}

/// Compares one cell: identical text, or numbers within `tol`.
fn cell_matches(actual: &Value, expected: &str, tol: f64) -> bool {
    let expected = expected.trim();
    match actual {
        Value::Missing => expected.is_empty() || expected.eq_ignore_ascii_case("nan"),
        Value::Text(t) => {
            &**t == expected
                || matches!((t.parse::<f64>(), expected.parse::<f64>()), (Ok(a), Ok(e)) if a == e)
        }
        // The generators write NaN as an empty cell (JPMML's k-NN gives NaN for a record
        // at distance 0 from an inverse-distance weighted neighbour).
        Value::Number(n) if n.is_nan() => {
            expected.is_empty() || expected.eq_ignore_ascii_case("nan")
        }
        Value::Number(n) => match expected.parse::<f64>() {
            Ok(e) => close(*n, e, tol),
            Err(_) => match expected {
                "true" => *n == 1.0,
                "false" => *n == 0.0,
                _ => false,
            },
        },
    }
}

/// Which output column answers an expected column: PMML names map one to one; the TF
/// golden names outputs out0..outN and the argmax `quality`.
fn output_for<'p>(model_type: ModelType, p: &'p Prediction, name: &str) -> Option<&'p Value> {
    if model_type == ModelType::Tensorflow {
        if let Some(i) = name.strip_prefix("out") {
            return p.get(&format!("probability({i})"));
        }
        return p.get("prediction");
    }
    p.get(name)
}

fn check_file(golden: &Path) -> Result<usize, String> {
    let stem = golden
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let (model_type, path) =
        find_model(&stem).ok_or_else(|| format!("{stem}: no model file found"))?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{stem}: {e}"))?;
    let model =
        Model::from_bytes(model_type, &bytes).map_err(|e| format!("{stem}: load failed: {e}"))?;
    let g = read_golden(golden);
    // Graphs compute in float32: tract and the reference runtime may sum in another order.
    let tol = if model_type == ModelType::Pmml {
        1e-9
    } else {
        1e-5
    };
    let records: Vec<Record> = g
        .rows
        .iter()
        .map(|row| {
            g.input_cols
                .iter()
                .zip(&g.inputs)
                .map(|(c, name)| (name.clone(), Value::from_cell(row.get(*c).unwrap_or(""))))
                .collect()
        })
        .collect();
    let predictions = model
        .score_batch(&records)
        .map_err(|e| format!("{stem}: scoring failed: {e}"))?;
    // Exact only for PMML: tract picks other float32 kernels for one row than for a batch
    // (tests/onnx_models.rs checks the ONNX fast path at the golden tolerance).
    if model_type == ModelType::Pmml {
        check_fast_path(&stem, &model, &records, &predictions)?;
    }
    let mut failures = Vec::new();
    for (r, (row, p)) in g.rows.iter().zip(&predictions).enumerate() {
        for (c, name) in g.expected_cols.iter().zip(&g.expected) {
            let expected = row.get(*c).unwrap_or("");
            let ok = match output_for(model_type, p, name) {
                Some(actual) => cell_matches(actual, expected, tol),
                None => false,
            };
            if !ok {
                failures.push(format!(
                    "{stem} row {} column {name}: expected `{expected}`, got {:?}",
                    r + 1,
                    output_for(model_type, p, name)
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(g.rows.len())
    } else {
        let n = failures.len();
        failures.truncate(8);
        Err(format!(
            "{n} mismatching cells:\n  {}",
            failures.join("\n  ")
        ))
    }
}

/// Output columns as text: equal strings mean identical numbers (NaN and -0.0 included).
fn cells(p: &Prediction) -> Vec<(String, String)> {
    p.outputs()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// The numeric fast path (`score_row`, and `score_row_into` reusing one `Prediction`)
/// gives exactly the generic path's predictions on every record whose inputs are all
/// numbers or missing (other models are skipped).
fn check_fast_path(
    stem: &str,
    model: &Model,
    records: &[Record],
    predictions: &[Prediction],
) -> Result<(), String> {
    let mut reused = Prediction::default();
    for (i, (r, p)) in records.iter().zip(predictions).enumerate() {
        let mut row = Vec::with_capacity(model.input_fields().len());
        for f in model.input_fields() {
            match r.get(f) {
                None | Some(Value::Missing) => row.push(f64::NAN),
                Some(v) => match v.as_f64() {
                    Some(n) => row.push(n),
                    None => return Ok(()),
                },
            }
        }
        let fast = model
            .score_row(&row)
            .map_err(|e| format!("{stem} row {}: score_row failed: {e}", i + 1))?;
        model
            .score_row_into(&row, &mut reused)
            .map_err(|e| format!("{stem} row {}: score_row_into failed: {e}", i + 1))?;
        let expected = cells(p);
        if cells(&fast) != expected || cells(&reused) != expected {
            return Err(format!(
                "{stem} row {}: score_row gave {:?} / {:?}, score gave {expected:?}",
                i + 1,
                cells(&fast),
                cells(&reused)
            ));
        }
    }
    Ok(())
}

#[test]
fn every_golden_file_matches() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir().join("golden"))
        .expect("data/golden")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "expected the seed goldens, found {}",
        files.len()
    );
    let mut errors = Vec::new();
    for f in &files {
        match check_file(f) {
            Ok(rows) => eprintln!("ok   {} ({rows} rows)", f.display()),
            Err(e) => {
                eprintln!("FAIL {}: {e}", f.display());
                errors.push(e);
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {} golden files failed:\n{}",
        errors.len(),
        files.len(),
        errors.join("\n")
    );
}
