#!/usr/bin/env bash
# A real Parsl workflow (PyPI Parsl in the venv scripts/make-example-db keeps) followed live by `serve` and
# `serve --latest`, started before the database exists, and by a real Prometheus scraping them every second; a
# second run is appended to the same file. See scripts/checks/prom/live_parsl.py for what it asserts.
#
# Environment (set by scripts/test): PARSL_EXPORT = the built binary, PYTHON = a python with prometheus_client.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PARSL_EXPORT:?set PARSL_EXPORT to the parsl-export binary}"
: "${PYTHON:?set PYTHON to a python that has prometheus_client}"
for tool in promtool prometheus; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
exec "$PYTHON" scripts/checks/prom/live_parsl.py "$PARSL_EXPORT"
