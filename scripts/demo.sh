#!/usr/bin/env bash
# The main job: a broker on 127.0.0.1:9092 (unless one answers there already), the provider
# publishing a wine record a second and every model in data/ in turn, and ks-server scoring
# them (KS_STORE=memory|standard|custom, default standard). KS_BROKER=kafka runs Apache Kafka
# (log directory .ks/kafka-data, kept between runs) instead of the embedded tansu. Ctrl-C stops
# everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release -p ks-broker -p ks-client -p ks-topologies
bin="${CARGO_TARGET_DIR:-$root/target}/release"
brokers="${KS_BROKERS:-127.0.0.1:9092}"
port="${KS_PORT:-8888}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if ! (exec 3<>"/dev/tcp/${brokers%:*}/${brokers##*:}") 2>/dev/null; then
  kind="${KS_BROKER:-tansu}"
  "$bin/ks-broker" --kind "$kind" --port "${brokers##*:}" --data-dir "$root/.ks/kafka-data" \
    > "$root/.ks/broker.log" 2>&1 &
  pids+=($!)
  # ks-broker prints its "listening" line once the broker answers (Kafka: its metadata).
  for _ in $(seq 1 1200); do
    grep -q "listening on" "$root/.ks/broker.log" 2>/dev/null && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$root/.ks/broker.log" >&2; exit 1; }
    sleep 0.1
  done
  cat "$root/.ks/broker.log"
fi
"$bin/ks-client" --brokers "$brokers" provide --interval-ms "${KS_INTERVAL_MS:-1000}" \
  --model-interval-s "${KS_MODEL_INTERVAL_S:-60}" > "$root/.ks/provider.log" 2>&1 &
pids+=($!)
cat <<TXT
demo: broker $brokers (${KS_BROKER:-tansu}), provider (log: .ks/provider.log), ks-server --store ${KS_STORE:-standard}
demo: look at
  curl -s http://127.0.0.1:$port/state/value        # serving statistics of the current wine model
  curl -s http://127.0.0.1:$port/models             # current model per data type
  curl -s http://127.0.0.1:$port/state/instances    # instances and their partitions
  curl -s http://127.0.0.1:$port/metrics            # Prometheus metrics
  $bin/ks-client --brokers $brokers read --topic models_results   # the results
demo: Ctrl-C stops broker, provider and server
TXT
"$bin/ks-server" --brokers "$brokers" --store "${KS_STORE:-standard}" --port "$port" \
  --state-dir "${KS_STATE_DIR:-$root/.ks/state}" --session-timeout-ms 6000
