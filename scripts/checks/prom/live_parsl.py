#!/usr/bin/env python3
"""A real Parsl workflow followed live: `serve` (all runs) and `serve --latest` start before the monitoring
database exists, a real Prometheus scrapes both every second, the workflow (parsl_workflow.py, real Parsl from
PyPI in the venv scripts/make-example-db keeps) runs twice into the same file. Asserts:
  - no "database is locked" in Parsl's logs;
  - every counter (and histogram count/bucket) of `serve`, scraped every 0.5 s, never decreases;
  - no series that belongs to nothing: no host="" under parsl_resource_*, no node or worker gauge of a finished
    run or an ended block, no resident memory once the runs are over;
  - after each run: `serve` == `prometheus` on the same file == SQLite's counts (expected.py);
  - `serve --latest` shows run 1, then only run 2 once it appears; equal to `prometheus --latest`;
  - Prometheus's HTTP API returns the same values as SQLite; every dashboard panel's query returns data.

usage: live_parsl.py BINARY"""
import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_prometheus import compare, start_serve, stop_serve, without_exporter  # noqa: E402
from dashboard import check_dashboard  # noqa: E402
from expected import expected  # noqa: E402
from live import scrape  # noqa: E402
from promtools import CheckFailed, PrometheusServer, free_port, samples  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PARSL_VERSION = "2026.10.26"
COUNTER = re.compile(r"(_total|_count|_bucket)$")
ENDED = {"CANCELLED", "COMPLETED", "FAILED", "TIMEOUT", "MISSING", "SCALED_IN"}


def parsl_python():
    loader = importlib.machinery.SourceFileLoader("make_example_db", os.path.join(ROOT, "scripts", "make-example-db"))
    module = loader.load_module()
    return module.ensure_venv(PARSL_VERSION)


def values(s, name, **labels):
    return [v for (n, ls), v in s.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items())]


