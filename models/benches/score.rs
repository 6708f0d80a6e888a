//! Per-record scoring cost of every seed model (and the TF graph per record in a batch).
//! Run: `cargo bench -p ks-models --bench score`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ks_models::{Model, ModelType, Record};

fn data(p: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data")
            .join(p),
    )
    .expect("model file")
}

/// The 1599 wine rows (11 features each).
fn wine_rows() -> Vec<[f64; 11]> {
    let text = String::from_utf8(data("winequality_red.csv")).expect("utf8");
    text.lines()
        .filter_map(|l| {
            let v: Vec<f64> = l.split(';').filter_map(|c| c.trim().parse().ok()).collect();
            let mut row = [0.0; 11];
            (v.len() >= 11).then(|| {
                row.copy_from_slice(&v[..11]);
                row
            })
        })
        .collect()
}

/// Rows reordered into the model's input-field order (the fast path's contract).
fn rows_for(model: &Model, rows: &[[f64; 11]]) -> Vec<Vec<f64>> {
    let idx: Vec<usize> = model
        .input_fields()
        .iter()
        .map(|f| {
            ks_proto::WINE_FEATURES
                .iter()
                .position(|w| w == f)
                .expect("wine field")
        })
        .collect();
    rows.iter()
        .map(|r| idx.iter().map(|i| r[*i]).collect())
        .collect()
}

const SEEDS: &[(&str, &str)] = &[
    (
        "decision_tree_classification",
        "winequalityDecisionTreeClassification.pmml",
    ),
    (
        "decision_tree_regression",
        "winequalityDesisionTreeRegression.pmml",
    ),
    (
        "glm_gamma",
        "winequalityGeneralizedLinearRegressionGamma.pmml",
    ),
    (
        "glm_gaussian",
        "winequalityGeneralizedLinearRegressionGaussian.pmml",
    ),
    ("linear_regression", "winequalityLinearRegression.pmml"),
    ("mlp", "winequalityMultilayerPerceptron.pmml"),
    (
        "random_forest",
        "winequalityRandonForrestClassification.pmml",
    ),
];

fn pmml(c: &mut Criterion) {
    let wine = wine_rows();
    let mut g = c.benchmark_group("pmml_score_row");
    g.throughput(Throughput::Elements(1));
    for (name, file) in SEEDS {
        let model = Model::from_bytes(ModelType::Pmml, &data(file)).expect("seed model");
        let rows = rows_for(&model, &wine);
        let mut i = 0;
        g.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) % rows.len();
                black_box(model.score_row(black_box(&rows[i])).expect("score"))
            })
        });
    }
    g.finish();

    // The generic path: records looked up by field name.
    let mut g = c.benchmark_group("pmml_score_record");
    g.throughput(Throughput::Elements(1));
    let records: Vec<Record> = wine
        .iter()
        .map(|r| {
            ks_proto::WINE_FEATURES
                .iter()
                .zip(r)
                .map(|(n, v)| (*n, *v))
                .collect()
        })
        .collect();
    for (name, file) in [SEEDS[0], SEEDS[4]] {
        let model = Model::from_bytes(ModelType::Pmml, &data(file)).expect("seed model");
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % records.len();
                black_box(model.score(black_box(&records[i])).expect("score"))
            })
        });
    }
    g.finish();
}

fn tensorflow(c: &mut Criterion) {
    let wine = wine_rows();
    let model =
        Model::from_bytes(ModelType::Tensorflow, &data("optimized_WineQuality.pb")).expect("graph");
    let flat: Vec<f64> = wine.iter().flatten().copied().collect();
    let mut g = c.benchmark_group("tensorflow");
    g.throughput(Throughput::Elements(wine.len() as u64));
    g.bench_function("batch_1599", |b| {
        b.iter(|| black_box(model.score_rows(black_box(&flat)).expect("score")))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| {
        b.iter(|| black_box(model.score_rows(black_box(&flat[..11])).expect("score")))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = pmml, tensorflow
}
criterion_main!(benches);
