//! The model lifecycle driven by the model topic, on a broker with ks-server instances:
//! a rollback message reaches two instances (and bad control messages change nothing); a
//! challenger scores in shadow with agreement figures that match a recomputation from the
//! results topic, and a promote swaps it in; the promotion policy promotes by itself; drift
//! rises when records come from a shifted distribution.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_proto::control::{ACTION_HEADER, CHALLENGER, PROMOTE, ROLE_HEADER, ROLLBACK};
use ks_proto::{Message, ModelDescriptor, ModelType, WineRecord};
use ks_serving::challenger::PromotePolicy;
use ks_serving::drift::DriftOptions;
use ks_serving::ScoreResult;
use ks_topologies::server::Server;
use ks_topologies::topology::StoreVariant;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Sends one model-topic message with headers (with rdkafka itself: the test proves the
/// server reads headers whoever writes them).
fn send(env: &Env, payload: &[u8], headers: &[(&str, &[u8])]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", env.bootstrap())
        .create()
        .unwrap();
    let mut owned = OwnedHeaders::new();
    for (key, value) in headers {
        owned = owned.insert(Header {
            key,
            value: Some(*value),
        });
    }
    producer
        .send(
            BaseRecord::<[u8], [u8]>::to(&env.topics.models)
                .key(b"wine")
                .payload(payload)
                .headers(owned),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn model_message(file: &str) -> Vec<u8> {
    let name = Path::new(file).file_stem().unwrap().to_string_lossy();
    ModelDescriptor::with_data(
        &name,
        "",
        "wine",
        ModelType::Pmml,
        std::fs::read(data_dir().join(file)).unwrap(),
    )
    .encode_to_vec()
}

fn control(env: &Env, data_type: &str, action: &str) {
    send(
        env,
        &ks_proto::control::descriptor(data_type).encode_to_vec(),
        &[(ACTION_HEADER, action.as_bytes())],
    );
}

fn versions(s: &Server) -> Value {
    http_get(s, "/models/wine/versions").1
}

/// Waits until `s` serves the model named `name`; returns its version.
fn wait_serving(s: &Server, name: &str) -> String {
    let mut found = None;
    assert!(
        wait_until(WAIT, || {
            let v = versions(s);
            found = v["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["status"] == "serving" && e["name"] == name)
                .map(|e| e["version"].as_str().unwrap().to_string());
            found.is_some()
        }),
        "{name} never served: {}",
        versions(s)
    );
    found.unwrap()
}

fn control_errors(env: &Env) -> Vec<Value> {
    env.read(&env.topics.errors)
        .iter()
        .map(|m| serde_json::from_slice::<Value>(&m.payload).unwrap())
        .filter(|e| e["kind"] == "control")
        .collect()
}

#[test]
fn a_rollback_reaches_two_instances_and_bad_control_messages_change_nothing() {
    let env = Env::new();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = env.start(StoreVariant::Standard, da.path());
    let b = env.start(StoreVariant::Standard, db.path());
    // Both score: the data partitions are split between them before any record is sent.
    for s in [&a, &b] {
        assert!(wait_until(WAIT, || {
            let list = http_get(s, "/state/instances").1;
            let list = list.as_array().cloned().unwrap_or_default();
            let parts = |i: &Value| i["partitions"].as_array().map_or(0, Vec::len);
            list.len() == 2 && list.iter().all(|i| parts(i) > 0)
        }));
    }
    send(
        &env,
        &model_message("winequalityLinearRegression.pmml"),
        &[],
    );
    send(
        &env,
        &model_message("winequalityDesisionTreeRegression.pmml"),
        &[],
    );
    let newer = wait_serving(&a, "winequalityDesisionTreeRegression");
    assert_eq!(wait_serving(&b, "winequalityDesisionTreeRegression"), newer);

    control(&env, "wine", ROLLBACK);
    let back = wait_serving(&a, "winequalityLinearRegression");
    assert_eq!(wait_serving(&b, "winequalityLinearRegression"), back);
    for s in [&a, &b] {
        let v = versions(s);
        assert_eq!(v["serving"], back.as_str(), "{v}");
        let statuses: Vec<(&str, &str)> = v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["version"].as_str().unwrap(),
                    e["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            statuses,
            [(newer.as_str(), "rolled_back"), (back.as_str(), "serving")]
        );
        let entry = &v["versions"][1];
        assert_eq!(entry["topic"], env.topics.models.as_str());
        assert!(entry["loaded"].as_i64().unwrap() > 0 && entry["offset"].as_i64().is_some());
    }

    // Records scored on both instances after the rollback: every one by the older model.
    // Keyed, so they reach every partition (and so both instances) whatever the partitioner.
    env.publish_keyed_records(0, 200);
    let results = env.wait_results(200, WAIT);
    assert_eq!(results.len(), 200);
    assert!(
        results
            .iter()
            .all(|r| r.model_version.as_deref() == Some(back.as_str())),
        "{:?}",
        results.iter().map(|r| &r.model_version).collect::<Vec<_>>()
    );
    let local = |s: &Server| {
        http_get(s, "/state/value?local=true").1["usage"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(local(&a) > 0 && local(&b) > 0, "both instances scored");

    // Nothing older to roll back to, an unknown data type, an unknown action, a control
    // message carrying a model, a garbage payload: each reported, the model keeps serving.
    control(&env, "wine", ROLLBACK);
    control(&env, "beer", ROLLBACK);
    control(&env, "wine", "explode");
    send(
        &env,
        &model_message("winequalityLinearRegression.pmml"),
        &[(ACTION_HEADER, PROMOTE.as_bytes())],
    );
    send(
        &env,
        b"\xff\xff\xff",
        &[(ACTION_HEADER, ROLLBACK.as_bytes())],
    );
    control(&env, "wine", PROMOTE); // no challenger
    let mut errors = Vec::new();
    assert!(
        wait_until(WAIT, || {
            errors = control_errors(&env);
            errors.len() >= 12 // six messages, read by two instances
        }),
        "{errors:?}"
    );
    let reasons: Vec<&str> = errors
        .iter()
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    for expected in [
        "no previous version of \"wine\"",
        "no model serves data type \"beer\"",
        "unknown ks.action \"explode\"",
        "must carry no model",
        "not a ModelDescriptor",
        "no challenger for data type \"wine\"",
    ] {
        assert_eq!(
            reasons.iter().filter(|r| r.contains(expected)).count(),
            2,
            "{expected}: {reasons:?}"
        );
    }
    for s in [&a, &b] {
        assert_eq!(versions(s)["serving"], back.as_str());
    }
    // An unknown data type's versions: a 404 with a JSON error.
    let (status, body) = http_get(&a, "/models/beer/versions");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("beer"));
}

/// The results that carry a challenger prediction, in the topic's order.
fn shadowed(results: &[ScoreResult]) -> Vec<&ScoreResult> {
    results.iter().filter(|r| r.challenger.is_some()).collect()
}

#[test]
fn a_challenger_scores_in_shadow_and_a_promote_swaps_it_in() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let s = env.start(StoreVariant::Standard, dir.path());
    send(
        &env,
        &model_message("winequalityLinearRegression.pmml"),
        &[],
    );
    let champion = wait_serving(&s, "winequalityLinearRegression");
    send(
        &env,
        &model_message("winequalityDesisionTreeRegression.pmml"),
        &[(ROLE_HEADER, CHALLENGER.as_bytes())],
    );
    assert!(wait_until(WAIT, || versions(&s)["challenger"]["status"]
        == "challenger"));
    let challenger = versions(&s)["challenger"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(versions(&s)["serving"], champion.as_str());

    env.publish_records(0, 300);
    let results = env.wait_results(300, WAIT);
    assert_eq!(results.len(), 300);
    let data = env.data_by_position();
    let (lin, tree) = (
        model("winequalityLinearRegression.pmml"),
        model("winequalityDesisionTreeRegression.pmml"),
    );
    for r in &results {
        // The served prediction is the champion's; the challenger's sits beside it.
        assert_eq!(r.model_version.as_deref(), Some(champion.as_str()));
        let rec = &data[&(r.partition, r.offset)];
        assert_eq!(r.prediction, expected_prediction(&lin, rec));
        let c = r.challenger.as_ref().unwrap();
        assert_eq!(c.model_version, challenger);
        assert_eq!(c.prediction, expected_prediction(&tree, rec));
    }

    // The figures, recomputed from the results topic.
    let diffs: Vec<f64> = results
        .iter()
        .map(|r| {
            let c = r.challenger.as_ref().unwrap();
            (r.prediction.as_f64().unwrap() - c.prediction.as_f64().unwrap()).abs()
        })
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let max = diffs.iter().copied().fold(0.0, f64::max);
    let champion_us = results.iter().map(|r| r.duration_us.unwrap()).sum::<f64>() / 300.0;
    let challenger_us = results
        .iter()
        .map(|r| r.challenger.as_ref().unwrap().duration_us)
        .sum::<f64>()
        / 300.0;
    let (status, report) = http_get(&s, "/models/wine/challenger");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["records_compared"], 300, "{report}");
    assert_eq!(report["kind"], "regression");
    assert_eq!(report["active"], true);
    assert_eq!(report["champion"]["version"], champion.as_str());
    let close =
        |got: &Value, want: f64| (got.as_f64().unwrap() - want).abs() <= 1e-9 * want.max(1.0);
    assert!(close(&report["mean_abs_diff"], mean), "{report} vs {mean}");
    assert!(close(&report["max_abs_diff"], max), "{report} vs {max}");
    assert!(close(&report["champion_latency"]["mean_us"], champion_us));
    assert!(close(
        &report["challenger_latency"]["mean_us"],
        challenger_us
    ));
    assert!(mean > 0.0, "two different models disagree somewhat");
    let (_, metrics) = http_get(&s, "/metrics");
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains("ks_challenger_records_compared{data_type=\"wine\"} 300"),
        "{metrics}"
    );
    assert!(metrics.contains("ks_challenger_mean_abs_diff{data_type=\"wine\"}"));

    // Promote: the challenger serves, nothing scores in shadow any more.
    control(&env, "wine", PROMOTE);
    // Wait for the promoted version itself: the name alone may match before the swap shows.
    assert!(
        wait_until(WAIT, || versions(&s)["serving"] == challenger.as_str()),
        "the challenger never served: {}",
        versions(&s)
    );
    assert_eq!(
        wait_serving(&s, "winequalityDesisionTreeRegression"),
        challenger
    );
    env.publish_records(300, 50);
    let after = env.wait_results(350, WAIT);
    let data = env.data_by_position();
    assert_eq!(after.len(), 350);
    // Results follow their input's partition, so the topic is not in publishing order: the
    // records published after the promote are those past each partition's earlier offsets.
    let mut seen: HashMap<i32, i64> = HashMap::new();
    for r in &results {
        let m = seen.entry(r.partition).or_insert(r.offset);
        *m = (*m).max(r.offset);
    }
    let fresh: Vec<_> = after
        .iter()
        .filter(|r| seen.get(&r.partition).is_none_or(|&m| r.offset > m))
        .collect();
    assert_eq!(fresh.len(), 50);
    for r in fresh {
        assert_eq!(r.model_version.as_deref(), Some(challenger.as_str()));
        assert!(r.challenger.is_none());
        assert_eq!(
            r.prediction,
            expected_prediction(&tree, &data[&(r.partition, r.offset)])
        );
    }
    let (_, report) = http_get(&s, "/models/wine/challenger");
    assert_eq!(report["active"], false, "{report}");
    // And a rollback brings the old champion back.
    control(&env, "wine", ROLLBACK);
    assert_eq!(wait_serving(&s, "winequalityLinearRegression"), champion);
}

#[test]
fn the_policy_promotes_an_agreeing_classifier_by_itself() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = env.config(StoreVariant::Standard, dir.path());
    config.lifecycle.promote_policy = Some(PromotePolicy {
        after_records: 100,
        min_agreement: 0.3,
        max_mean_abs_diff: 0.0,
    });
    let s = Server::start(config).unwrap();
    send(
        &env,
        &model_message("winequalityDecisionTreeClassification.pmml"),
        &[],
    );
    let champion = wait_serving(&s, "winequalityDecisionTreeClassification");
    send(
        &env,
        &model_message("winequalityRandonForrestClassification.pmml"),
        &[(ROLE_HEADER, CHALLENGER.as_bytes())],
    );
    assert!(wait_until(WAIT, || versions(&s)["challenger"]["status"]
        == "challenger"));
    let challenger = versions(&s)["challenger"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    env.publish_records(0, 100);
    // The 100th compared record passes the policy: the server publishes the promote itself.
    assert_eq!(
        wait_serving(&s, "winequalityRandonForrestClassification"),
        challenger
    );
    let results = env.wait_results(100, WAIT);
    let shadow = shadowed(&results);
    assert_eq!(shadow.len(), 100);
    let equal = shadow
        .iter()
        .filter(|r| r.prediction == r.challenger.as_ref().unwrap().prediction)
        .count();
    let (_, report) = http_get(&s, "/models/wine/challenger");
    assert_eq!(report["kind"], "classification", "{report}");
    assert_eq!(report["champion"]["version"], champion.as_str());
    assert_eq!(report["promotion_requested"], true);
    assert_eq!(report["records_compared"], 100);
    let agreement = report["agreement"].as_f64().unwrap();
    assert!(
        (agreement - equal as f64 / 100.0).abs() < 1e-12,
        "{report} vs {equal}"
    );
    assert!(agreement >= 0.3);
    // The promotion went through the model topic, as an operator's would.
    let promotes = env
        .read(&env.topics.models)
        .into_iter()
        .filter(|m| m.payload == ks_proto::control::descriptor("wine").encode_to_vec())
        .count();
    assert_eq!(promotes, 1);
}

#[test]
fn drift_rises_when_records_come_from_a_shifted_distribution() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = env.config(StoreVariant::Standard, dir.path());
    config.lifecycle.drift = DriftOptions {
        baseline: 200,
        window: 200,
    };
    let s = Server::start(config).unwrap();
    send(
        &env,
        &model_message("winequalityLinearRegression.pmml"),
        &[],
    );
    wait_serving(&s, "winequalityLinearRegression");
    let drift = || http_get(&s, "/models/wine/drift").1;
    let psi = |field: &str| {
        drift()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == field)
            .unwrap()["psi"]
            .as_f64()
    };
    // The baseline, then the same records again: no drift.
    env.publish_records(0, 200);
    assert_eq!(env.wait_results(200, WAIT).len(), 200);
    assert_eq!(drift()["baseline_complete"], true, "{}", drift());
    env.publish_records(0, 200);
    assert!(wait_until(WAIT, || drift()["fields"][0]["window"]["count"] == 200));
    let steady = drift()["max_psi"].as_f64().unwrap();
    assert!(steady < 0.01, "{}", drift());

    // The same rows with more alcohol and sulphates: those fields drift, pH does not.
    let rows = wine_rows();
    for r in rows.iter().take(200) {
        let mut f = r.features();
        f[9] *= 1.5;
        f[10] += 2.0;
        let shifted = WineRecord::from_features(f, "wine");
        env.publisher
            .send(&env.topics.data, None, &shifted.encode_to_vec())
            .unwrap();
    }
    env.publisher.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(env.wait_results(600, WAIT).len(), 600);
    assert!(wait_until(WAIT, || drift()["records"] == 600));
    let report = drift();
    assert!(psi("alcohol").unwrap() > 1.0, "{report}");
    assert!(psi("sulphates").unwrap() > 0.25, "{report}");
    assert!(psi("pH").unwrap() < 0.01, "{report}");
    let alcohol = report["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "alcohol")
        .unwrap();
    let rise =
        alcohol["window"]["mean"].as_f64().unwrap() - alcohol["baseline"]["mean"].as_f64().unwrap();
    assert!((rise - 2.0).abs() < 1e-9, "{report}");
    let (_, metrics) = http_get(&s, "/metrics");
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("ks_drift_psi{data_type=\"wine\",field=\"alcohol\"}"),
        "{metrics}"
    );
}
