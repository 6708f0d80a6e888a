//! The hot path's result writer ([`ResultJson`]) gives byte for byte the JSON of the
//! [`ScoreResult`] with the same fields: for every seed model (regressions and classifiers
//! with probabilities) on rows of the data set, unscored results, strings that need escaping,
//! non-finite numbers and a challenger's shadow prediction.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_models::{Model, ModelType};
use ks_proto::WineRecord;
use ks_serving::result::ResultJson;
use ks_serving::{Origin, ScoreResult, ServedModel, ShadowPrediction};
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn wines() -> Vec<WineRecord> {
    let csv = std::fs::read_to_string(data().join("winequality_red.csv")).unwrap();
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| WineRecord::from_csv_line(l, "wine").unwrap())
        .collect()
}

fn models() -> Vec<ServedModel> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pmml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let model = Model::from_bytes(ModelType::Pmml, &std::fs::read(p).unwrap()).unwrap();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            ServedModel::new("wine", &name, "", "3:1042", 0, model)
        })
        .chain(std::iter::once({
            // The graph: nine classes, probabilities with every digit of an f32 widened.
            let bytes = std::fs::read(data().join("optimized_WineQuality.pb")).unwrap();
            let model = Model::from_bytes(ModelType::Tensorflow, &bytes).unwrap();
            ServedModel::new("wine", "graph", "", "3:1043", 0, model)
        }))
        .collect()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn scored_results_equal_serde_for_every_seed_model() {
    let wines = wines();
    let models = models();
    assert_eq!(models.len(), 8);
    let mut with_probabilities = 0;
    for m in &models {
        for (i, w) in wines.iter().enumerate().step_by(7) {
            let origin = Origin {
                topic: "wine-data".into(),
                partition: (i % 4) as i32,
                offset: i as i64 * 1_000_003,
            };
            let (scored, elapsed) = m.score_wine(w);
            let prediction = scored.unwrap();
            let micros = elapsed.as_nanos() as f64 / 1000.0 + 0.125;
            let mut want = ScoreResult::unscored(&w.data_type, &origin);
            want.scored_by(m, &prediction, micros);
            with_probabilities += usize::from(!want.probabilities.is_empty());
            let got = ResultJson {
                scored: Some((m, &prediction, micros)),
                ..ResultJson::new(&w.data_type, &origin.topic, origin.partition, origin.offset)
            };
            let want = serde_json::to_vec(&want).unwrap();
            assert_eq!(
                text(&got.to_vec().unwrap()),
                text(&want),
                "{} row {i}",
                m.name
            );
        }
    }
    assert!(
        with_probabilities > 0,
        "no classifier among the seed models"
    );
}

#[test]
fn unscored_and_awkward_results_equal_serde() {
    let origin = Origin {
        topic: "a \"quoted\"\\topic\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f} é ☃ 😀".into(),
        partition: -1,
        offset: i64::MAX,
    };
    let data_type = "type\u{0}with\u{1b}controls\"";
    let mut want = ScoreResult::unscored(data_type, &origin);
    want.error = Some("no model: \"x\"\n".into());
    let got = ResultJson {
        error: want.error.as_deref(),
        ..ResultJson::new(data_type, &origin.topic, origin.partition, origin.offset)
    };
    assert_eq!(
        text(&got.to_vec().unwrap()),
        text(&serde_json::to_vec(&want).unwrap())
    );

    // Non-finite and extreme scoring times, and a challenger beside the served prediction.
    let models = models();
    let (m, ch) = (&models[0], &models[1]);
    let w = &wines()[0];
    let prediction = m.score_wine(w).0.unwrap();
    let shadow = ch.score_wine(w).0;
    let challenger = ShadowPrediction::of(ch, &shadow, 2.5);
    for micros in [f64::NAN, f64::INFINITY, 0.0, 1e-300, 1e21, 123456.789] {
        let mut want = ScoreResult::unscored(&w.data_type, &origin);
        want.scored_by(m, &prediction, micros);
        want.challenger = Some(challenger.clone());
        let got = ResultJson {
            scored: Some((m, &prediction, micros)),
            challenger: Some(&challenger),
            ..ResultJson::new(&w.data_type, &origin.topic, origin.partition, origin.offset)
        };
        assert_eq!(
            text(&got.to_vec().unwrap()),
            text(&serde_json::to_vec(&want).unwrap()),
            "{micros}"
        );
    }

    // Written after what a reused buffer already holds.
    let mut buf = b"[".to_vec();
    ResultJson::new("wine", &origin.topic, origin.partition, origin.offset)
        .write(&mut buf)
        .unwrap();
    let want = serde_json::to_vec(&ScoreResult::unscored("wine", &origin)).unwrap();
    assert_eq!(&buf[1..], &want[..]);
}

/// A classifier whose labels do not come in string order ("9" before "10"): written sorted,
/// as the struct's map has them.
#[test]
fn class_labels_out_of_string_order_are_written_sorted() {
    let pmml = r#"<PMML version="4.3" xmlns="http://www.dmg.org/PMML-4_3">
  <Header/>
  <DataDictionary numberOfFields="2">
    <DataField name="alcohol" optype="continuous" dataType="double"/>
    <DataField name="quality" optype="categorical" dataType="string">
      <Value value="9"/><Value value="10"/><Value value="8"/>
    </DataField>
  </DataDictionary>
  <TreeModel functionName="classification">
    <MiningSchema>
      <MiningField name="alcohol"/>
      <MiningField name="quality" usageType="target"/>
    </MiningSchema>
    <Output>
      <OutputField name="probability(9)" optype="continuous" dataType="double" feature="probability" value="9"/>
      <OutputField name="probability(10)" optype="continuous" dataType="double" feature="probability" value="10"/>
      <OutputField name="probability(8)" optype="continuous" dataType="double" feature="probability" value="8"/>
    </Output>
    <Node score="9">
      <True/>
      <ScoreDistribution value="9" recordCount="5"/>
      <ScoreDistribution value="10" recordCount="3"/>
      <ScoreDistribution value="8" recordCount="2"/>
    </Node>
  </TreeModel>
</PMML>"#;
    let model = Model::from_bytes(ModelType::Pmml, pmml.as_bytes()).unwrap();
    let m = ServedModel::new("wine", "unordered", "", "0:1", 0, model);
    let w = &wines()[0];
    let prediction = m.score_wine(w).0.unwrap();
    let labels: Vec<&str> = prediction.probabilities().map(|(l, _)| l).collect();
    assert!(labels.windows(2).any(|w| w[0] > w[1]), "{labels:?}");
    let origin = Origin {
        topic: "t".into(),
        partition: 0,
        offset: 1,
    };
    let mut want = ScoreResult::unscored(&w.data_type, &origin);
    want.scored_by(&m, &prediction, 1.5);
    let got = ResultJson {
        scored: Some((&m, &prediction, 1.5)),
        ..ResultJson::new(&w.data_type, &origin.topic, origin.partition, origin.offset)
    };
    let got = got.to_vec().unwrap();
    assert_eq!(text(&got), text(&serde_json::to_vec(&want).unwrap()));
    assert!(
        text(&got).contains(r#""probabilities":{"10":0.3,"8":0.2,"9":0.5}"#),
        "{}",
        text(&got)
    );
}
