#!/usr/bin/env bash
# The Parquet encoder on its own, judged at the format level: fixtures written by the Swift suite (every type,
# nulls, lists, dictionaries that overflow, several row groups, every codec) read by pyarrow, fastparquet, DuckDB
# and polars, and Snappy samples decoded by cramjam. Env: PYTHON (venv with those packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
PARQUET_CHECK_PYTHON="$PYTHON" exec sh scripts/checks/parquet_format_check.sh
