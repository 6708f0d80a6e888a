//! Randomized robustness: truncated and mutated versions of every seed PMML load to Ok or
//! Err and, when they load, score to Ok or Err — never a panic. This is what CI runs;
//! `fuzz/` holds the cargo-fuzz target for deeper runs on a nightly toolchain.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::Path;

use ks_models::{Model, ModelType, Record};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, so failures reproduce.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"/>",
    b"\"",
    b"&amp;",
    b"NaN",
    b"-INF",
    b"1e308",
    b"0",
    b"-",
    b"<Node>",
    b"</Node>",
    b"score=\"x\"",
    b"field=\"nope\"",
    b"<True/>",
    b"<!DOCTYPE a>",
    b"<![CDATA[",
    b"\xff",
];

const VALUES: &[&[u8]] = &[
    b"",
    b"0",
    b"-1",
    b"NaN",
    b"INF",
    b"-INF",
    b"1e308",
    b"abc",
    b"quality",
    b"alcohol",
    b"3",
    b"classification",
    b"regression",
    b"softmax",
    b"logit",
    b"power",
    b"isMissing",
    b"equal",
    b"lastPrediction",
    b"defaultChild",
    b"returnLastPrediction",
    b"majorityVote",
    b"max",
    b"median",
    b"string",
    b"integer",
    b"float",
    b"asMissing",
    b"asValue",
    b"categorical",
];

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        if b.is_empty() {
            break;
        }
        let at = rng.below(b.len());
        if rng.below(2) == 0 {
            // Well-formed mutation: replace one attribute value, so the evaluator itself
            // (not just the XML parser) sees odd numbers, names and ids.
            if let Some(start) = find(&b[at..], b"=\"").map(|i| at + i + 2) {
                if let Some(len) = find(&b[start..], b"\"") {
                    let v = VALUES[rng.below(VALUES.len())];
                    b.splice(start..start + len, v.iter().copied());
                }
            }
            continue;
        }
        match rng.below(5) {
            0 => b.truncate(at),
            1 => b[at] = rng.next() as u8,
            2 => {
                let end = (at + rng.below(64)).min(b.len());
                b.drain(at..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(at..at, t.iter().copied());
            }
            _ => {
                // Duplicate a chunk: repeated elements, attributes, ids.
                let end = (at + rng.below(256)).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
        }
    }
    b
}

fn records() -> Vec<Record> {
    let wine = [
        7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4,
    ];
    let full: Record = ks_proto::WINE_FEATURES
        .iter()
        .zip(wine)
        .map(|(n, v)| (*n, v))
        .collect();
    let text: Record = ks_proto::WINE_FEATURES
        .iter()
        .map(|n| (*n, "abc"))
        .collect();
    vec![full, Record::new(), text]
}

#[test]
fn mutated_seed_models_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let mut seeds: Vec<_> = [dir.clone(), dir.join("sklearn")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pmml"))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty());
    let records = records();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let (mut loaded, mut rejected) = (0, 0);
    for seed in &seeds {
        let bytes = std::fs::read(seed).expect("seed");
        // Big seeds get fewer iterations to keep the debug run quick.
        let iterations = if bytes.len() > 100_000 { 10 } else { 150 };
        for _ in 0..iterations {
            let m = mutate(&mut rng, &bytes);
            match Model::from_bytes(ModelType::Pmml, &m) {
                Ok(model) => {
                    loaded += 1;
                    for r in &records {
                        let _ = model.score(r);
                    }
                }
                Err(e) => {
                    rejected += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        // Every prefix length class: truncation anywhere must be an error, not a panic.
        for cut in (0..bytes.len()).step_by((bytes.len() / 40).max(1)) {
            assert!(Model::from_bytes(ModelType::Pmml, &bytes[..cut]).is_err());
        }
    }
    eprintln!("mutants loaded: {loaded}, rejected: {rejected}");
    assert!(rejected > 0);
}

#[test]
fn mutated_tensorflow_graph_never_panics() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/optimized_WineQuality.pb"),
    )
    .expect("graph");
    let mut rng = Rng(42);
    for _ in 0..60 {
        let m = mutate(&mut rng, &bytes);
        if let Ok(model) = Model::from_bytes(ModelType::Tensorflow, &m) {
            let _ = model.score(&records()[0]);
        }
    }
}

#[test]
fn mutated_onnx_models_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/onnx");
    let mut rng = Rng(7);
    let (mut loaded, mut rejected) = (0, 0);
    for stem in [
        "onnx_logreg",
        "onnx_decision_tree_classifier",
        "onnx_linear_regression",
    ] {
        let bytes = std::fs::read(dir.join(format!("{stem}.onnx"))).expect("onnx seed");
        for _ in 0..40 {
            let m = mutate(&mut rng, &bytes);
            match Model::from_bytes(ModelType::Onnx, &m) {
                Ok(model) => {
                    loaded += 1;
                    for r in &records() {
                        let _ = model.score(r);
                    }
                }
                Err(e) => {
                    rejected += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        for cut in (0..bytes.len()).step_by((bytes.len() / 20).max(1)) {
            let _ = Model::from_bytes(ModelType::Onnx, &bytes[..cut]);
        }
    }
    eprintln!("onnx mutants loaded: {loaded}, rejected: {rejected}");
    assert!(rejected > 0);
}
