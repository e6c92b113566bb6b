#!/usr/bin/env bash
# `make demo`: upscale the shipped example photo 4x with the bundled default model, on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
"$BIN/gantool" models list
"$BIN/gantool" upscale examples/coffee.png -o demo-output --suffix _x4 --overwrite
echo "wrote demo-output/coffee_x4.png (2400x1600), from examples/coffee.png (600x400)"
