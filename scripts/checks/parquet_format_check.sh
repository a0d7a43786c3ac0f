#!/bin/sh
# Writes the ParquetFormat fixtures with the Swift test suite, then has pyarrow, fastparquet, DuckDB,
# polars and cramjam judge them (see parquet_format_check.py). PARQUET_CHECK_PYTHON may name a
# Python that already has the packages; otherwise a .venv is made at the package root.
set -eu
cd "$(dirname "$0")/../.."
PY=${PARQUET_CHECK_PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q pyarrow polars duckdb==1.5.5 fastparquet cramjam
    PY=.venv/bin/python
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
PARQUET_FORMAT_OUT=$dir swift test --filter ParquetFixtureTests
"$PY" scripts/checks/parquet_format_check.py "$dir"
