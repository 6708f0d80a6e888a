//! A wine record is scored by position when the model's inputs are wine features, in any order
//! (bound once when the model is served): the predictions are exactly those of scoring the
//! record by field name, for every seed PMML model and every row of the data set.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_models::{Model, ModelType};
use ks_proto::WineRecord;
use ks_serving::ServedModel;
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn pmml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pmml"))
        .collect();
    v.sort();
    v
}

#[test]
fn scoring_by_position_equals_scoring_by_name() {
    let csv = std::fs::read_to_string(data().join("winequality_red.csv")).unwrap();
    let wines: Vec<WineRecord> = csv
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| WineRecord::from_csv_line(l, "wine").unwrap())
        .collect();
    assert!(wines.len() > 1500, "{} rows", wines.len());
    let mut by_position = Vec::new();
    for path in pmml_files(&data()) {
        let model = Model::from_bytes(ModelType::Pmml, &std::fs::read(&path).unwrap()).unwrap();
        let served = ServedModel::new("wine", "m", "", "0:0", 0, model);
        let Some(columns) = served.wine_columns.clone() else {
            continue;
        };
        by_position.push((path.clone(), columns));
        for (i, w) in wines.iter().enumerate() {
            let (got, _) = served.score_wine(w);
            let want = served.model.score(&ks_models::Record::from_wine(w));
            assert_eq!(
                format!("{:?}", got.unwrap()),
                format!("{:?}", want.unwrap()),
                "{} row {i}",
                path.display()
            );
        }
    }
    // Every seed model reads wine features; at least one in another order than the CSV's (the
    // case that used to build a map of named fields per record).
    assert_eq!(by_position.len(), 7, "{by_position:?}");
    assert!(
        by_position
            .iter()
            .any(|(_, c)| c.iter().copied().ne(0..c.len())),
        "{by_position:?}"
    );
}
