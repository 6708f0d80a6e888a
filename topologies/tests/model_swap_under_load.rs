//! Models change while records stream: every result is scored by a whole model (its prediction
//! is exactly what that model gives), each partition moves from the old model to the new one
//! once and never back, and a bad model leaves the previous one serving.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_proto::{Message, ModelDescriptor, ModelType};
use ks_topologies::topology::StoreVariant;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn a_swap_under_load_is_atomic_and_a_bad_model_changes_nothing() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let server = env.start(StoreVariant::Standard, dir.path());
    let (file_a, file_b) = (
        "winequalityDesisionTreeRegression.pmml",
        "winequalityRandonForrestClassification.pmml",
    );
    let name_a = env.publish_model(file_a);
    assert!(wait_until(Duration::from_secs(30), || http_get(
        &server, "/models"
    )
    .1
    .as_array()
    .is_some_and(|m| m.len() == 1)));

    // Records keep flowing while B (a 300 KB random forest, slower to build) and then a broken
    // model arrive.
    let total = 1500;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..(total / 50) {
                env.publish_records(i * 50, 50);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        std::thread::sleep(Duration::from_millis(150));
        env.publish_model(file_b);
        std::thread::sleep(Duration::from_millis(300));
        env.publish_raw_model(
            &ModelDescriptor::with_data(
                "broken",
                "",
                "wine",
                ModelType::Pmml,
                b"<PMML version=\"4.4\"><Header/>".to_vec(),
            )
            .encode_to_vec(),
        );
    });
    env.publish_records(total, 20); // after the broken model: still B
    let results = env.wait_results(total + 20, Duration::from_secs(90));
    assert_eq!(results.len(), total + 20);
    let name_b = "winequalityRandonForrestClassification";

    let data = env.data_by_position();
    let (model_a, model_b) = (model(file_a), model(file_b));
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for r in &results {
        let used = r.model.clone().expect("a model served every record");
        let reference = if used == name_a {
            &model_a
        } else {
            assert_eq!(used, name_b, "only A and B ever serve");
            &model_b
        };
        assert_eq!(
            r.prediction,
            expected_prediction(reference, &data[&(r.partition, r.offset)])
        );
        by_partition
            .entry(r.partition)
            .or_default()
            .push((r.offset, used));
    }
    for (p, mut seq) in by_partition {
        seq.sort();
        let first_b = seq
            .iter()
            .position(|(_, m)| m == name_b)
            .unwrap_or(seq.len());
        assert!(
            seq[first_b..].iter().all(|(_, m)| m == name_b),
            "partition {p} went back to A"
        );
    }
    // The last records, sent after the broken model, were scored by B; the broken model was
    // reported and /models still shows B.
    let tail: Vec<_> = results
        .iter()
        .filter(|r| r.offset >= 0)
        .rev()
        .take(5)
        .collect();
    assert!(tail.iter().any(|r| r.model.as_deref() == Some(name_b)));
    let models = http_get(&server, "/models").1;
    assert_eq!(models[0]["name"], name_b);
    assert!(wait_until(Duration::from_secs(20), || {
        env.read(&env.topics.errors)
            .iter()
            .any(|m| String::from_utf8_lossy(&m.payload).contains("broken"))
    }));
    server.shutdown().unwrap();
}
