#!/usr/bin/env python3
"""End-to-end checks of `parsl-export prometheus` and `parsl-export serve` with the real consumers.

usage: check_prometheus.py BINARY DB [DB...]
Every value is compared with what expected.py computes from the same database with sqlite3."""
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expected import expected  # noqa: E402
from promtools import (CheckFailed, PrometheusServer, free_port, http, node_exporter_textfile,  # noqa: E402
                       promtool_check, samples)
import live  # noqa: E402
from dashboard import wait_and_check  # noqa: E402

OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def pick(s, name, *label_names):
    """{label values tuple: value} of one sample name."""
    out = {}
    for (n, labels), v in s.items():
        if n == name:
            d = dict(labels)
            out[tuple(d.get(l, "") for l in label_names)] = v
    return out


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def compare(s, exp, what):
    problems = []

    def check(name, ok, got, want):
        if not ok:
            problems.append(f"{name}: got {got}, SQLite says {want}")

    tasks = {k: v for k, v in pick(s, "parsl_tasks", "app", "state").items() if v != 0}
    check("parsl_tasks{app,state}", tasks == dict(exp["tasks"]), tasks, dict(exp["tasks"]))
    tries = pick(s, "parsl_tries_total", "app", "outcome")
    check("parsl_tries_total{app,outcome}", tries == dict(exp["tries"]), tries, dict(exp["tries"]))
    retries = pick(s, "parsl_task_retries_total", "app")
    want_retries = {(a,): n for (a, o), n in exp["tries"].items() if o == "fail_retryable"}
    check("parsl_task_retries_total", retries == want_retries, retries, want_retries)
    for family, key in (("parsl_try_queue_wait_seconds", "queue"), ("parsl_try_run_time_seconds", "run_time")):
        counts = pick(s, family + "_count", "app")
        sums = pick(s, family + "_sum", "app")
        inf = pick(s, family + "_bucket", "app", "le")
        want = exp[key]
        check(family + "_count", counts == {(a,): n for a, (n, _) in want.items()}, counts, want)
        ok = all(close(sums.get((a,), -1), total) for a, (_, total) in want.items()) and len(sums) == len(want)
        check(family + "_sum", ok, sums, want)
        check(family + " +Inf == _count", all(inf[(a, "+Inf")] == n for (a,), n in counts.items()), inf, counts)
    runs, completed = exp["runs"]
    check("parsl_workflow_info", len(pick(s, "parsl_workflow_info", "run_id")) == runs, s, runs)
    check("parsl_workflow_completed", sum(pick(s, "parsl_workflow_completed", "run_id").values()) == completed, "", completed)
    blocks = {}
    for (run, executor, status), v in pick(s, "parsl_blocks", "run_id", "executor", "status").items():
        if not run:
            problems.append("parsl_blocks without run_id")
        if v:
            blocks[(executor, status)] = blocks.get((executor, status), 0) + v
    check("parsl_blocks", blocks == dict(exp["blocks"]), blocks, dict(exp["blocks"]))
    block_status = pick(s, "parsl_block_status", "run_id", "executor", "block", "status")
    check("parsl_block_status", len(block_status) == sum(exp["blocks"].values()), len(block_status), exp["blocks"])
    managers = sum(pick(s, "parsl_node_managers", "run_id", "block", "host").values())
    check("parsl_node_managers", managers == exp["managers"], managers, exp["managers"])
    workers = sum(pick(s, "parsl_node_workers", "run_id", "block", "host").values())
    check("parsl_node_workers", workers == exp["workers"], workers, exp["workers"])
    rows = pick(s, "parsl_export_rows_read_total", "table")
    for table, n in exp["rows"].items():
        check(f"rows_read_total{{table={table}}}", rows.get((table,)) == n, rows.get((table,)), n)
    check("parsl_export_database_up", pick(s, "parsl_export_database_up").get(()) == 1, "", 1)
    if problems:
        raise CheckFailed(f"{what}: values differ from SQLite:\n  " + "\n  ".join(problems))


def without_exporter(s):
    return {k: v for k, v in s.items() if not k[0].startswith("parsl_export_")}


def file_checks(binary, db, exp, work):
    out = os.path.join(work, "parsl.prom")
    subprocess.run([binary, "prometheus", db, "-o", out, "--quiet"], check=True)
    body = open(out, "rb").read()
    if not body.endswith(b"\n") or b"# EOF" in body:
        raise CheckFailed("text file must end with a newline and have no # EOF")
    promtool_check(body, f"{db} file")
    text = samples(body)
    compare(text, exp, f"{db} file (text)")
    lines = node_exporter_textfile(out)
    if not any(l.startswith("parsl_tasks{") for l in lines):
        raise CheckFailed("node_exporter re-exported no parsl_tasks")
    om_path = os.path.join(work, "parsl.om")
    subprocess.run([binary, "prometheus", db, "-o", om_path, "--openmetrics", "--quiet"], check=True)
    om_body = open(om_path, "rb").read()
    if not om_body.endswith(b"# EOF\n"):
        raise CheckFailed("OpenMetrics file must end with # EOF")
    om = samples(om_body, openmetrics=True)
    compare(om, exp, f"{db} file (OpenMetrics)")
    print(f"  file: promtool clean, node_exporter scrape_error 0 ({len(lines)} parsl_ lines), "
          f"text and OpenMetrics parsers agree with SQLite ({len(text)} samples)")
    return without_exporter(text)


