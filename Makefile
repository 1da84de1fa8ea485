# Two entry points for people: `make demo` and `make test`. Everything else is plumbing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nbtrack-installed

.PHONY: demo test test-python test-js test-browser lint setup browser clean dist

# A venv with nbtrack installed from this checkout (editable, labextension built by jlpm).
$(STAMP): pyproject.toml package.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet editables hatchling hatch-nodejs-version hatch-jupyter-builder "jupyterlab>=4,<5"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pip install --quiet --no-build-isolation -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python examples/demo.py

# A production wheel and an sdist in dist/ (what PyPI gets; pip installs the wheel with
# no Node.js). The extension is built anew with `jlpm build:prod` (minified, no source
# maps), whatever a development build left in python/nbtrack/labextension.
dist: $(STAMP)
	rm -rf dist lib tsconfig.tsbuildinfo python/nbtrack/labextension
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/hatchling build -d dist
	@! $(BIN)/python -m zipfile -l dist/*.whl | grep -q '\.js\.map ' || { echo "dist: source maps in the wheel" >&2; exit 1; }
	@ls -l dist

lint: $(STAMP)
	$(BIN)/ruff check python tests benchmarks examples tools
	$(BIN)/ruff format --check python tests benchmarks examples tools
	$(BIN)/mypy
	$(BIN)/python -m tools.check_layers

test-python: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest tests --ignore=tests/browser --durations=30

test-js: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" jlpm lint
	PATH="$(abspath $(BIN)):$$PATH" jlpm test

test-browser: $(STAMP) browser
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest tests/browser

test: lint test-python test-js test-browser

clean:
	rm -rf $(VENV) node_modules lib python/nbtrack/labextension test-output
