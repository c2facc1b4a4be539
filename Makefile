# Two commands matter: `make run` (local Airflow + Postgres) and `make test` (the whole suite).
# Everything installs itself into .venv from the pinned locks; nothing needs Docker.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
export PYTHONPATH := $(CURDIR)

DAG ?= taxi_to_postgres
SERVICE ?= yellow
MONTH ?=
FROM ?=
TO ?=

.PHONY: venv run test month backfill lint format lock clean bench

venv: $(VENV)/.synced

$(VENV)/.synced: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --python $(PY) --compile-bytecode requirements.txt requirements-dev.txt
	touch $@

run: venv
	$(PY) -m dev.local run

test: venv
	$(PY) -m pytest

month: venv
	@test -n "$(MONTH)" || (echo "usage: make month DAG=taxi_to_postgres SERVICE=yellow MONTH=2021-01" && exit 2)
	$(PY) -m dev.local month $(DAG) $(SERVICE) $(MONTH)

backfill: venv
	@test -n "$(FROM)" -a -n "$(TO)" || (echo "usage: make backfill DAG=taxi_to_postgres FROM=2021-01 TO=2021-03 [SERVICE=yellow]" && exit 2)
	$(PY) -m dev.local backfill $(DAG) $(FROM) $(TO) $(if $(filter command line,$(origin SERVICE)),$(SERVICE),)

# Load-path benchmark (not a test): writes bench/results/latest.{json,md,png}.
# Options via BENCH_ARGS, e.g. make bench BENCH_ARGS="--repeats 5" or "--quick".
BENCH_ARGS ?=
bench: venv
	$(PY) -m bench.run $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Re-pin after editing requirements.in / requirements-dev.in (needs the PyPI registry).
lock: venv
	$(VENV)/bin/uv pip compile requirements.in --python-version 3.11 --excludes excludes.txt -o requirements.txt
	$(VENV)/bin/uv pip compile requirements-dev.in -c requirements.txt --python-version 3.11 -o requirements-dev.txt

clean:
	rm -rf .airflow .pytest_cache .ruff_cache
