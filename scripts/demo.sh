#!/usr/bin/env bash
# `make demo`: upscale the shipped example photo with the bundled default model, on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
mkdir -p demo-output
"$BIN/gantool" plugins list
"$BIN/gantool" models list
if ! "$BIN/gantool" --help | grep -q upscale; then
  echo "the super-resolution plugin is not installed yet: no 'upscale' verb (see docs/index.md)" >&2
  exit 1
fi
"$BIN/gantool" upscale examples/coffee.png -o demo-output --suffix _x4 --overwrite
echo "wrote demo-output/coffee_x4.png"
