//! Any bytes must load to Ok or Err; a loaded model must score to Ok or Err.
//! Run with `cargo +nightly fuzz run onnx_load_and_score` from models/ (seed corpus:
//! the data/onnx/*.onnx files). CI runs the stable equivalent, tests/no_panic.rs.
#![no_main]

use ks_models::{Model, ModelType, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_bytes(ModelType::Onnx, data) {
        let wine = [7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4];
        let record: Record = model
            .input_fields()
            .iter()
            .zip(wine.iter().cycle())
            .map(|(n, v)| (n.clone(), *v))
            .collect();
        let _ = model.score(&record);
        let _ = model.score(&Record::new());
    }
});
