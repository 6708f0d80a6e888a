#!/usr/bin/env bash
# The main job: a broker on 127.0.0.1:9092 (unless one answers there already), the provider
# publishing wine records and models, and a reader printing what arrives. Ctrl-C stops all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release -p ks-broker -p ks-client
bin="${CARGO_TARGET_DIR:-$root/target}/release"
brokers="${KS_BROKERS:-127.0.0.1:9092}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if ! (exec 3<>"/dev/tcp/${brokers%:*}/${brokers##*:}") 2>/dev/null; then
  "$bin/ks-broker" --port "${brokers##*:}" &
  pids+=($!)
  sleep 1
fi
"$bin/ks-client" --brokers "$brokers" provide --interval-ms "${KS_INTERVAL_MS:-1000}" &
pids+=($!)
sleep 2
echo "demo: reading models_data (Ctrl-C stops broker, provider and reader)"
"$bin/ks-client" --brokers "$brokers" read --topic models_data
