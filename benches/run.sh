#!/usr/bin/env bash
# The one command of the benchmark: installs what the build needs (scripts/setup.sh, idempotent),
# builds ks-bench, ks-server and as-server in release into the same target directory (ks-bench finds
# the servers next to itself), and runs ks-bench with the given arguments.
#   benches/run.sh                      # every mode, 500 000 records, local broker
#   benches/run.sh --records 20000      # a quick run
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh >&2
cargo build --release -p ks-bench -p ks-topologies -p ks-reactive >&2
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$target/release/ks-bench" "$@"
