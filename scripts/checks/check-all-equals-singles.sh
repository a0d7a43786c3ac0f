#!/usr/bin/env bash
# `all` writes what the single commands write: for two real databases, every file of `all -o A` (CSV, Parquet,
# traces, Prometheus textfile) equals, byte for byte, the same file from `csv`, `parquet`, `trace` and
# `prometheus` run one by one; the textfile but for its one line of the exporter's own read time. A third pass gives
# every command the same reading options (--immutable, --batch-size, --busy-timeout, --timezone, --latest): the
# outputs stay equal. Two more give each command its own output options (gzip level and threads, BOM, raw text,
# Parquet codec and row groups, the trace's format, clock, window and event limit, the metrics' labels, buckets,
# window and OpenMetrics) and `all` all of them, then --no-gzip: the files stay equal, and differ from the defaults. (That the first three reach the metrics reader, which leaves no trace in the bytes, is
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
# Each single command's own output options, and `all` with all of them: they reach the same sink under `all`.
CSV_OPTIONS=(--level 1 --bom --raw --threads 1)
PARQUET_OPTIONS=(--compression zstd --row-group-size 100)
TRACE_OPTIONS=(--format perfetto --absolute --since 2 --until 40 --max-events 100000)
PROMETHEUS_OPTIONS=(--labels app,run_id --run-time-buckets 0.5,5,50 --queue-wait-buckets 0.1,1 --recent-window 30 --openmetrics)
for pass in parsl-2026.10.26-htex parsl-2024.1.22-htex parsl-2026.10.26-htex+options parsl-2026.10.26-htex+outputs \
    parsl-2026.10.26-htex+plain; do
    name="${pass%+*}"
    options=() csv=() parquet=() trace=() prometheus=() all=()
    case "$pass" in
    *+options) options=("${OPTIONS[@]}") ;;
    *+outputs)
        csv=("${CSV_OPTIONS[@]}") parquet=("${PARQUET_OPTIONS[@]}") prometheus=("${PROMETHEUS_OPTIONS[@]}")
        # The trace takes the gzip options from the CSV ones under `all`.
        trace=("${TRACE_OPTIONS[@]}" --level 1 --threads 1)
        all=("${CSV_OPTIONS[@]}" "${PARQUET_OPTIONS[@]}" "${TRACE_OPTIONS[@]}" "${PROMETHEUS_OPTIONS[@]}") ;;
    *+plain) csv=(--no-gzip) trace=(--no-gzip) all=(--no-gzip) ;;
    esac
    db="$ROOT/Tests/Fixtures/databases/$name.db"
    out="$WORK/$pass/all" single="$WORK/$pass/single"
    "$PARSL_EXPORT" all "$db" -o "$out" -q ${options[@]+"${options[@]}"} ${all[@]+"${all[@]}"}
    "$PARSL_EXPORT" csv "$db" -o "$single/csv" -q ${options[@]+"${options[@]}"} ${csv[@]+"${csv[@]}"}
    "$PARSL_EXPORT" parquet "$db" -o "$single/parquet" -q ${options[@]+"${options[@]}"} ${parquet[@]+"${parquet[@]}"}
    "$PARSL_EXPORT" trace "$db" -o "$single/trace/" -q ${options[@]+"${options[@]}"} ${trace[@]+"${trace[@]}"}
    "$PARSL_EXPORT" prometheus "$db" -o "$single/parsl.prom" -q ${options[@]+"${options[@]}"} \
        ${prometheus[@]+"${prometheus[@]}"}
    files=$(cd "$out" && find . -type f | sort)
    [ "$files" = "$(cd "$single" && find . -type f | sort)" ] || fail "$pass: all and the single commands wrote different files"
    count=0
    for file in $files; do
        if [ "$file" = ./parsl.prom ]; then
            cmp -s <(steady "$out/$file") <(steady "$single/$file") || fail "$pass: $file differs"
        else
            cmp -s "$out/$file" "$single/$file" || fail "$pass: $file differs"
        fi
        count=$((count + 1))
    done
    [ "$count" -ge 18 ] || fail "$pass: only $count files"
    echo "check-all-equals-singles: $pass: $count files equal"
done
# The output options changed what `all` wrote: a protobuf trace, a BOM, OpenMetrics, plain files, another level.
plain="$WORK/parsl-2026.10.26-htex+plain/all" outputs="$WORK/parsl-2026.10.26-htex+outputs/all"
[ -n "$(find "$outputs/trace" -name '*.pftrace.gz')" ] || fail "--format perfetto wrote no protobuf trace under all"
[ "$(gzip -dc "$outputs/csv/task.csv.gz" | head -c 3 | od -An -tx1 | tr -d ' ')" = efbbbf ] || fail "--bom wrote no BOM under all"
[ "$(tail -n 1 "$outputs/parsl.prom")" = "# EOF" ] || fail "--openmetrics wrote no OpenMetrics under all"
[ -f "$plain/csv/task.csv" ] && [ -n "$(find "$plain/trace" -name '*.json' ! -name '*.gz')" ] \
    || fail "--no-gzip left gzipped CSV or trace files under all"
! cmp -s <(gzip -dc "$WORK/parsl-2026.10.26-htex/all/csv/task.csv.gz") <(gzip -dc "$outputs/csv/task.csv.gz" | tail -c +4) \
    || ! cmp -s "$WORK/parsl-2026.10.26-htex/all/csv/try.csv.gz" "$outputs/csv/try.csv.gz" \
    || fail "--level changed nothing under all"
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
