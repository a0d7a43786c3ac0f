#!/usr/bin/env bash
# `all` writes what the single commands write: for two real databases, every file of `all -o A` (CSV, Parquet,
# traces, Prometheus textfile) equals, byte for byte, the same file from `csv`, `parquet`, `trace` and
# `prometheus` run one by one; the textfile but for its one line of the exporter's own read time. A third pass gives
# every command the same reading options (--immutable, --batch-size, --busy-timeout, --timezone, --latest): the
# outputs stay equal. (That the first three reach the metrics reader, which leaves no trace in the bytes, is
# tested in Swift: ExportSettingsTests.)
#
# Then the same bytes from run to run: a trace is written by two threads at once, and a synthetic database large
# enough that each writes many chunks (20,000 tasks: 35 MB of JSON, about a quarter of it counters) gives
# the same trace three times over, as JSON and as Perfetto protobuf, gzipped and not, and the same under `all`
# (which reads it from its copy of the streamed tables, or from the database when only some tables are streamed).
#
# Environment (scripts/test sets it): PARSL_EXPORT, the binary (default: .build/release/parsl-export); PYTHON, for
# scripts/synth-db (default: .venv/bin/python).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PARSL_EXPORT="${PARSL_EXPORT:-$ROOT/.build/release/parsl-export}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/parsl-export-all.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "check-all-equals-singles: $*" >&2; exit 1; }
[ -x "$PARSL_EXPORT" ] || fail "no parsl-export binary at $PARSL_EXPORT"

steady() { grep -v -e '^parsl_export_scrape_duration_seconds ' -e '^parsl_export_newest_row_age_seconds ' "$1"; }
OPTIONS=(--immutable --batch-size 100 --busy-timeout 2000 --timezone Europe/Paris --latest)
for pass in parsl-2026.10.26-htex parsl-2024.1.22-htex parsl-2026.10.26-htex+options; do
    name="${pass%+options}"
    options=()
    [ "$pass" = "$name" ] || options=("${OPTIONS[@]}")
    db="$ROOT/Tests/Fixtures/databases/$name.db"
    all="$WORK/$pass/all" single="$WORK/$pass/single"
    "$PARSL_EXPORT" all "$db" -o "$all" -q ${options[@]+"${options[@]}"}
    "$PARSL_EXPORT" csv "$db" -o "$single/csv" -q ${options[@]+"${options[@]}"}
    "$PARSL_EXPORT" parquet "$db" -o "$single/parquet" -q ${options[@]+"${options[@]}"}
    "$PARSL_EXPORT" trace "$db" -o "$single/trace/" -q ${options[@]+"${options[@]}"}
    "$PARSL_EXPORT" prometheus "$db" -o "$single/parsl.prom" -q ${options[@]+"${options[@]}"}
    files=$(cd "$all" && find . -type f | sort)
    [ "$files" = "$(cd "$single" && find . -type f | sort)" ] || fail "$pass: all and the single commands wrote different files"
    count=0
    for file in $files; do
        if [ "$file" = ./parsl.prom ]; then
            cmp -s <(steady "$all/$file") <(steady "$single/$file") || fail "$pass: $file differs"
        else
            cmp -s "$all/$file" "$single/$file" || fail "$pass: $file differs"
        fi
        count=$((count + 1))
    done
    [ "$count" -ge 18 ] || fail "$pass: only $count files"
    echo "check-all-equals-singles: $pass: $count files equal"
done
# The options changed what was written: the zone moved every timestamp.
! cmp -s "$WORK/parsl-2026.10.26-htex/all/csv/try.csv.gz" "$WORK/parsl-2026.10.26-htex+options/all/csv/try.csv.gz" \
    || fail "--timezone changed nothing under all"

db="$WORK/synth-20k.db"
"$PYTHON" "$ROOT/scripts/synth-db" -o "$db" --tasks 20000 --seed 11 >/dev/null
run="$(sqlite3 "$db" 'select run_id from workflow')"
for name in trace.json trace.json.gz trace.pftrace trace.pftrace.gz; do
    format=json
    case "$name" in *pftrace*) format=perfetto ;; esac
    for attempt in 1 2 3; do
        mkdir -p "$WORK/repeat/$attempt"
        "$PARSL_EXPORT" trace "$db" -o "$WORK/repeat/$attempt/$name" --format "$format" -q
    done
    size=$(wc -c < "$WORK/repeat/1/$name")
    # Each thread hands over chunks of 1 MiB: tens of them make an interleaving that depends on timing likely.
    [ "$name" != trace.json ] || [ "$size" -gt 30000000 ] ||
        fail "$name: only $size bytes, too few for both threads to write many chunks"
    cmp -s "$WORK/repeat/1/$name" "$WORK/repeat/2/$name" && cmp -s "$WORK/repeat/1/$name" "$WORK/repeat/3/$name" \
        || fail "$name: three exports of one database gave different bytes"
    echo "check-all-equals-singles: $name: the same $size bytes three times"
done
# Under `all` the trace reads a copy of the streamed tables; with only some tables streamed (--tables), the
# database itself. Both give trace's bytes.
for tables in all task; do
    selection=()
    [ "$tables" = all ] || selection=(--tables "$tables")
    "$PARSL_EXPORT" all "$db" -o "$WORK/repeat/all-$tables" -q ${selection[@]+"${selection[@]}"}
    cmp -s "$WORK/repeat/all-$tables/trace/trace-$run.json.gz" "$WORK/repeat/1/trace.json.gz" \
        || fail "synth-20k: all's trace (tables: $tables) differs from trace's"
    [ -z "$(find "$WORK/repeat/all-$tables" -name '.parsl-export-*')" ] || fail "synth-20k: all left a temporary file"
    echo "check-all-equals-singles: synth-20k: all's trace (tables: $tables) equals trace's"
done
