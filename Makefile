# Everything the project needs is installed from its own files: a pinned uv in .tools/, then the locked
# environment in .venv/. Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
ARGS ?=

.PHONY: run test test-fast system-packages ui generate benchmark clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: the libraries' bytecode is compiled once, at install. Python does not write it itself where
# PYTHONDONTWRITEBYTECODE is set (as on our CI machines), and then every process compiles every module it imports
# again: importing Great Expectations took 6.6 s of CPU instead of 3 s, Dagster 1.2 s instead of 0.5 s.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock Makefile
	$(UV) sync --frozen --all-extras --compile-bytecode
	touch $@

## run: the whole pipeline (generated sample data unless ARGS="--landing DIR" is given)
run: $(VENV)/.synced
	$(BIN)/praktijkvariatie run --data-dir $(DATA_DIR) $(ARGS)

## test: the whole test suite (installs Chromium and Java from the OS packages if they are missing)
test: $(VENV)/.synced system-packages
	$(BIN)/python -m pytest -n 2 $(ARGS)

## test-fast: unit tests only
test-fast: $(VENV)/.synced
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

## system-packages: headless Chromium (dashboard browser test) and a Java runtime (Spark parity test), from the
## machine's Debian packages, installed only when missing
system-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
		echo "installing OS packages:$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
		|| echo "could not install$$missing: the tests that need them will be skipped"; \
	fi

## ui: Dagster UI + daemon and the dashboards over HTTP on localhost
ui: $(VENV)/.synced
	$(BIN)/praktijkvariatie serve --data-dir $(DATA_DIR) $(ARGS)

## generate: write a sample landing folder (ARGS="--out DIR --providers N --clients N")
generate: $(VENV)/.synced
	$(BIN)/praktijkvariatie generate $(ARGS)

## benchmark: speed and memory figures at insurer scale (ARGS="--lines 10000000")
benchmark: $(VENV)/.synced
	$(BIN)/python benchmarks/run_benchmark.py $(ARGS)

clean:
	rm -rf $(DATA_DIR) .pytest_cache
