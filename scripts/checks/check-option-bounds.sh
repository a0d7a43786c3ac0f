#!/usr/bin/env bash
# Every option of every command that takes a value, given hostile numbers (huge, tiny, negative, NaN, infinite,
# past Int64, empty): a run that works, or exit 64 with one line on stderr and nothing written; never a crash.
# Needs PARSL_EXPORT and PYTHON (see scripts/test).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
: "${PARSL_EXPORT:?set PARSL_EXPORT to the parsl-export binary}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" "$ROOT/scripts/lib/check_option_bounds.py" "$PARSL_EXPORT" "$ROOT/Tests/Fixtures/databases/parsl-2026.10.26-htex.db"
