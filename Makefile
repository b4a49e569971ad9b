# ReckAI: `make run` serves the API on an embedded stack; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit integration venv migrate worker bench bench-e2e bench-cli bench-formats bench-reports bench-dashboard bench-streams bench-search lint clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m compileall -q src/reckai
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	RECKAI_MODE=$${RECKAI_MODE:-embedded} $(BIN)/reckai serve

test: $(STAMP)
	$(BIN)/python -m pytest tests

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

migrate: $(STAMP)
	$(BIN)/reckai migrate

worker: $(STAMP)
	$(BIN)/reckai worker

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingestion.py
	$(BIN)/python benchmarks/bench_matching.py

# Issue 13's target: `reckai reconcile` on 1M x 1M rows vs a VLOOKUP-style polars script, 3 runs each.
# The sources' bytecode is compiled first, as `pip install` of the package compiles it: the editable
# install does not, and with PYTHONDONTWRITEBYTECODE set every run would compile ~0.05 s of it again.
bench-cli: $(STAMP)
	$(BIN)/python -m compileall -q src/reckai
	$(BIN)/python benchmarks/bench_cli.py

# Issue 6's target: 1M x 1M rows over HTTP in the production configuration (about a minute).
# Issue 18: MT940, camt.053 (100k and 1M entries) and CSV of the same rows (docs/file-formats.md).
bench-formats: $(STAMP)
	$(BIN)/python benchmarks/bench_formats.py

bench-search: $(STAMP)
	$(BIN)/python benchmarks/bench_search.py

bench-e2e: $(STAMP)
	$(BIN)/python benchmarks/bench_end_to_end.py

# Issue 14: each report type x format over a 1M x 1M job (time, peak memory) next to a plain polars
# write_csv of the same rows (docs/reports.md, "Scale"). ROWS=100000 for a quicker run.
bench-reports: $(STAMP)
	$(BIN)/python benchmarks/bench_reports.py --rows $(or $(ROWS),1000000)

# Issue 14 §3: GET /api/dashboard at 1M exceptions in one organization, p50/p95 server-side over
# 200 requests, and the rollup triggers' cost to the job's persist of 80,000 exceptions (docs/reports.md).
bench-dashboard: $(STAMP)
	$(BIN)/python benchmarks/bench_dashboard.py

# a stream of 30 daily runs of 100k x 100k rows (issue 15): median of runs 1-3 next to 28-30
bench-streams: $(STAMP)
	$(BIN)/python benchmarks/bench_streams.py

# ruff, then mypy --strict over src/ (pyproject.toml [tool.mypy]); .ci/run runs this before the tests.
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

clean:
	rm -rf var .pytest_cache .hypothesis