class Watcher(threading.Thread):
    """Scrapes `serve` every 0.5 s: counters must never decrease, and no ghost series may appear."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.problems, self.scrapes, self.last = port, threading.Event(), [], 0, {}
        self.saw_resident = 0.0

    def run(self):
        while not self.stop.is_set():
            try:
                s = scrape(self.port)
            except (OSError, CheckFailed) as e:
                self.problems.append(f"scrape failed: {e}")
                continue
            self.scrapes += 1
            for key, v in s.items():
                name, labels = key
                if name.startswith("parsl_resource") and dict(labels).get("host", None) == "":
                    self.problems.append(f"ghost series {key}")
                if COUNTER.search(name) and not name.startswith("parsl_export_"):
                    if v < self.last.get(key, 0):
                        self.problems.append(f"counter decreased: {key} {self.last[key]} -> {v}")
                    self.last[key] = v
            # Managers of a block that has ended are not in the node gauges of the same scrape.
            ended = {(dict(ls)["run_id"], dict(ls)["block"]) for (n, ls), v in s.items()
                     if n == "parsl_block_status" and dict(ls)["status"] in ENDED}
            for (name, labels), v in s.items():
                if name.startswith("parsl_node_") and (dict(labels)["run_id"], dict(labels)["block"]) in ended:
                    self.problems.append(f"node series of an ended block: {name} {labels}")
            self.saw_resident = max(self.saw_resident, sum(values(s, "parsl_resource_resident_memory_bytes")))
            time.sleep(0.5)


def run_workflow(python, db, run_dir, log):
    os.makedirs(run_dir, exist_ok=True)
    env = dict(os.environ, PATH=os.path.dirname(python) + os.pathsep + os.environ.get("PATH", ""))
    started = time.time()
    with open(log, "ab") as out:
        p = subprocess.run([python, os.path.join(HERE, "parsl_workflow.py"), db, run_dir], env=env, cwd=run_dir,
                           stdout=out, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise CheckFailed(f"the Parsl workflow failed (rc {p.returncode}); see {log}:\n" + open(log).read()[-3000:])
    return time.time() - started


def run_ids(db):
    import sqlite3
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in c.execute("SELECT run_id FROM workflow ORDER BY time_began")]
    finally:
        c.close()


def wait_completed(port, run_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = scrape(port)
        if values(s, "parsl_workflow_completed", run_id=run_id) == [1.0]:
            return s
        time.sleep(0.5)
    raise CheckFailed(f"serve never showed run {run_id} completed")


def prometheus_file(binary, db, work, extra=()):
    out = os.path.join(work, "file.prom")
    subprocess.run([binary, "prometheus", db, "-o", out, "--quiet", *extra], check=True)
    return samples(open(out, "rb").read())


def same(a, b, what):
    a, b = without_exporter(a), without_exporter(b)
    if a != b:
        diff = [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        raise CheckFailed(f"{what}: {len(diff)} series differ (key, serve, prometheus): {diff[:6]}")


def settled(port, run_id, check, timeout=15):
    """The first scrape after the run completed for which `check` passes. Parsl writes a try's last times (the
    try row's returned time) after the status that ends it, sometimes after the run's completion: the poll that
    first shows the run completed may be a second short of them."""
    s = wait_completed(port, run_id)
    deadline = time.time() + timeout
    while True:
        try:
            check(s)
            return s
        except CheckFailed:
            if time.time() > deadline:
                raise
        time.sleep(1)
        s = scrape(port)


def after_run(binary, db, work, port, latest_port, run_id, prometheus):
    def agrees(s):
        compare(s, expected(db), f"serve after run {run_id[:8]}")
        same(s, prometheus_file(binary, db, work), f"serve vs prometheus after run {run_id[:8]}")
    s = settled(port, run_id, agrees)
    exp = expected(db)
    latest = settled(latest_port, run_id, lambda latest: same(
        latest, prometheus_file(binary, db, work, ["--latest"]), "serve --latest vs prometheus --latest"))
    ids = {dict(ls)["run_id"] for (n, ls), v in latest.items() if n == "parsl_workflow_info"}
    if ids != {run_id}:
        raise CheckFailed(f"serve --latest shows runs {ids}, expected only {run_id}")
    same(latest, prometheus_file(binary, db, work, ["--latest"]), "serve --latest vs prometheus --latest")
    # Nothing of a finished run or ended block in the "now" gauges.
    for name in ("parsl_resource_resident_memory_bytes", "parsl_resource_processes", "parsl_node_workers",
                 "parsl_node_managers", "parsl_workers_connected", "parsl_tasks_running"):
        if any(values(s, name)):
            raise CheckFailed(f"after run {run_id[:8]}: {name} is not 0: {[(k, v) for k, v in s.items() if k[0] == name and v]}")
    # The Prometheus server's view, once it has scraped the final values.
    want_tries = sum(exp["tries"].values())
    deadline = time.time() + 30
    while True:
        got = prometheus.query('sum(parsl_tries_total{job="serve"})')
        if got and float(got[0]["value"][1]) == want_tries:
            break
        if time.time() > deadline:
            raise CheckFailed(f"Prometheus: tries {got}, SQLite {want_tries}")
        time.sleep(0.5)
    for state in ("exec_done", "failed", "dep_fail", "memo_done"):
        want = sum(n for (a, st), n in exp["tasks"].items() if st == state)
        got = prometheus.query(f'sum(parsl_tasks{{job="serve",state="{state}"}}) or vector(0)')
        if float(got[0]["value"][1]) != want:
            raise CheckFailed(f"Prometheus: tasks {state} = {got[0]['value'][1]}, SQLite {want}")
    done = sum(n for (a, st), n in exp["tasks"].items() if st == "exec_done")
    print(f"  run {run_id[:8]}: serve = prometheus = SQLite ({sum(exp['tasks'].values())} tasks, {done} exec_done, "
          f"{want_tries} tries); --latest shows only it; Prometheus API agrees; now-gauges 0")


def main():
    binary = sys.argv[1]
    started = time.time()
    python = parsl_python()
    work = tempfile.mkdtemp(prefix="live-parsl-")
    db = os.path.join(work, "monitoring.db")
    run_dir = os.path.join(work, "runinfo")
    log = os.path.join(work, "workflow.log")
    procs, prometheus, watcher = [], None, None
    try:
        port, latest_port = free_port(), free_port()
        procs.append(start_serve(binary, db, port, ["--interval", "1"], initial_read=False))
        procs.append(start_serve(binary, db, latest_port, ["--interval", "1", "--latest"], initial_read=False))
        prometheus = PrometheusServer({"serve": f"127.0.0.1:{port}", "latest": f"127.0.0.1:{latest_port}"})
        watcher = Watcher(port)
        watcher.start()
        first = run_workflow(python, db, run_dir, log)
        runs = run_ids(db)
        if len(runs) != 1:
            raise CheckFailed(f"expected 1 run after the first workflow, found {runs}")
        after_run(binary, db, work, port, latest_port, runs[0], prometheus)
        run1_end = time.time()
        second = run_workflow(python, db, run_dir, log)
        runs = run_ids(db)
        if len(runs) != 2:
            raise CheckFailed(f"expected 2 runs after the second workflow, found {runs}")
        after_run(binary, db, work, port, latest_port, runs[1], prometheus)
        watcher.stop.set()
        watcher.join(timeout=30)
        if watcher.problems:
            raise CheckFailed(f"{len(watcher.problems)} problems while following: {watcher.problems[:5]}")
        if watcher.saw_resident <= 0:
            raise CheckFailed("serve never showed resident memory of a running worker")
        # Every dashboard panel's query returns data over the runs.
        panels = check_dashboard(binary, prometheus, start=run1_end - first - 5, end=time.time())
        locked, logs = [], []
        for base, _, files in os.walk(work):
            for name in files:
                if name.endswith(".log"):
                    logs.append(name)
                    with open(os.path.join(base, name), errors="replace") as f:
                        locked += [line.strip() for line in f if "database is locked" in line
                                   or ("database" in line.lower() and "retr" in line.lower())]
        if logs.count("parsl.log") != 2 or "database_manager.log" not in logs:
            raise CheckFailed(f"Parsl's logs not found where expected: {sorted(set(logs))}")
        if locked:
            raise CheckFailed(f"Parsl logged 'database is locked' or a database retry {len(locked)} times: {locked[:3]}")
        stderr = []
        for proc in procs:
            stop_serve(proc)
            stderr.append(proc.stderr.read().decode())
        procs = []
        log_lines = stderr[1].splitlines()
        for run_id in runs:
            if not any(f"run {run_id} appeared" in line for line in log_lines):
                raise CheckFailed(f"serve --latest did not log run {run_id} appearing:\n{stderr[1]}")
        if any("last good values" in line for line in log_lines[:3]):
            raise CheckFailed(f"serve's first messages claim last good values:\n{stderr[1]}")
        print(f"  serve's log: {len(log_lines)} lines, e.g. " + " | ".join(log_lines[:4]))
        print(f"  workflows {first:.0f} s and {second:.0f} s; {watcher.scrapes} scrapes, counters never decreased, "
              f"no ghost series, peak worker RSS {watcher.saw_resident / 1e6:.0f} MB; {panels} dashboard panels "
              f"return data; no 'database is locked' in Parsl's {len(logs)} log files")
        print(f"PASS live Parsl check in {time.time() - started:.0f} s")
    finally:
        if watcher:
            watcher.stop.set()
        if prometheus:
            prometheus.close()
        for proc in procs:
            proc.kill()
        if os.environ.get("KEEP_WORKDIR"):
            print(f"work dir kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
