#!/usr/bin/env bash
# Builds the Kafka Streams peer of ks-bench (pom.xml next to this script) into .ks/kstreams/ of the
# checkout: build/ks-kstreams-peer.jar and its runtime jars in build/libs/. Idempotent: a finished
# build is marked with a stamp of the pom, the sources and the .proto files, and reused; Maven runs
# offline (-o) first and goes online only when its local repository lacks something.
# Prints the classpath to run it with (java -cp "$(build.sh)" dev.ks.kstreams.Main ...).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dest="${KS_KSTREAMS_DIR:-$root/.ks/kstreams}"
build="$dest/build"
stamp="$(cd "$root" && find benches/peers/kafka-streams/pom.xml benches/peers/kafka-streams/src proto/proto \
  -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
classpath="$build/ks-kstreams-peer.jar:$build/libs/*"
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ] \
  && [ -f "$build/ks-kstreams-peer.jar" ]; then
  echo "$classpath"
  exit 0
fi
command -v java >/dev/null || { echo "kstreams peer: java (17+) is needed" >&2; exit 1; }
command -v mvn >/dev/null || { echo "kstreams peer: mvn is needed to build it" >&2; exit 1; }
mkdir -p "$dest"
rm -f "$dest/.complete"
# A changed dependency list must not leave old jars on the classpath.
rm -rf "$build/libs"
mvn_args=(-q -B -Dstyle.color=never -f "$here/pom.xml" -Dks.build.dir="$build" package)
if ! mvn -o "${mvn_args[@]}" >"$dest/build.log" 2>&1; then
  echo "kstreams peer: resolving from Maven Central (offline build failed; see $dest/build.log)" >&2
  mvn "${mvn_args[@]}" >"$dest/build.log" 2>&1 || { cat "$dest/build.log" >&2; exit 1; }
fi
ls "$build/ks-kstreams-peer.jar" "$build/libs"/kafka-streams-*.jar >/dev/null
echo "$stamp" > "$dest/.complete"
echo "$classpath"
