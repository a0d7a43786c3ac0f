#!/usr/bin/env bash
# `serve` against hostile clients (scripts/lib/http_check.py): malformed requests, oversized headers, slowloris,
# 300 slow request bodies, 1000 concurrent scrapes, path traversal, non-GET methods, CONNECT and Upgrade requests
# followed by a stream, fds and RSS over 10 000 scrapes, loopback-only default bind. Prints the figures; exits 1 on
# any failure. About a minute, mostly waiting for the 30 s idle timeout.
#
# Environment (set by scripts/test): PARSL_EXPORT = the built binary, PYTHON = a python with prometheus_client.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
: "${PARSL_EXPORT:?set PARSL_EXPORT to the parsl-export binary}"
: "${PYTHON:?set PYTHON to a python that has prometheus_client}"
# 1000 concurrent clients plus the server's own sockets.
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ] && ulimit -n 4096

WORK="$(mktemp -d "${TMPDIR:-/tmp}/http-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# A copy, so nothing the server does can touch the fixture.
cp "$ROOT/Tests/Fixtures/databases/parsl-2026.10.26-htex.db" "$WORK/monitoring.db"
chmod u+w "$WORK/monitoring.db"
"$PYTHON" "$ROOT/scripts/lib/http_check.py" "$PARSL_EXPORT" "$WORK/monitoring.db"
