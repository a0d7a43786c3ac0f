#!/usr/bin/env bash
# Prometheus output checked by its real consumers, on every database in Tests/Fixtures/databases/:
#   promtool (rc 0, no lint), node_exporter's textfile collector (scrape_error 0, no level=error),
#   prometheus_client's text and OpenMetrics parsers on the file and on scraped bodies, values equal to
#   SQLite's (computed by Python from the database), `serve` routes, a real Prometheus server scraping `serve`
#   every second (query API values = SQLite counts), and a live test (a writer appends while `serve` follows,
#   longest commit wait < 100 ms, missing/locked/replaced file).
#
# Environment (set by scripts/test): PARSL_EXPORT = the built binary, PYTHON = a python with prometheus_client.
# Needs promtool, prometheus and prometheus-node-exporter (Debian packages prometheus, prometheus-node-exporter).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PARSL_EXPORT:?set PARSL_EXPORT to the parsl-export binary}"
: "${PYTHON:?set PYTHON to a python that has prometheus_client}"
for tool in promtool prometheus prometheus-node-exporter; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
shopt -s nullglob
databases=(Tests/Fixtures/databases/*.db)
((${#databases[@]})) || { echo "FAIL: no databases in Tests/Fixtures/databases" >&2; exit 1; }
exec "$PYTHON" scripts/checks/prom/check_prometheus.py "$PARSL_EXPORT" "${databases[@]}"
