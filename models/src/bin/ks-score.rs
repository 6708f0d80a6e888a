//! `ks-score`: scores a CSV file with a PMML, TensorFlow or ONNX model.
//!
//! ```text
//! ks-score --model FILE [--type pmml|tensorflow|onnx] --input CSV [--output CSV] [--bench N [--repeats R]]
//! ```
//!
//! Without `--type` the extension decides: `.pb` TensorFlow, `.onnx` ONNX, else PMML. An ONNX
//! model's output columns are `<output>[<i>]`, one per element of each graph output
//! (`label[0]`, `probabilities[0]` …).
//!
//! The input CSV has a header naming the fields (extra columns are ignored; `,` or `;`
//! separated). The header is bound to the model's inputs once ([`ks_models::Bound`]) and the
//! cells of numeric inputs are parsed once, so scoring reads each record by position. The
//! output has one row per input row with the model's output columns.
//!
//! `--bench N` then times, R times (`--repeats`, default 1), N passes over all rows of: the
//! generic API (`Bound::score_batch_into`, records given by field name, one reused output
//! batch) and, when every input cell is a number or empty, the fast path (`Model::score_row`
//! per row, the rows in input-field order). Times are CPU time of the scoring thread (a shared
//! machine's descheduling does not count). It prints
//! `bench: {"records":..,"passes":N,"generic_ns":[..],"score_row_ns":[..]}` (ns per record,
//! one value per repeat) and `ns/record: <median of generic_ns>` last.

use std::io::Write;
use std::process::ExitCode;

use ks_models::{Model, ModelType, Prediction, Value};

struct Args {
    model: String,
    model_type: Option<ModelType>,
    input: String,
    output: Option<String>,
    bench: Option<u32>,
    repeats: u32,
}

const USAGE: &str =
    "usage: ks-score --model FILE [--type pmml|tensorflow|onnx] --input CSV [--output CSV] [--bench N [--repeats R]]";

fn parse_args() -> Result<Args, String> {
    let mut model = None;
    let mut model_type = None;
    let mut input = None;
    let mut output = None;
    let mut bench = None;
    let mut repeats = 1;
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
            "--repeats" => {
                let n = value("--repeats")?;
                repeats = n
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| format!("--repeats takes a count > 0, not `{n}`"))?;
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
        repeats,
    })
}

/// A CSV file: its header (field names) and its cells row-major.
struct Table {
    fields: Vec<String>,
    cells: Vec<String>,
}

fn read_table(path: &str) -> Result<Table, String> {
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
    let fields: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let mut cells = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| format!("{path}: {e}"))?;
        if row.len() != fields.len() {
            return Err(format!(
                "{path}: row {} has {} cells, the header {}",
                i + 1,
                row.len(),
                fields.len()
            ));
        }
        cells.extend(row.iter().map(|c| c.trim().to_string()));
    }
    Ok(Table { fields, cells })
}

/// The cells as values: empty is missing; a cell of a field the model reads as a number is
/// parsed once here (text that is no number stays text, for the model to judge).
fn values(model: &Model, table: &Table) -> Vec<Value> {
    let numeric = model.numeric_inputs();
    let numeric_field: Vec<bool> = table
        .fields
        .iter()
        .map(|f| {
            model
                .input_fields()
                .iter()
                .zip(&numeric)
                .any(|(name, n)| *n && name == f)
        })
        .collect();
    table
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let is_numeric = numeric_field
                .get(i % table.fields.len().max(1))
                .copied()
                .unwrap_or(false);
            match (c.is_empty(), is_numeric, c.parse::<f64>()) {
                (true, _, _) => Value::Missing,
                (false, true, Ok(x)) => Value::Number(x),
                _ => Value::text(c),
            }
        })
        .collect()
}

/// CPU time of the calling thread, in ns.
fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn bench(
    model: &Model,
    table: &Table,
    rows: &[Value],
    passes: u32,
    repeats: u32,
) -> Result<(), String> {
    let records = rows.len() / table.fields.len().max(1);
    if records == 0 || passes == 0 {
        return Err("--bench needs at least one input row and N > 0".into());
    }
    let bound = model.bind(&table.fields);
    // The fast path's rows, in input-field order, when every input cell is a number or empty.
    let width = model.input_fields().len();
    let mut fast: Option<Vec<f64>> = Some(Vec::with_capacity(records * width));
    for record in rows.chunks_exact(table.fields.len()) {
        for col in bound.columns() {
            let x = match col.and_then(|c| record.get(c)) {
                None | Some(Value::Missing) => f64::NAN,
                Some(Value::Number(x)) => *x,
                Some(Value::Text(_)) => {
                    fast = None;
                    break;
                }
            };
            if let Some(f) = fast.as_mut() {
                f.push(x);
            }
        }
    }
    let mut out: Vec<Prediction> = Vec::new();
    // Warm-up: one pass of each.
    bound
        .score_batch_into(rows, &mut out)
        .map_err(|e| e.to_string())?;
    if let Some(f) = &fast {
        for row in f.chunks_exact(width.max(1)) {
            std::hint::black_box(model.score_row(row).map_err(|e| e.to_string())?);
        }
    }
    let per_record = |start: f64| (thread_cpu_ns() - start) / (passes as f64 * records as f64);
    let mut generic = Vec::new();
    let mut score_row = Vec::new();
    for _ in 0..repeats {
        let start = thread_cpu_ns();
        for _ in 0..passes {
            bound
                .score_batch_into(std::hint::black_box(rows), &mut out)
                .map_err(|e| e.to_string())?;
            std::hint::black_box(&out);
        }
        generic.push(per_record(start));
        if let Some(f) = &fast {
            let start = thread_cpu_ns();
            for _ in 0..passes {
                for row in f.chunks_exact(width.max(1)) {
                    let p = model
                        .score_row(std::hint::black_box(row))
                        .map_err(|e| e.to_string())?;
                    std::hint::black_box(p);
                }
            }
            score_row.push(per_record(start));
        }
    }
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "bench: {{\"records\":{records},\"passes\":{passes},\"generic_ns\":[{}],\"score_row_ns\":[{}]}}",
        list(&generic),
        list(&score_row)
    );
    println!("ns/record: {:.1}", median(&generic));
    Ok(())
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
    let table = read_table(&args.input)?;
    let rows = values(&model, &table);
    let mut predictions = Vec::new();
    if !rows.is_empty() {
        model
            .bind(&table.fields)
            .score_batch_into(&rows, &mut predictions)
            .map_err(|e| e.to_string())?;
    }

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
        bench(&model, &table, &rows, n, args.repeats)?;
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
