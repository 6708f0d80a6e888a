//! A poll batch of wine records is scored as one tensor when the model is a graph
//! (`Processor::prepare` of the serving processor), and the results are those of scoring each
//! record alone, in input order. A PMML model scores row by row either way: nothing is
//! prepared for it. A model swapped in between the batch's preparation and a record's turn
//! scores that record itself.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_engine::processor::supplier;
use ks_engine::stores::{StoreKind, StoreSpec};
use ks_engine::{Record, Topology, TopologyTestDriver};
use ks_models::{Model, ModelType};
use ks_proto::{Message, WineRecord};
use ks_serving::{LifecycleOptions, ModelRegistry, Origin, ScoreResult, ServedModel};
use ks_topologies::serving::{ModelServing, ServerMetrics, SCORE_WINDOWS_STORE, SERVING_STORE};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn wines(n: usize) -> Vec<Record> {
    let csv = std::fs::read_to_string(data().join("winequality_red.csv")).unwrap();
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .enumerate()
        .map(|(i, l)| {
            let wine = WineRecord::from_csv_line(l, "wine").unwrap();
            Record::new(None, Some(wine.encode_to_vec()), 1_000 + i as i64)
        })
        .collect()
}

fn served(model_type: ModelType, file: &str, version: &str) -> ServedModel {
    let bytes = std::fs::read(data().join(file)).unwrap();
    let model = Model::from_bytes(model_type, &bytes).unwrap();
    ServedModel::new("wine", file, "", version, 0, model)
}

fn driver(registry: &Arc<ModelRegistry>, metrics: &Arc<ServerMetrics>) -> TopologyTestDriver {
    let (registry, metrics) = (registry.clone(), metrics.clone());
    let mut t = Topology::new();
    t.add_source("data", &["data"])
        .unwrap()
        .add_processor(
            "serving",
            supplier(move || ModelServing::new(registry.clone(), metrics.clone())),
            &["data"],
        )
        .unwrap()
        .add_state_store(
            StoreSpec::new(SERVING_STORE, StoreKind::InMemory).with_logging(false),
            &["serving"],
        )
        .unwrap()
        .add_state_store(
            StoreSpec::new(SCORE_WINDOWS_STORE, StoreKind::InMemory).with_logging(false),
            &["serving"],
        )
        .unwrap()
        .add_sink("results", "results", &["serving"])
        .unwrap();
    TopologyTestDriver::new(&t, 0).unwrap()
}

fn results(d: &mut TopologyTestDriver) -> Vec<ScoreResult> {
    d.read_all_output("results")
        .into_iter()
        .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap())
        .collect()
}

/// The same results but for the scoring time.
fn assert_same(batched: &[ScoreResult], alone: &[ScoreResult]) {
    assert_eq!(batched.len(), alone.len());
    for (i, (b, a)) in batched.iter().zip(alone).enumerate() {
        assert_eq!(
            (
                &b.model,
                &b.model_version,
                &b.prediction,
                b.offset,
                &b.error
            ),
            (
                &a.model,
                &a.model_version,
                &a.prediction,
                a.offset,
                &a.error
            ),
            "record {i}"
        );
        assert_eq!(b.probabilities.len(), a.probabilities.len(), "record {i}");
        for (class, p) in &a.probabilities {
            let q = b.probabilities[class];
            assert!((p - q).abs() < 1e-5, "record {i} class {class}: {q} vs {p}");
        }
        assert!(b.duration_us.is_some_and(|us| us >= 0.0), "record {i}");
    }
}

fn run(model: impl Fn() -> ServedModel, batch: bool, n: usize) -> (Vec<ScoreResult>, u64) {
    let registry = Arc::new(ModelRegistry::new(LifecycleOptions::default()));
    registry.install(model(), Origin::new("models", 0, 1));
    let metrics = Arc::new(ServerMetrics::default());
    let mut d = driver(&registry, &metrics);
    let records = wines(n);
    if batch {
        // Poll batches of 64 (and a last, shorter one), as a stream thread runs them.
        for chunk in records.chunks(64) {
            d.pipe_batch("data", chunk.to_vec()).unwrap();
        }
    } else {
        for r in records {
            d.pipe("data", r).unwrap();
        }
    }
    (results(&mut d), metrics.batched.load(Ordering::Relaxed))
}

#[test]
fn a_graph_scores_a_poll_batch_as_one_tensor_with_the_results_of_one_by_one() {
    let tf = || served(ModelType::Tensorflow, "optimized_WineQuality.pb", "0:1");
    let (batched, prepared) = run(tf, true, 300);
    let (alone, none) = run(tf, false, 300);
    assert_eq!(batched.len(), 300);
    assert_same(&batched, &alone);
    assert_eq!(prepared, 300, "every record scored ahead with its batch");
    assert_eq!(none, 0);
    // In input order.
    assert!(batched.windows(2).all(|w| w[0].offset + 1 == w[1].offset));
}

#[test]
fn pmml_scores_row_by_row_and_nothing_is_prepared() {
    let tree = || {
        served(
            ModelType::Pmml,
            "winequalityDecisionTreeClassification.pmml",
            "0:1",
        )
    };
    let (batched, prepared) = run(tree, true, 200);
    let (alone, _) = run(tree, false, 200);
    assert_same(&batched, &alone);
    assert_eq!(prepared, 0);
}

#[test]
fn a_model_swapped_in_after_the_batch_was_prepared_scores_its_records_itself() {
    let registry = Arc::new(ModelRegistry::new(LifecycleOptions::default()));
    registry.install(
        served(ModelType::Tensorflow, "optimized_WineQuality.pb", "0:1"),
        Origin::new("models", 0, 1),
    );
    let metrics = Arc::new(ServerMetrics::default());
    let mut d = driver(&registry, &metrics);
    let records = wines(10);
    // Prepared by the graph, then a tree takes over before the records' turn.
    d.pipe_batch("data", records[..2].to_vec()).unwrap();
    let upcoming = records[2..].to_vec();
    let swap = {
        let registry = registry.clone();
        move || {
            registry.install(
                served(
                    ModelType::Pmml,
                    "winequalityDecisionTreeClassification.pmml",
                    "0:2",
                ),
                Origin::new("models", 0, 2),
            )
        }
    };
    d.prepare("data", &upcoming).unwrap();
    swap();
    for r in upcoming {
        d.pipe("data", r).unwrap();
    }
    let out = results(&mut d);
    assert_eq!(out.len(), 10);
    assert_eq!(metrics.batched.load(Ordering::Relaxed), 2);
    assert!(out[..2]
        .iter()
        .all(|r| r.model_version.as_deref() == Some("0:1")));
    assert!(out[2..]
        .iter()
        .all(|r| r.model_version.as_deref() == Some("0:2")));
}
