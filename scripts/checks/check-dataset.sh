#!/usr/bin/env bash
# The dataset command, judged by DuckDB, polars, pyarrow.dataset and Spark: a dataset of every fixture database, a
# generated multi-run database and a run id that needs escaping; then a database added, an unfinished run grown, an
# unchanged re-run, a failing database and a held lock, each step read back by all four against SQLite.
# Env: PARSL_EXPORT (binary), PYTHON (venv with duckdb, polars, pyarrow, pyspark; java 17 on PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Spark runs in local mode on the loopback interface only.
export SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$PYTHON"
"$PYTHON" scripts/synth-db -o "$tmp/synth-a.db" --tasks 1500 --runs 3 --seed 11 >/dev/null 2>&1
"$PYTHON" scripts/synth-db -o "$tmp/synth-b.db" --tasks 1000 --runs 2 --seed 12 >/dev/null 2>&1
"$PYTHON" scripts/synth-db -o "$tmp/grow-full.db" --tasks 800 --runs 1 --seed 13 >/dev/null 2>&1
# Parsl's run ids are UUIDs; this one holds the characters Hive escapes in partition values.
cp Tests/Fixtures/databases/parsl-2026.10.26-threads.db "$tmp/weird.db"
"$PYTHON" - "$tmp/weird.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
(old,) = con.execute("SELECT run_id FROM workflow").fetchone()
for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
    con.execute(f'UPDATE "{table}" SET run_id = ? WHERE run_id = ?', ("site a/run 7%=x:#1", old))
con.commit()
PY
"$PYTHON" scripts/checks/dataset/check_dataset.py "$PARSL_EXPORT" "$tmp" Tests/Fixtures/databases/*.db -- \
    "$tmp/synth-a.db" "$tmp/weird.db" "$tmp/synth-b.db" "$tmp/grow-full.db"
