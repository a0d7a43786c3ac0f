#!/usr/bin/env bash
# Parquet, judged by its readers: every test database exported, every value read back by DuckDB equal to SQLite's,
# pyarrow and polars agreeing on rows, types as the mappings say, LIST<INT64> edges equal to the text column,
# try_summary equal to the summary recomputed in Python from the raw tables.
# Env: PARSL_EXPORT (binary), PYTHON (venv with duckdb, pyarrow, polars).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for db in Tests/Fixtures/databases/*.db; do
    name=$(basename "$db" .db)
    for codec in snappy zstd gzip none; do
        "$PARSL_EXPORT" parquet "$db" -o "$tmp/$name-$codec" --compression "$codec" --quiet
    done
    "$PYTHON" scripts/checks/parquet_values.py "$db" "$tmp/$name-snappy" || status=1
    # The other codecs must decode to the same data.
    "$PYTHON" - "$tmp/$name" <<'PY' || status=1
import sys, pyarrow.parquet as pq, glob, os
base = sys.argv[1]
for f in glob.glob(base + "-snappy/*.parquet"):
    t = pq.read_table(f)
    for codec in ("zstd", "gzip", "none"):
        other = pq.read_table(f.replace("-snappy/", f"-{codec}/"))
        assert t.equals(other), (f, codec)
PY
done
exit $status
