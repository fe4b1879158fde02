# winback — `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUST_SOURCES := $(shell find rust -name '*.rs' -o -name 'Cargo.toml') Cargo.toml Cargo.lock pyproject.toml
export CARGO_TERM_COLOR ?= never

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.deps: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.built: $(VENV)/.deps $(RUST_SOURCES)
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --quiet
	touch $@

venv: $(VENV)/.deps ## create .venv with the pinned dependencies

build: $(VENV)/.built ## build the Rust extension (release) into .venv

demo: build ## score the bundled CDNOW sample; outputs in ./winback-demo/
	$(BIN)/winback demo -o winback-demo

lint: build ## ruff, mypy, rustfmt, clippy
	$(BIN)/ruff check python tests benches scripts
	$(BIN)/ruff format --check python tests benches scripts
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest winback._winback
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

test: build lint browser-check postgres-check ## everything: lint, cargo test, pytest (browser, PostgreSQL, Spark)
	cargo test -p winback-core --quiet
	$(BIN)/python -m pytest

test-fast: build ## pytest without the browser, Spark/Dask and slow tests (a quick loop)
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-fast} $(BIN)/python -m pytest -q \
		-m "not browser and not spark and not slow"

browser: ## install Debian's chromium for the report's browser tests (apt-get; root or sudo)
	@bash scripts/ensure_chromium.sh

# CI (CI=true) installs Chromium; on a contributor's machine nothing is installed behind their
# back: without Chromium the browser tests are skipped and this says how to get them.
browser-check:
	@if [ -n "$$CI" ]; then bash scripts/ensure_chromium.sh; \
	elif ! command -v chromium >/dev/null 2>&1; then \
		echo "note: chromium is not installed, so the report's browser tests will be skipped;" \
		     "'make browser' installs it (Debian's package, through apt-get)" >&2; \
	fi

postgres: ## install Debian's postgresql for the loop's state tests (apt-get; root or sudo)
	@bash scripts/ensure_postgres.sh

# The same for PostgreSQL: CI installs the server package (the tests start their own cluster);
# elsewhere the PostgreSQL variants of the loop's tests are skipped without it.
postgres-check:
	@if [ -n "$$CI" ]; then bash scripts/ensure_postgres.sh; \
	elif ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then \
		echo "note: PostgreSQL is not installed, so the loop's PostgreSQL tests will be skipped;" \
		     "'make postgres' installs it (Debian's package, through apt-get)" >&2; \
	fi

bench: build ## benchmark silence scoring against Polars and DuckDB (size S)
	$(BIN)/python benches/bench_silence.py --size S

bench-models: build ## summary + model fits vs lifetimes (size S; run `make bench-env` first)
	$(BIN)/python benches/bench_models.py --size S

bench-value: build ## winback.value on 1M customers × 24 months vs a Polars panel (size S)
	$(BIN)/python benches/bench_value.py --size S

bench-spill: build ## larger than memory: winback score vs DuckDB, 8GB limit (50M rows; ~3 GB disk)
	$(BIN)/python benches/bench_spill.py --customers 3333333 --memory-limit 8GB

bench-spark: build ## winback.spark and winback.dask vs local winback, rows/s per core (≈ 3M rows)
	$(BIN)/python benches/bench_spark.py --customers 200000

.venv-bench/.deps: requirements-bench.txt
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -r requirements-bench.txt
	touch $@

bench-env: .venv-bench/.deps ## the competitors' environment (lifetimes) for the benchmarks

format: $(VENV)/.deps ## format Python and Rust sources
	$(BIN)/ruff format python tests benches scripts
	$(BIN)/ruff check --fix python tests benches scripts
	cargo fmt --all

clean: ## remove build outputs and the virtualenv
	rm -rf $(VENV) .venv-bench target winback-demo

.PHONY: help venv build demo lint test test-fast browser browser-check postgres postgres-check bench bench-models bench-value bench-spill bench-spark bench-env format clean
