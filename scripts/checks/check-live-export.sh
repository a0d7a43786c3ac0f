#!/usr/bin/env bash
# Exports while Parsl writes: replays the real 2026.10.26 HTEX run into a fresh file, one small commit per change
# in the order Parsl's database manager writes (scripts/lib/replay.py), and runs `trace` and `parquet --tables try`
# again and again (at least 40 exports, fixed seed). Every export must hold every try committed before it started.
# Then 40 `all` exports, each of which must also agree with itself across its formats.
#
# Environment (scripts/test sets both):
#   PARSL_EXPORT  the parsl-export binary to test (default: .build/release/parsl-export)
#   PYTHON        a Python with pyarrow (default: .venv/bin/python)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PARSL_EXPORT="${PARSL_EXPORT:-$ROOT/.build/release/parsl-export}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PARSL_EXPORT" ] || { echo "check-live-export: no parsl-export binary at $PARSL_EXPORT" >&2; exit 1; }
"$PYTHON" "$ROOT/scripts/checks/live_export.py" "$PARSL_EXPORT" \
    "$ROOT/Tests/Fixtures/databases/parsl-2026.10.26-htex.db" --exports 40 --seed 13 --parquet
# `all` during the replay: each export also agrees with itself (trace, try, try_summary, Prometheus task counts).
"$PYTHON" "$ROOT/scripts/checks/live_export.py" "$PARSL_EXPORT" \
    "$ROOT/Tests/Fixtures/databases/parsl-2026.10.26-htex.db" --exports 40 --seed 14 --all
