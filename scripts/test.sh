#!/usr/bin/env bash
# Runs every test of the workspace (unit, behaviour, broker-backed, golden, benches in test mode,
# doc tests) after installing what they need. Tests that need a broker start their own.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
