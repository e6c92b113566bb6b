#!/usr/bin/env bash
# Prepare a GPU lease: the device machine receives the working tree and at most 64 MiB in all.
#
# The tracked files are about 46 MB (bundled models, docs images), and the device image lacks kornia. So this
# switches to a throwaway branch without the models, docs images and example photos (about 2 MB left), and
# fills the ignored .gpu/ folder with the wheels the device installs offline (gantool built from that branch,
# kornia and kornia_rs for CPython 3.12). Put the packed data (scripts/pack_images.py) and any --init files
# under .gpu/ too, then pass carry [".gpu"] with the command this prints. Afterwards: the last lines.
#
# Usage: scripts/lease_kit.sh [BRANCH]      (run from the repository root, with .venv built)
set -euo pipefail

branch=${1:-lease}
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "lease_kit: commit or stash your changes first (the kit switches branches)" >&2
    exit 1
fi
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude

git switch -q -c "$branch"
git ls-files -z 'docs/images/*' '*.safetensors' 'examples/*.png' 'examples/*.jpg' | xargs -0 -r git rm -q
git commit -q --no-verify -m "lease kit: without bundled models and images"

mkdir -p .gpu/whl
rm -f .gpu/whl/gantool-*.whl
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl kornia==0.9.0 kornia_rs==0.2.0
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w .gpu/whl .
rm -rf build ./*.egg-info

tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
kit=$(du -sb .gpu | cut -f1)
echo "tracked files $((tracked / 1048576)) MiB + .gpu $((kit / 1048576)) MiB (the limit is 64 MiB in all)"
cat <<'EOF'
device command (carry [".gpu"]):
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .gpu/whl/*.whl && export PYTHONPATH=/tmp/site; python3 scripts/timed_training.py --out $OUT ...
afterwards:
EOF
echo "  git switch main && git branch -D $branch"
