#!/usr/bin/env bash
# One model, three descriptions of a try: for every test database (the real fixtures, a crashed run, two runs in one
# file), `all` writes try_summary (Parquet), the JSON traces and the Prometheus textfile, and `trace --format
# perfetto` the protobuf traces. Per try, the final state, queue wait and run time must agree between try_summary
# read back by pyarrow, the try slices and their phases as Perfetto's trace processor reads both trace formats, and
# the histograms' counts and sums and the tries counter as prometheus_client parses them (cross_sink.py).
#
# Environment (scripts/test sets both):
#   PARSL_EXPORT  the binary (default: .build/release/parsl-export)
#   PYTHON        a Python with pyarrow, prometheus_client, viztracer, websocket-client (default: .venv/bin/python)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PARSL_EXPORT="${PARSL_EXPORT:-$ROOT/.build/release/parsl-export}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/parsl-export-cross-sink.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "check-cross-sink: $*" >&2; exit 1; }
[ -x "$PARSL_EXPORT" ] || fail "no parsl-export binary at $PARSL_EXPORT"

declare -a DATABASES=()
for db in "$ROOT"/Tests/Fixtures/databases/*.db; do DATABASES+=("$db"); done
"$PYTHON" "$ROOT/scripts/checks/trace/make_crashed_db.py" \
    "$ROOT/Tests/Fixtures/databases/parsl-2026.10.26-htex.db" "$WORK/crashed.db" 0.5
DATABASES+=("$WORK/crashed.db")
"$PYTHON" "$ROOT/scripts/synth-db" -o "$WORK/two-runs.db" --tasks 400 --runs 2 --seed 7 >/dev/null
DATABASES+=("$WORK/two-runs.db")

status=0
compared=0
for db in "${DATABASES[@]}"; do
    name="$(basename "$db" .db)"
    out="$WORK/$name"
    "$PARSL_EXPORT" all "$db" -o "$out/all" --quiet || fail "parsl-export all failed on $db"
    "$PARSL_EXPORT" trace "$db" -o "$out/perfetto/" --format perfetto --quiet ||
        fail "parsl-export trace --format perfetto failed on $db"
    tries="$("$PYTHON" -c "import pyarrow.parquet as pq, sys; print(pq.read_metadata(sys.argv[1]).num_rows)" \
        "$out/all/parquet/try_summary.parquet")"
    if [ "$tries" -eq 0 ]; then
        # Databases of the eras before the try table hold tasks but no tries: nothing to compare, said so.
        echo "check-cross-sink: $name: no tries (schema era without them)" >&2
        continue
    fi
    if ! "$PYTHON" "$ROOT/scripts/checks/cross_sink.py" --try-summary "$out/all/parquet/try_summary.parquet" \
        --prom "$out/all/parsl.prom" "$out"/all/trace/trace-* "$out"/perfetto/trace-* > "$WORK/$name.log"; then
        echo "check-cross-sink: $name: the sinks disagree:" >&2
        cut -c1-3000 "$WORK/$name.log" >&2
        status=1
    fi
    compared=$((compared + 1))
done
# At least the real Parsl runs must have been compared, or the check proved nothing.
[ "$compared" -ge 6 ] || fail "only $compared databases had tries to compare"
[ $status -eq 0 ] || exit 1
echo "check-cross-sink: $compared databases: try_summary, both trace formats and the histograms agree per try" >&2
