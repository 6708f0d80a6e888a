//! `ks-bench`: see the crate docs and `benches/README.md`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match ks_bench::bench::run(ks_bench::cli::Options::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
