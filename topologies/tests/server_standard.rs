//! ks-server --store standard against the real broker.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_topologies::topology::StoreVariant;
use std::time::Duration;

#[test]
fn scores_every_record_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (env, server, scored) = serve_and_check(StoreVariant::Standard, dir.path());
    server.shutdown().unwrap();
    restart_keeps_model_and_stats(&env, StoreVariant::Standard, dir.path(), scored);
}

#[test]
fn a_model_by_reference_is_loaded_from_its_file() {
    use ks_proto::{Message, ModelDescriptor, ModelType};
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let server = env.start(StoreVariant::Standard, dir.path());
    let path = std::fs::canonicalize(data_dir().join("winequalityLinearRegression.pmml")).unwrap();
    let md = ModelDescriptor::with_location(
        "linear",
        "by reference",
        "wine",
        ModelType::Pmml,
        &path.to_string_lossy(),
    );
    env.publish_raw_model(&md.encode_to_vec());
    assert!(wait_until(Duration::from_secs(30), || {
        http_get(&server, "/models")
            .1
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["name"] == "linear"))
    }));
    env.publish_records(0, 10);
    let results = env.wait_results(10, Duration::from_secs(60));
    let reference = model("winequalityLinearRegression.pmml");
    let data = env.data_by_position();
    for r in &results {
        assert_eq!(r.model.as_deref(), Some("linear"));
        assert_eq!(
            r.prediction,
            expected_prediction(&reference, &data[&(r.partition, r.offset)])
        );
    }
    // A location that does not exist is reported with the same validation as bad bytes.
    let missing =
        ModelDescriptor::with_location("ghost", "", "wine", ModelType::Pmml, "/no/such/model.pmml");
    env.publish_raw_model(&missing.encode_to_vec());
    assert!(wait_until(Duration::from_secs(20), || env
        .read(&env.topics.errors)
        .iter()
        .any(|m| String::from_utf8_lossy(&m.payload)
            .contains("cannot read model file /no/such/model.pmml"))));
    assert_eq!(http_get(&server, "/models").1[0]["name"], "linear");
    server.shutdown().unwrap();
}
