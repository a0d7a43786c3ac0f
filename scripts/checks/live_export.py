#!/usr/bin/env python3
"""Exports a Parsl database while it is being written: replays a real fixture into a fresh file (scripts/lib/replay.py,
one small commit per change) and runs `parsl-export trace` (and, with --parquet, `parquet --tables try`) again and
again until at least --exports exports have run. Every export must contain every try committed before it started:
a trace slice (args task and try) per try, a `try` row per try. Prints the count of exports that missed tries and
how many they missed; exits 1 if any did.

With --all, each export is `all` (every format from one read), and each must also be consistent with itself: a trace
slice for exactly the tries of its own try.parquet, a try_summary row for each of them, and Prometheus task counts
(parsl_tasks summed over states) equal to the tasks its status.parquet has a status for.

usage: live_export.py BINARY FIXTURE.db [--exports 40] [--seed 13] [--pause 0.002] [--parquet | --all]"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from replay import Replay  # noqa: E402


def trace_tries(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        document = json.load(f)
    found = set()
    for event in document["traceEvents"]:
        if event.get("ph") != "X" or event.get("cat") not in ("try", "try.not_run"):
            continue
        args = event.get("args", {})
        found.add((args["task"], args["try"]))
    return found


def parquet_tries(directory, table="try"):
    import pyarrow.parquet as pq
    table = pq.read_table(os.path.join(directory, f"{table}.parquet"), columns=["task_id", "try_id"])
    return set(zip(table.column("task_id").to_pylist(), table.column("try_id").to_pylist()))


def prometheus_tasks(path):
    from prometheus_client.parser import text_string_to_metric_families
    with open(path, encoding="utf-8") as f:
        for family in text_string_to_metric_families(f.read()):
            if family.name == "parsl_tasks":
                return int(sum(sample.value for sample in family.samples))
    return None


def all_problems(directory):
    """What one `all` export says that disagrees with itself."""
    import glob
    import pyarrow.parquet as pq
    problems = []
    tries = parquet_tries(os.path.join(directory, "parquet"))
    summary = parquet_tries(os.path.join(directory, "parquet"), "try_summary")
    traced = set()
    for path in glob.glob(os.path.join(directory, "trace", "trace-*.json.gz")):
        traced |= trace_tries(path)
    if traced != tries:
        problems.append(f"trace has {len(traced)} tries, try.parquet {len(tries)}: "
                        f"only in the trace {sorted(traced - tries)[:3]}, only in try {sorted(tries - traced)[:3]}")
    if summary != tries:
        problems.append(f"try_summary has {len(summary)} tries, try.parquet {len(tries)}")
    status = pq.read_table(os.path.join(directory, "parquet", "status.parquet"), columns=["task_id"])
    tasks_with_status = len(set(status.column("task_id").to_pylist()))
    counted = prometheus_tasks(os.path.join(directory, "parsl.prom"))
    if counted != tasks_with_status:
        problems.append(f"parsl_tasks counts {counted} tasks, status.parquet has {tasks_with_status}")
    return tries, problems


def export(binary, command, db, *options):
    """Runs one export; returns its failure as a line, or None."""
    result = subprocess.run([binary, command, db, *options], capture_output=True, text=True)
    return None if result.returncode == 0 else f"{command} exit {result.returncode}: {result.stderr.strip()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("fixture")
    parser.add_argument("--exports", type=int, default=40)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--pause", type=float, default=0.002, help="seconds between the writer's commits")
    parser.add_argument("--journal-mode", default="delete")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--parquet", action="store_true", help="also export the try table to Parquet each time")
    modes.add_argument("--all", action="store_true", help="export with `all` and check each export against itself")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="parsl-export-live.")
    exports = failed = missed_total = rounds = 0
    committed_total = 0
    errors = []
    while exports < args.exports:
        rounds += 1
        db = os.path.join(work, f"live-{rounds}.db")
        replay = Replay(args.fixture, db, pause=args.pause, seed=args.seed + rounds, journal_mode=args.journal_mode)
        replay.start()
        while not replay.done.is_set():
            before = replay.committed()
            if args.all:
                directory = os.path.join(work, f"all-{exports}")
                error = export(args.binary, "all", db, "-o", directory, "--latest", "--quiet")
                if error:
                    errors.append(error)
                    break
                exports += 1
                committed_total += len(before)
                tries, problems = all_problems(directory)
                shutil.rmtree(directory, ignore_errors=True)
                missing = before - tries
                if missing:
                    problems.append(f"lacks {len(missing)} of {len(before)} committed tries")
                    missed_total += len(missing)
                if problems:
                    failed += 1
                    print(f"export {exports} (all): " + "; ".join(problems), file=sys.stderr)
                continue
            out = os.path.join(work, "trace.json")
            error = export(args.binary, "trace", db, "-o", out, "--latest")
            if error:
                errors.append(error)
                break
            exports += 1
            committed_total += len(before)
            missing = before - trace_tries(out)
            if args.parquet:
                directory = os.path.join(work, f"parquet-{exports}")
                error = export(args.binary, "parquet", db, "-o", directory, "--tables", "try")
                if error:
                    errors.append(error)
                    break
                missing_rows = before - parquet_tries(directory)
                shutil.rmtree(directory, ignore_errors=True)
                if missing_rows:
                    print(f"export {exports}: try.parquet lacks {len(missing_rows)} of {len(before)} tries", file=sys.stderr)
                    failed += 1
            if missing:
                failed += 1
                missed_total += len(missing)
                print(f"export {exports}: trace lacks {len(missing)} of {len(before)} committed tries "
                      f"(e.g. task/try {sorted(missing)[:3]})", file=sys.stderr)
        replay.join()
        if errors:
            break
    print(f"live export: {exports} exports in {rounds} replay(s) (seed {args.seed}), {committed_total} committed "
          f"tries expected in total; {failed} exports incomplete, {missed_total} tries missed")
    shutil.rmtree(work, ignore_errors=True)
    for error in errors:
        print(f"live export: {error}", file=sys.stderr)
    return 1 if failed or errors or exports < args.exports else 0


if __name__ == "__main__":
    sys.exit(main())
