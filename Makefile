# One command each: `make demo` runs the main job on the bundled model, `make test` runs lint, types + tests.
# Both set up a virtual environment first (.venv), so they work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test test-browser lint demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,export,ui]"  # export: onnx + onnxruntime, ~10 s; ui: fastapi, uvicorn
	touch $@

lint: setup
	$(BIN)/ruff check gantool plugins tests benchmarks scripts docs/plugins/example
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q
	bash .ci/example-plugin.sh

# The page of `gantool serve` in headless Chromium (tests/test_ui_browser.py; docs/ui.md). Needs Chromium and
# its driver on PATH (Debian: apt-get install chromium chromium-driver); installs selenium into .venv, and
# fails, rather than skips, when a piece is missing.
test-browser: setup
	$(BIN)/python -m pip install --quiet "selenium>=4,<5"
	GANTOOL_BROWSER_TEST=1 $(BIN)/python -m pytest -q tests/test_ui_browser.py

demo: setup
	bash scripts/demo.sh

bench: setup
	$(BIN)/python benchmarks/bench_startup.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
