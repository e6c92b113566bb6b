#!/usr/bin/env bash
# Install the example third-party plugin (docs/plugins/example) into the current virtual environment and
# run its own tests from inside its folder, exactly as a plugin author would. Exits non-zero on failure.
#
# "Current venv": $VIRTUAL_ENV when one is active, else the checkout's .venv (what `make setup` builds),
# else whatever python3 is on PATH. Override with PYTHON=/path/to/python.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
example="$root/docs/plugins/example"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    PYTHON="$VIRTUAL_ENV/bin/python"
  elif [[ -x "$root/.venv/bin/python" ]]; then
    PYTHON="$root/.venv/bin/python"
  else
    PYTHON="$(command -v python3)"
  fi
fi

echo "example-plugin: installing $example with $PYTHON"
# --no-deps: gantool itself is already installed (editable) here; pip must not replace it from PyPI.
# If the isolated build environment cannot be made (no index reachable), build with the venv's setuptools.
install=("$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps -e "$example")
"${install[@]}" || "${install[@]}" --no-build-isolation

echo "example-plugin: running its tests"
cd "$example"
"$PYTHON" -m pytest -q -p no:cacheprovider

# The same plugin moved to the current import paths by `python -m gantool.upgrade` must pass with gantool's
# deprecation warnings turned into errors: proof that the new API covers everything the example uses.
echo "example-plugin: running an upgraded copy with gantool's deprecation warnings as errors"
copy="$(mktemp -d)"
trap 'rm -rf "$copy"' EXIT
cp -r "$example/gantool_sharpen" "$example/tests" "$copy/"
"$PYTHON" -m gantool.upgrade "$copy" >/dev/null
cd "$copy"
PYTHONPATH="$copy${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m pytest -q -p no:cacheprovider \
  -W "error:gantool.:DeprecationWarning"
