#!/usr/bin/env bash
# Property test of the Prometheus/OpenMetrics escaping: random HELP texts and label values (all of
# Unicode, control characters, quotes, backslashes, newlines) written by the Swift writer
# (Tests/FormatTests/ExpositionRoundTripTests.swift) and parsed back by prometheus_client's text and
# OpenMetrics parsers must come back equal; the text file must also pass Go's parser (promtool).
#
# Environment (set by scripts/test): PYTHON = a python with prometheus_client installed.
# PARSL_EXPORT is not used here. Optional: EXPOSITION_ROUNDTRIP_CASES (default 100000),
# EXPOSITION_ROUNDTRIP_SEED (replay a failure; the seed is printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PYTHON:?set PYTHON to a python that has prometheus_client}"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

if ! EXPOSITION_ROUNDTRIP_DIR="$dir" swift test --filter ExpositionRoundTripTests >"$dir/swift-test.log" 2>&1; then
    tail -n 40 "$dir/swift-test.log"
    echo "FAIL: the Swift side of the round trip did not run" >&2
    exit 1
fi
for f in roundtrip.prom roundtrip.om roundtrip.expected; do
    [[ -s "$dir/$f" ]] || { echo "FAIL: $f was not written (was the test skipped?)" >&2; exit 1; }
done

"$PYTHON" scripts/checks/exposition_roundtrip.py "$dir"

# Go's text parser: rc 1 is a parse error. Lint (rc 3) is expected only for the cases whose HELP is
# all whitespace (the writer then omits HELP); any other lint message fails.
rc=0
promtool check metrics <"$dir/roundtrip.prom" >"$dir/promtool.out" 2>&1 || rc=$?
others=$(grep -v ' no help text$' "$dir/promtool.out" || true)
if [[ $rc -ne 0 && $rc -ne 3 ]] || [[ -n "$others" ]]; then
    head -n 20 "$dir/promtool.out"
    echo "FAIL: promtool rc=$rc on the random cases" >&2
    exit 1
fi
echo "promtool: parsed $(grep -c '^# TYPE' "$dir/roundtrip.prom") families, $(wc -l <"$dir/promtool.out") without HELP (all-whitespace HELP)"
echo "PASS exposition round trip"
