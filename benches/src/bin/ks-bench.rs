//! `ks-bench`: see the crate docs and `benches/README.md`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = ks_bench::cli::Options::parse();
    let result = match (
        &opts.copy_from,
        &opts.copy_to,
        opts.copy_expected,
        &opts.brokers,
    ) {
        (Some(from), Some(to), Some(n), Some(brokers)) => {
            ks_bench::copier::run_child(brokers, from, to, n)
        }
        _ => ks_bench::bench::run(opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
