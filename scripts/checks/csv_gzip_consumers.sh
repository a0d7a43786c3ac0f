#!/usr/bin/env bash
# Runs csv_gzip_consumers.py (gzip, pandas and LibreOffice read a .csv.gz from CSVWriter + GzipWriter)
# in the repository's .venv, creating it with pandas and openpyxl when missing. From the repository root:
#   scripts/checks/csv_gzip_consumers.sh [--dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ ! -x "$root/.venv/bin/python" ]] || ! "$root/.venv/bin/python" -c 'import pandas, openpyxl' 2>/dev/null; then
    python3 -m venv "$root/.venv"
    "$root/.venv/bin/pip" install --quiet pandas openpyxl
fi
exec "$root/.venv/bin/python" "$root/scripts/checks/csv_gzip_consumers.py" "$@"
