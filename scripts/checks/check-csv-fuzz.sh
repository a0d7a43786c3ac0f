#!/usr/bin/env bash
# Property test of CSV quoting and gzip block edges: random cells (all of Unicode, controls, quotes, separators,
# formula starts, a 200 KB cell) written by the Swift CSV writer (Tests/FormatTests/CSVFuzzExportTests.swift),
# read back by Python's csv module in strict mode: equal every time, at least 100,000 cells per file.
#
# Environment (set by scripts/test): PYTHON. Optional: CSV_FUZZ_SEED (default 13, fixed so that a run can be
# repeated; set another to explore), CSV_FUZZ_ROWS (default 30000).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
seed="${CSV_FUZZ_SEED:-13}"
cd "$ROOT"
echo "check-csv-fuzz: seed $seed"
"$PYTHON" scripts/checks/csv_fuzz_roundtrip.py --seed "$seed" --rows "${CSV_FUZZ_ROWS:-30000}"
