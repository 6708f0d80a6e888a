#!/usr/bin/env bash
# Installs Apache Kafka's broker (KRaft) into .ks/kafka/<version>/libs of this checkout: the jars
# of org.apache.kafka:kafka_2.13 and its runtime dependencies, resolved from Maven Central with the
# pom kept in broker/kafka/pom.xml (mvn dependency:copy-dependencies). Idempotent: a finished
# install is marked with .complete and reused. Prints the libs directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$root/broker/kafka/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
[ -n "$version" ] || { echo "install-kafka: no kafka.version in $pom" >&2; exit 1; }
dest="${KS_KAFKA_DIR:-$root/.ks/kafka}/$version"
# The pom's hash is part of the marker, so a changed dependency list reinstalls.
stamp="$version $(sha256sum "$pom" | cut -c1-16)"
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ]; then
  echo "$dest/libs"
  exit 0
fi
command -v java >/dev/null || { echo "install-kafka: java (17+) is needed to run the broker" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install-kafka: mvn is needed to resolve the broker's jars" >&2; exit 1; }
mkdir -p "$dest"
tmp="$(mktemp -d "$dest/.libs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$tmp" >&2
ls "$tmp"/kafka_2.13-"$version".jar >/dev/null
rm -rf "$dest/libs"
mv "$tmp" "$dest/libs"
echo "$stamp" > "$dest/.complete"
echo "$dest/libs"
