//! `ks-score`: scores a CSV file with a PMML, TensorFlow or ONNX model.
//!
//! ```text
//! ks-score --model FILE [--type pmml|tensorflow|onnx] --input CSV [--output CSV] [--bench N]
//! ```
//!
//! Without `--type` the extension decides: `.pb` TensorFlow, `.onnx` ONNX, else PMML. An ONNX
//! model's output columns are `<output>[<i>]`, one per element of each graph output
//! (`label[0]`, `probabilities[0]` …).
//!
//! The input CSV has a header naming the fields (extra columns are ignored; `,` or `;`
//! separated). The output has one row per input row with the model's output columns.
//! `--bench N` scores all rows N more times after a warm-up pass and prints
//! `ns/record: <value>` last.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use ks_models::{Model, ModelType, Record, Value};

struct Args {
    model: String,
    model_type: Option<ModelType>,
    input: String,
    output: Option<String>,
    bench: Option<u32>,
}

const USAGE: &str =
    "usage: ks-score --model FILE [--type pmml|tensorflow|onnx] --input CSV [--output CSV] [--bench N]";

fn parse_args() -> Result<Args, String> {
    let mut model = None;
    let mut model_type = None;
    let mut input = None;
    let mut output = None;
    let mut bench = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--model" => model = Some(value("--model")?),
            "--type" => {
                let t = value("--type")?;
                model_type = Some(t.parse::<ModelType>().map_err(|e| e.to_string())?);
            }
            "--input" => input = Some(value("--input")?),
            "--output" => output = Some(value("--output")?),
            "--bench" => {
                let n = value("--bench")?;
                bench = Some(
                    n.parse()
                        .map_err(|_| format!("--bench takes a count, not `{n}`"))?,
                );
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Args {
        model: model.ok_or_else(|| format!("--model is required\n{USAGE}"))?,
        model_type,
        input: input.ok_or_else(|| format!("--input is required\n{USAGE}"))?,
        output,
        bench,
    })
}

fn read_records(path: &str) -> Result<Vec<Record>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let first = text.lines().next().unwrap_or("");
    // The tutorial's wine CSV is `;` separated; exported goldens use `,`.
    let delimiter = if first.contains(';') && !first.contains(',') {
        b';'
    } else {
        b','
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| format!("{path}: {e}"))?.clone();
    let mut records = Vec::new();
    for row in rdr.records() {
        let row = row.map_err(|e| format!("{path}: {e}"))?;
        records.push(
            header
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.trim().to_string(), Value::from_cell(v.trim())))
                .collect(),
        );
    }
    Ok(records)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let model_type = args.model_type.unwrap_or(if args.model.ends_with(".pb") {
        ModelType::Tensorflow
    } else if args.model.ends_with(".onnx") {
        ModelType::Onnx
    } else {
        ModelType::Pmml
    });
    let bytes = std::fs::read(&args.model).map_err(|e| format!("{}: {e}", args.model))?;
    let model =
        Model::from_bytes(model_type, &bytes).map_err(|e| format!("{}: {e}", args.model))?;
    let records = read_records(&args.input)?;
    let predictions = model.score_batch(&records).map_err(|e| e.to_string())?;

    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| format!("{p}: {e}"))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(out);
    w.write_record(model.output_fields())
        .map_err(|e| e.to_string())?;
    for p in &predictions {
        w.write_record(p.values().iter().map(|v| v.to_string()))
            .map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())?;
    drop(w);

    if let Some(n) = args.bench {
        if records.is_empty() || n == 0 {
            return Err("--bench needs at least one input row and N > 0".into());
        }
        let start = Instant::now();
        for _ in 0..n {
            let r = model.score_batch(&records).map_err(|e| e.to_string())?;
            std::hint::black_box(r);
        }
        let ns = start.elapsed().as_nanos() as f64 / (n as f64 * records.len() as f64);
        println!("ns/record: {ns:.1}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-score: {e}");
            ExitCode::FAILURE
        }
    }
}
