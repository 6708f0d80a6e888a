#!/usr/bin/env bash
# Installs the JPMML-Evaluator scoring harness (models/benches/jpmml/JpmmlBench.java) into
# .ks/jpmml/<wheel version>/ of this checkout: the jars of the pinned PyPI wheel `jpmml_evaluator`
# (JPMML-Evaluator 1.7.7 and JPMML-Transpiler 1.5.1 with their dependencies, shipped in the wheel's
# `dependencies/` folder; no Python package is installed) and the harness compiled with javac.
# Idempotent: a finished install is marked with .complete (wheel version + source hash) and reused.
# Prints the classpath to run the harness with (`java -cp "$(scripts/install-jpmml.sh)" JpmmlBench`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version=0.16.0
src="$root/models/benches/jpmml/JpmmlBench.java"
dest="${KS_JPMML_DIR:-$root/.ks/jpmml}/$version"
stamp="$version $(sha256sum "$src" | cut -c1-16)"
classpath() { echo "$dest/classes:$dest/libs/*"; }
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ]; then
  classpath
  exit 0
fi
command -v javac >/dev/null || { echo "install-jpmml: javac (JDK 17+) is needed" >&2; exit 1; }
mkdir -p "$dest"
if [ ! -f "$dest/libs/pmml-transpiler-1.5.1.jar" ]; then
  tmp="$(mktemp -d "$dest/.wheel.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "jpmml_evaluator==$version" >&2
  wheel="$(ls "$tmp"/jpmml_evaluator-"$version"-*.whl)"
  python3 - "$wheel" "$tmp/libs" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir()
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith("jpmml_evaluator/dependencies/") and n.endswith(".jar"):
            (out / pathlib.Path(n).name).write_bytes(z.read(n))
PY
  ls "$tmp/libs/pmml-evaluator-1.7.7.jar" "$tmp/libs/pmml-transpiler-1.5.1.jar" >/dev/null
  rm -rf "$dest/libs"
  mv "$tmp/libs" "$dest/libs"
fi
rm -rf "$dest/classes"
mkdir -p "$dest/classes"
javac -nowarn -d "$dest/classes" -cp "$dest/libs/*" "$src" >&2
echo "$stamp" > "$dest/.complete"
classpath
