#!/usr/bin/env bash
# Regenerates the DSL golden files engine/tests/golden/dsl/<case>.json from the checked-in inputs
# engine/tests/golden/dsl/inputs/<case>.json by running every case (or the cases named as
# arguments) through Kafka Streams' own TopologyTestDriver.
#
# Builds the oracle (pom.xml next to this script) into .ks/kstreams-oracle/ of the checkout: the
# application jar plus its runtime jars in build/libs/. Idempotent: a finished build is marked with
# a stamp of the pom and the sources and reused; Maven runs offline (-o) first and goes online only
# when its local repository lacks something. Installs Java 17 and Maven from Debian when missing.
# The Rust tests read the checked-in goldens and never need this script.
# Usage: regenerate.sh [case ...]          rewrite the goldens (all cases, or those named)
#        regenerate.sh --check [case ...]  fail (with a diff) when a checked-in golden is stale
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dest="${KS_ORACLE_DIR:-$root/.ks/kstreams-oracle}"
build="$dest/build"
golden="$root/engine/tests/golden/dsl"

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  echo "kstreams-oracle: installing openjdk-17-jdk-headless and maven" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
fi

stamp="$(cd "$root" && find scripts/kstreams-oracle/pom.xml scripts/kstreams-oracle/src -type f -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if ! { [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ] \
  && [ -f "$build/ks-kstreams-oracle.jar" ]; }; then
  mkdir -p "$dest"
  rm -f "$dest/.complete"
  # A changed dependency list must not leave old jars on the classpath.
  rm -rf "$build/libs"
  mvn_args=(-q -B -Dstyle.color=never -f "$here/pom.xml" -Dks.build.dir="$build" package)
  if ! mvn -o "${mvn_args[@]}" >"$dest/build.log" 2>&1; then
    echo "kstreams-oracle: resolving from Maven Central (offline build failed; see $dest/build.log)" >&2
    mvn "${mvn_args[@]}" >"$dest/build.log" 2>&1 || { cat "$dest/build.log" >&2; exit 1; }
  fi
  ls "$build/ks-kstreams-oracle.jar" "$build/libs"/kafka-streams-test-utils-*.jar >/dev/null
  echo "$stamp" > "$dest/.complete"
fi

run() { java -cp "$build/ks-kstreams-oracle.jar:$build/libs/*" dev.ks.oracle.Main "$@"; }
if [ "${1:-}" = "--check" ]; then
  # Regenerates into a scratch copy and fails when a checked-in golden differs from the oracle.
  shift
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  cp -r "$golden/inputs" "$scratch/inputs"
  run "$scratch" "$@"
  status=0
  for f in "$scratch"/*.json; do
    if ! diff -u "$golden/$(basename "$f")" "$f"; then
      status=1
    fi
  done
  [ "$status" = 0 ] && echo "kstreams-oracle: every golden file equals Kafka Streams' output" >&2
  exit "$status"
fi
run "$golden" "$@"
