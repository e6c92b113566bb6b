#!/usr/bin/env bash
# Install gantool the way a user does (a built wheel, non-editable, into a fresh virtual environment) and
# run the bundled models from a folder outside the checkout: proof that the weights travel in the package.
#
# Steps: build the wheel and the sdist and check both carry every plugin's models/; create a fresh venv
# (no --system-site-packages: nothing of the checkout or the dev venv can leak in) and `pip install` the
# wheel with its dependencies resolved exactly as a user's pip would; then, from a temporary folder,
# `gantool models list`, `gantool upscale`, `colorize` and `translate` with no --model on a tiny image.
#
# Cost on the 2-core development machine: 75-184 s to the last check (`pip install` 49-114 s, ~5 s per
# verb), plus up to ~90 s removing the temporary venv; 2m45s wall on the last run.
# Everything is installed as a user's pip would (no borrowed site-packages, no --no-deps), except that
# torch is the CPU build (see below). Set GANTOOL_CI_SKIP_WHEEL=1
# to skip this step (for example offline); PYTHON picks the interpreter that builds and creates the venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ "${GANTOOL_CI_SKIP_WHEEL:-}" == 1 ]]; then
  echo "wheel-install: skipped (GANTOOL_CI_SKIP_WHEEL=1)"
  exit 0
fi
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON="$(command -v python3)"; fi
fi
start=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip_quiet=(--quiet --disable-pip-version-check)

echo "wheel-install: building the wheel and the sdist"
build=("$PYTHON" -m pip wheel "${pip_quiet[@]}" --no-deps -w "$work/dist" "$root")
"${build[@]}" || "${build[@]}" --no-build-isolation
(cd "$root" && "$PYTHON" -c "import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])" \
  "$work/dist" >/dev/null)
wheel=("$work"/dist/gantool-*.whl)
"$PYTHON" - "$wheel" "$work"/dist/gantool-*.tar.gz <<'EOF'
import sys, tarfile, zipfile
expected = {"gantool_superres/models/superres-x4.safetensors", "gantool_superres/models/superres-x4.md",
            "gantool_superres/models/superres-x2.safetensors", "gantool_colorize/models/colorize.safetensors",
            "gantool_cyclegan/models/cyclegan-horse2zebra.safetensors"}
in_wheel = set(zipfile.ZipFile(sys.argv[1]).namelist())
in_sdist = {name.split("/", 1)[1] for name in tarfile.open(sys.argv[2]).getnames() if "/" in name}
missing = sorted(expected - in_wheel) + sorted(f"sdist: plugins/{n}" for n in expected if f"plugins/{n}" not in in_sdist)
if missing:
    sys.exit(f"wheel-install: the packages lack bundled models: {', '.join(missing)}")
page = {f"gantool/ui/static/{name}" for name in ("index.html", "app.js", "style.css")}  # gantool serve's page
missing = sorted(page - in_wheel) + sorted(f"sdist: {n}" for n in page if n not in in_sdist)
if missing:
    sys.exit(f"wheel-install: the packages lack the web page: {', '.join(missing)}")
print("wheel-install: wheel and sdist carry the bundled models and the web page")
EOF

# torch: the CPU build (what a CPU-only CI or user installs, ~190 MB) instead of PyPI's default CUDA build
# with its ~3 GB of CUDA libraries, which took 53 s, 112 s and ~270 s to install on three runs here. It is
# taken from the local wheelhouse (pip's find-links) when one holds it, else from PyTorch's CPU index;
# GANTOOL_CI_TORCH overrides (a requirement or a wheel file; "pypi" for PyPI's default build).
torch_req="${GANTOOL_CI_TORCH:-}"
if [[ -z "$torch_req" ]]; then
  for links in ${PIP_FIND_LINKS:-} /opt/wheels; do
    found="$(ls "$links"/torch-*+cpu-cp3*.whl 2>/dev/null | sort -V | tail -1 || true)"
    if [[ -n "$found" ]]; then torch_req="$found"; break; fi
  done
