//! `ks-client provide` against a real broker: what is read back equals the CSV rows and the model
//! files, and `ks-client read` decodes it.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_client::catalog::{self, default_data_dir};
use ks_client::kafka::read_topic;
use ks_proto::{Message, MessageContent, ModelDescriptor, WineRecord};
use std::process::Command;
use std::time::Duration;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

fn read_all(bootstrap: &str, topic: &str) -> Vec<ks_client::kafka::ReadMessage> {
    let mut out = Vec::new();
    read_topic(
        bootstrap,
        topic,
        true,
        Duration::from_secs(60),
        |m| {
            out.push(m);
            true
        },
        &|| false,
    )
    .unwrap();
    out
}

#[test]
fn provide_count_100_publishes_the_csv_rows_and_every_model() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let (data_topic, models_topic) = (unique("data"), unique("models"));
    let out = Command::new(env!("CARGO_BIN_EXE_ks-client"))
        .args([
            "--brokers",
            bootstrap,
            "provide",
            "--count",
            "100",
            "--interval-ms",
            "0",
        ])
        .args([
            "--model-interval-s",
            "0",
            "--data-topic",
            &data_topic,
            "--models-topic",
            &models_topic,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("published 100 records"), "{stdout}");

    // Data: exactly the first 100 rows, each partition in file order.
    let csv =
        catalog::wine_records(&default_data_dir().join("winequality_red.csv"), "wine").unwrap();
    let messages = read_all(bootstrap, &data_topic);
    assert_eq!(
        messages.len(),
        100,
        "partitions/offsets read: {:?}",
        messages
            .iter()
            .map(|m| (m.partition, m.offset))
            .collect::<Vec<_>>()
    );
    // The CSV has duplicate rows, so check a multiset equality plus per-partition order: each
    // partition, read in offset order, must be a subsequence of the first 100 rows.
    let first_100: Vec<Vec<u8>> = csv[..100].iter().map(|r| r.encode_to_vec()).collect();
    let mut expected = first_100.clone();
    let mut got: Vec<Vec<u8>> = messages.iter().map(|m| m.payload.clone()).collect();
    expected.sort();
    got.sort();
    assert!(
        got == expected,
        "the records read are not the first 100 rows"
    );
    let mut by_partition: std::collections::BTreeMap<i32, Vec<(i64, Vec<u8>)>> = Default::default();
    for m in &messages {
        let rec = WineRecord::decode(m.payload.as_slice()).unwrap();
        assert_eq!(rec.data_type, "wine");
        by_partition
            .entry(m.partition)
            .or_default()
            .push((m.offset, m.payload.clone()));
    }
    for records in by_partition.values_mut() {
        records.sort();
        let mut rows = first_100.iter();
        assert!(
            records.iter().all(|(_, r)| rows.any(|row| row == r)),
            "a partition is out of file order"
        );
    }

    // Models: every model file, with its type and its exact bytes.
    let files = catalog::models_in(&default_data_dir()).unwrap();
    let models = read_all(bootstrap, &models_topic);
    assert_eq!(models.len(), files.len());
    for (m, file) in models.iter().zip(&files) {
        let md = ModelDescriptor::decode(m.payload.as_slice()).unwrap();
        assert_eq!(md.name, file.name());
        assert_eq!(md.data_type, "wine");
        assert!(matches!(md.model_type(), Ok(t) if t == file.model_type));
        let bytes = std::fs::read(&file.path).unwrap();
        assert!(matches!(md.message_content, Some(MessageContent::Data(ref d)) if *d == bytes));
        assert_eq!(m.key.as_deref(), Some(&b"wine"[..]));
    }

    // The reader decodes both topics.
    let read = Command::new(env!("CARGO_BIN_EXE_ks-client"))
        .args([
            "--brokers",
            bootstrap,
            "read",
            "--topic",
            &data_topic,
            "--until-eof",
        ])
        .output()
        .unwrap();
    assert!(read.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 100);
    assert!(lines
        .iter()
        .all(|v| v["type"] == "WineRecord" && v["offset"].is_i64()));
    let read = Command::new(env!("CARGO_BIN_EXE_ks-client"))
        .args([
            "--brokers",
            bootstrap,
            "read",
            "--topic",
            &models_topic,
            "--until-eof",
            "--max",
            "3",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&read.stdout);
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().all(|l| l.contains("\"ModelDescriptor\"")));
}

#[test]
fn publish_model_by_value_and_by_reference() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let topic = unique("models");
    let file = default_data_dir().join("optimized_WineQuality.pb");
    for extra in [&[][..], &["--by-reference"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ks-client"))
            .args(["--brokers", broker.bootstrap_servers(), "publish-model"])
            .arg(&file)
            .args([
                "--models-topic",
                &topic,
                "--name",
                "tf",
                "--data-type",
                "red",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let models = read_all(broker.bootstrap_servers(), &topic);
    assert_eq!(models.len(), 2);
    let by_value = ModelDescriptor::decode(models[0].payload.as_slice()).unwrap();
    let by_ref = ModelDescriptor::decode(models[1].payload.as_slice()).unwrap();
    assert_eq!(
        (by_value.name.as_str(), by_value.data_type.as_str()),
        ("tf", "red")
    );
    assert!(matches!(
        by_value.model_type(),
        Ok(ks_proto::ModelType::Tensorflow)
    ));
    assert!(
        matches!(by_value.message_content, Some(MessageContent::Data(ref d)) if *d == std::fs::read(&file).unwrap())
    );
    assert!(
        matches!(by_ref.message_content, Some(MessageContent::Location(ref l))
        if std::path::Path::new(l) == std::fs::canonicalize(&file).unwrap())
    );
}

/// An ONNX model is published as `ModelType::Onnx`, named by `--type onnx` or by its extension,
/// with the file's bytes as the descriptor's data.
#[test]
fn publish_model_onnx_by_type_and_by_extension() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let topic = unique("models");
    let file = default_data_dir().join("onnx").join("onnx_logreg.onnx");
    for extra in [&["--type", "onnx"][..], &[][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ks-client"))
            .args(["--brokers", broker.bootstrap_servers(), "publish-model"])
            .arg(&file)
            .args(["--models-topic", &topic])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("(ONNX)"));
    }
    let models = read_all(broker.bootstrap_servers(), &topic);
    assert_eq!(models.len(), 2);
    for m in &models {
        let md = ModelDescriptor::decode(m.payload.as_slice()).unwrap();
        assert_eq!(md.name, "onnx_logreg");
        assert!(matches!(md.model_type(), Ok(ks_proto::ModelType::Onnx)));
        assert!(
            matches!(md.message_content, Some(MessageContent::Data(ref d)) if *d == std::fs::read(&file).unwrap())
        );
    }
}

#[test]
fn provide_starts_an_embedded_broker_when_none_answers() {
    let port = ks_broker::free_port().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ks-client"))
        .args([
            "--brokers",
            &format!("127.0.0.1:{port}"),
            "provide",
            "--count",
            "5",
        ])
        .args(["--interval-ms", "0", "--model-interval-s", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("started an embedded one"));
    assert!(stdout.contains("published 5 records"));
    // Stopped on exit: the port is free again.
    assert!(!ks_broker::is_reachable(
        &format!("127.0.0.1:{port}"),
        Duration::from_millis(300)
    ));
}
