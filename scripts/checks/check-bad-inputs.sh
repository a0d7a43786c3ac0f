#!/usr/bin/env bash
# Every export command on every bad input (scripts/make-bad-inputs): a correct export or one documented error
# line, never a crash, hang, partial output or modified source. Needs PARSL_EXPORT and PYTHON (see scripts/test).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
: "${PARSL_EXPORT:?set PARSL_EXPORT to the parsl-export binary}"
PYTHON="${PYTHON:-python3}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bad-inputs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" "$ROOT/scripts/make-bad-inputs" "$WORK/corpus"
"$PYTHON" "$ROOT/scripts/lib/check_bad_inputs.py" "$PARSL_EXPORT" "$WORK/corpus" "$@"