fi
torch_args=()
if [[ -z "$torch_req" ]]; then
  torch_args=(--extra-index-url https://download.pytorch.org/whl/cpu)
elif [[ "$torch_req" != pypi ]]; then
  torch_args=("$torch_req")
fi
echo "wheel-install: installing the wheel with its dependencies into a fresh venv (torch: ${torch_req:-CPU index})"
install_start=$SECONDS
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install "${pip_quiet[@]}" "${wheel[0]}" "${torch_args[@]}" 2>&1 \
  | grep -v "^WARNING: Location" || true
mkdir "$work/run" && cd "$work/run"  # outside the checkout: nothing of it can be imported from here
"$work/venv/bin/python" - "$work/venv" <<'EOF' || { echo "wheel-install: the install failed"; exit 1; }
import sys
import gantool, gantool_superres
for module in (gantool, gantool_superres):  # the wheel's copy, not the checkout's
    assert module.__file__.startswith(sys.argv[1]), f"{module.__name__} imported from {module.__file__}"
EOF
echo "wheel-install: install took $((SECONDS - install_start)) s"

export GANTOOL_MODELS="" XDG_CACHE_HOME="$work/cache"  # only the bundled models may answer
bin="$work/venv/bin"
"$bin/python" - <<'EOF'
import numpy as np
from gantool.image.io import Image, write_image
rng = np.random.default_rng(0)
write_image("photo.png", Image(rng.random((20, 26, 3)).astype(np.float32)))
write_image("gray.png", Image(rng.random((20, 26, 1)).astype(np.float32)))
hole = np.zeros((20, 26, 1), np.float32)
hole[6:12, 8:16] = 1.0
write_image("mask.png", Image(hole))
EOF
"$bin/gantool" models list --json > models.json
"$bin/python" - <<'EOF'
import json, sys
listed = {entry["name"]: entry for entry in json.load(open("models.json"))}
wanted = ["superres-x4", "superres-x2", "superres-x4-gan", "colorize", "cyclegan-horse2zebra", "inpaint", "inpaint-faces",
          "lapgan-faces32"]
bad = [name for name in wanted if name not in listed or not listed[name]["summary"] or listed[name]["error"]]
if bad:
    sys.exit(f"wheel-install: `gantool models list` lacks (or has no summary for): {', '.join(bad)}")
print(f"wheel-install: models list shows {len(listed)} models, e.g. superres-x4: {listed['superres-x4']['summary']}")
EOF
for run in "upscale photo.png" "colorize gray.png" "translate photo.png" "inpaint photo.png --mask mask.png"; do
  # shellcheck disable=SC2086  # two words on purpose: the verb and its input
  if ! "$bin/gantool" $run -o "out/${run%% *}" --device cpu --workers 0 > run.log 2>&1; then
    cat run.log; echo "wheel-install: \`gantool $run\` failed"; exit 1
  fi
done
if ! "$bin/gantool" generate -n 2 --seed 1 -o out/generate --device cpu > run.log 2>&1; then
  cat run.log; echo "wheel-install: \`gantool generate\` failed"; exit 1
fi
"$bin/python" - <<'EOF'
import sys
from pathlib import Path
from gantool.image.io import read_image
expected = {"upscale/photo.png": (80, 104, 3), "colorize/gray.png": (20, 26, 3), "translate/photo.png": (20, 26, 3),
            "inpaint/photo.png": (20, 26, 3), "generate/lapgan-seed1-0001.png": (64, 64, 3)}
for name, shape in expected.items():
    path = Path("out") / name
    if not path.is_file():
        sys.exit(f"wheel-install: {path} was not written")
    if read_image(path).color.shape != shape:
        sys.exit(f"wheel-install: {path} is {read_image(path).color.shape}, expected {shape}")
print("wheel-install: upscale, colorize, translate, inpaint and generate ran on the bundled models outside "
      "the checkout")
EOF
echo "wheel-install: done in $((SECONDS - start)) s"
