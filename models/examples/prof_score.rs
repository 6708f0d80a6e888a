//! Profiling driver: `prof_score <model.pmml> <iterations>` scores the wine rows in a loop
//! through `Model::score_row` (e.g. under `valgrind --tool=callgrind`).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::hint::black_box;

use ks_models::{Model, ModelType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: prof_score <model.pmml> [iterations]")?;
    let iters: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let model = Model::from_bytes(ModelType::Pmml, &std::fs::read(&path)?)?;
    let csv = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/winequality_red.csv"),
    )?;
    let wine: Vec<Vec<f64>> = csv
        .lines()
        .map(|l| {
            l.split(';')
                .filter_map(|c| c.trim().parse().ok())
                .collect::<Vec<f64>>()
        })
        .filter(|v| v.len() >= 11)
        .collect();
    let idx: Vec<usize> = model
        .input_fields()
        .iter()
        .map(|f| {
            ks_proto::WINE_FEATURES
                .iter()
                .position(|w| w == f)
                .ok_or("field")
        })
        .collect::<Result<_, _>>()?;
    let rows: Vec<Vec<f64>> = wine
        .iter()
        .map(|r| idx.iter().map(|i| r[*i]).collect())
        .collect();
    let start = std::time::Instant::now();
    let mut sum = 0.0;
    for i in 0..iters {
        let p = model.score_row(black_box(&rows[i % rows.len()]))?;
        sum += p.as_f64().unwrap_or(0.0);
        black_box(p);
    }
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    println!("{ns:.1} ns/record (checksum {sum})");
    Ok(())
}
