#!/usr/bin/env bash
# The trace writer's JSON string escaper against Python's json module: a Swift test writes at least 100k random
# strings (all of Unicode, controls, quotes, backslashes, and raw bytes that are not UTF-8) with their escaped
# literals; scripts/checks/json_escape_roundtrip.py parses every literal back and compares.
#
# Environment (scripts/test sets it): PYTHON, any Python 3 (default: .venv/bin/python, else python3).
# Runs `swift test` for one test; after scripts/test's own `swift test` that builds nothing new. The seed is fixed
# (13) so that a run can be repeated; TRACE_JSON_ROUNDTRIP_SEED picks another.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
CORPUS="$(mktemp "${TMPDIR:-/tmp}/parsl-export-json-escape.XXXXXX")"
trap 'rm -f "$CORPUS"' EXIT

SEED="${TRACE_JSON_ROUNDTRIP_SEED:-13}"
echo "check-json-escape: seed $SEED"

cd "$ROOT"
TRACE_JSON_ROUNDTRIP_FILE="$CORPUS" TRACE_JSON_ROUNDTRIP_COUNT=100000 TRACE_JSON_ROUNDTRIP_SEED="$SEED" \
    swift test --filter 'TraceEventEscapeTests/writeRoundTripCorpus' > "$CORPUS.log" 2>&1 || {
    tail -n 20 "$CORPUS.log" >&2
    rm -f "$CORPUS.log"
    echo "check-json-escape: the Swift corpus writer failed" >&2
    exit 1
}
rm -f "$CORPUS.log"
[ -s "$CORPUS" ] || { echo "check-json-escape: the Swift test wrote no corpus (was it skipped?)" >&2; exit 1; }
"$PYTHON" "$ROOT/scripts/checks/json_escape_roundtrip.py" "$CORPUS" 100000