def start_serve(binary, db, port, extra=(), initial_read=True):
    """`serve` ready: its first full read done, or with `initial_read` False (a database that may not exist
    yet) once /metrics answers."""
    proc = subprocess.Popen([binary, "serve", db, "--listen", f"127.0.0.1:{port}", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            status, _, body = http(f"http://127.0.0.1:{port}/metrics", timeout=2)
            if status == 200 and (not initial_read or b"\nparsl_export_initial_read_done 1\n" in body):
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise CheckFailed(f"serve exited: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise CheckFailed("serve did not answer (or finish its initial read) in 30 s")


def stop_serve(proc):
    proc.terminate()  # SIGTERM: graceful shutdown, exit 0
    rc = proc.wait(timeout=15)
    if rc != 0:
        raise CheckFailed(f"serve exited {rc} on SIGTERM: {proc.stderr.read().decode()[-1000:]}")


def serve_checks(binary, db, exp, file_samples, port):
    base = f"http://127.0.0.1:{port}"
    status, headers, body = http(base + "/metrics")
    if status != 200 or headers.get("Content-Type") != TEXT:
        raise CheckFailed(f"/metrics: {status} {headers.get('Content-Type')}")
    promtool_check(body, f"{db} scrape")
    text = samples(body)
    compare(text, exp, f"{db} scrape (text)")
    scraped = without_exporter(text)
    if scraped != file_samples:
        diff = [(k, file_samples.get(k), scraped.get(k)) for k in set(scraped) | set(file_samples)
                if scraped.get(k) != file_samples.get(k)]
        raise CheckFailed(f"scraped text differs from the file output (key, file, scrape): {diff[:5]}")
    status, headers, om_body = http(base + "/metrics", accept="application/openmetrics-text;version=1.0.0")
    if status != 200 or headers.get("Content-Type") != OM or not om_body.endswith(b"# EOF\n"):
        raise CheckFailed(f"/metrics OpenMetrics: {status} {headers.get('Content-Type')}")
    compare(samples(om_body, openmetrics=True), exp, f"{db} scrape (OpenMetrics)")
    for path, method, want in (("/", "GET", 200), ("/nothing", "GET", 404), ("/../etc/passwd", "GET", 404),
                               ("/metrics", "POST", 405), ("/", "DELETE", 405), ("/metrics", "HEAD", 200)):
        got = http(base + path, method=method)[0]
        if got != want:
            raise CheckFailed(f"{method} {path}: {got}, expected {want}")
    print(f"  serve: text + OpenMetrics bodies clean (promtool, both parsers), equal to the file; / 200, 404, 405")


def main():
    binary, dbs = sys.argv[1], sys.argv[2:]
    if not dbs:
        raise SystemExit("no databases given")
    work = tempfile.mkdtemp(prefix="check-prometheus-")
    servers = {}
    prometheus = None
    try:
        exps = {}
        for db in dbs:
            print(f"{os.path.basename(db)}:")
            exps[db] = expected(db)
            file_samples = file_checks(binary, db, exps[db], work)
            port = free_port()
            servers[db] = (start_serve(binary, db, port), port)
            serve_checks(binary, db, exps[db], file_samples, port)

        # A real Prometheus scraping every serve at 1 s; its query API must give SQLite's numbers.
        jobs = {f"db{i}": f"127.0.0.1:{servers[db][1]}" for i, db in enumerate(dbs)}
        prometheus = PrometheusServer(jobs)
        started = time.time()
        for i, db in enumerate(dbs):
            job = f"db{i}"
            exp = exps[db]
            prometheus.wait_for(f'parsl_export_initial_read_done{{job="{job}"}} == 1')
            up = prometheus.query(f'up{{job="{job}"}}')
            if float(up[0]["value"][1]) != 1:
                raise CheckFailed(f"Prometheus says up=0 for {db}: {prometheus.targets()}")
            for state in ("exec_done", "failed", "dep_fail", "memo_done"):
                want = sum(n for (a, s), n in exp["tasks"].items() if s == state)
                got = prometheus.query(f'sum(parsl_tasks{{job="{job}",state="{state}"}}) or vector(0)')
                if float(got[0]["value"][1]) != want:
                    raise CheckFailed(f"Prometheus: tasks in {state} = {got[0]['value'][1]}, SQLite {want}")
            want_tries = sum(exp["tries"].values())
            got = prometheus.query(f'sum(parsl_tries_total{{job="{job}"}}) or vector(0)')
            if float(got[0]["value"][1]) != want_tries:
                raise CheckFailed(f"Prometheus: tries {got[0]['value'][1]}, SQLite {want_tries}")
            got = prometheus.query(f'parsl_export_rows_read_total{{job="{job}",table="status"}}')
            if float(got[0]["value"][1]) != exp["rows"]["status"]:
                raise CheckFailed(f"Prometheus: status rows {got[0]['value'][1]}, SQLite {exp['rows']['status']}")
            done = sum(n for (a, s), n in exp["tasks"].items() if s == "exec_done")
            print(f"{os.path.basename(db)}: Prometheus query API: up 1, tasks exec_done {done}, tries {want_tries}, "
                  f"status rows {exp['rows']['status']} = SQLite")
        print(f"Prometheus server: first values after {time.time() - started:.1f} s")
        panels = wait_and_check(binary, prometheus, started)
        print(f"dashboard: all {panels} panels return data from this Prometheus (finished runs: per panel)")
        prometheus.close()
        prometheus = None
        for db, (proc, _) in list(servers.items()):
            stop_serve(proc)
            del servers[db]
        print("serve: SIGTERM -> exit 0")

        # Live: a writer appends to a copy of a real database while serve follows it.
        live.run(binary, dbs[0], work, next((d for d in dbs[1:] if "2026" in d and "htex" in d), None))
    finally:
        if prometheus:
            prometheus.close()
        for proc, _ in servers.values():
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print("PASS prometheus checks")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
