"""Longer reliability runs (scripts/torture): a live Parsl-like writer during exports, SIGINT/SIGTERM mid-export,
unwritable and full output targets, outputs that must never be written over (previous exports, the source, links,
devices), and a corrupt-database fuzz loop. Prints the figures it measured; exits 1 on
any failure."""
import argparse
import concurrent.futures
import csv
import gzip
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outputs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "Tests/Fixtures/databases/parsl-2026.10.26-htex.db")
TIMEOUT = 120
failures = []
figures = []


def fail(section, message):
    failures.append(f"[{section}] {message}")
    print(f"  FAIL {message}", flush=True)


def figure(text):
    figures.append(text)
    print(f"  {text}", flush=True)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# A bigger database: the real fixture's rows repeated under new run ids.

def make_big_db(path, copies, seed=7):
    shutil.copyfile(FIXTURE, path)
    rng = random.Random(seed)
    con = sqlite3.connect(path, isolation_level=None)
    original = con.execute("SELECT run_id FROM workflow").fetchone()[0]
    columns = {t: [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')] for t in outputs.PARSL_TABLES}
    con.execute("BEGIN")
    for _ in range(copies):
        run = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for table, cols in columns.items():
            select = ", ".join("?" if c == "run_id" else ("NULL" if (table, c) == ("node", "id") else f'"{c}"')
                               for c in cols)
            con.execute(f'INSERT INTO "{table}" SELECT {select} FROM "{table}" WHERE run_id = ?', (run, original))
    con.execute("COMMIT")
    con.close()


def make_synthetic_db(path, tasks, work):
    """scripts/synth-db's realistic large database when it is there (made once per run), else duplicated rows."""
    cached = os.path.join(work, f"synth-{tasks}.db")
    synth = os.path.join(ROOT, "scripts", "synth-db")
    if not os.path.exists(cached):
        if os.path.exists(synth):
            subprocess.run([sys.executable, synth, "-o", cached, "--tasks", str(tasks)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            figure(f"big database: scripts/synth-db --tasks {tasks}, {os.path.getsize(cached) >> 20} MiB")
        else:
            make_big_db(cached, max(1, tasks // 257))
            figure(f"big database: fixture rows ×{max(1, tasks // 257)} (scripts/synth-db absent)")
    shutil.copyfile(cached, path)


def inflate_status(path, rows):
    """Grows the status table to `rows` with copies of its own rows under other run ids (runs the workflow table
    does not list, so each trace stays the size of its run while every pass still walks the whole table):
    millions of status rows in seconds, where scripts/synth-db would take many minutes to make as many tasks."""
    con = sqlite3.connect(path, isolation_level=None)
    columns = [r[1] for r in con.execute('PRAGMA table_info("status")')]
    names = ", ".join(f'"{c}"' for c in columns)
    renamed = ", ".join("run_id || ?1" if c == "run_id" else f'"{c}"' for c in columns)
    original, last = con.execute("SELECT count(*), max(rowid) FROM status").fetchone()
    have = original
    con.execute("BEGIN")
    copy = 0
    while original and have < rows:
        copy += 1
        take = min(original, rows - have)
        con.execute(f"INSERT INTO status ({names}) SELECT {renamed} FROM status WHERE rowid <= ?2 ORDER BY rowid "
                    "LIMIT ?3", (f"-copy{copy}", last, take))
        have += take
    con.execute("COMMIT")
    con.close()
    return have


# ---------------------------------------------------------------------------------------------------------------
# (a) A writer with Parsl's database-manager access pattern.

WRITER = r'''
import json, sqlite3, sys, time, uuid, signal
db, log_path, interval, tasks_per_batch = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
# Parsl's manager: rollback journal (the default), synchronous=FULL, one transaction per batch, retry on "locked"
# forever. The busy timeout is 0 and the retry is done here with 1 ms sleeps, so the time spent locked out is measured
# exactly (SQLite's own busy handler sleeps in growing steps and would blur it).
con = sqlite3.connect(db, timeout=0, isolation_level=None)
run = str(uuid.uuid4())
counts = {t: 0 for t in ("workflow", "task", "try", "status", "resource", "node")}
log = open(log_path, "a", buffering=1)

def ts(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ".%06d" % int((t % 1) * 1e6)

def locked(e):
    return "locked" in str(e) or "busy" in str(e)

def commit(statements):
    """Returns (ms locked out, ms for the whole batch, retries). Locked out: from the first attempt refused to the
    start of the one that succeeded; the successful commit's own writing and fsync are the batch's, not a wait."""
    start = time.perf_counter()
    first_busy = None
    retries = 0
    while True:
        try:
            attempt = time.perf_counter()
            con.execute("BEGIN")
            for sql, rows in statements:
                con.executemany(sql, rows)
            while True:
                try:
                    attempt = time.perf_counter()
                    con.execute("COMMIT")  # a busy COMMIT keeps the transaction: retry it alone
                    break
                except sqlite3.OperationalError as e:
                    if not locked(e):
                        raise
                    first_busy = first_busy or time.perf_counter()
                    retries += 1
                    time.sleep(0.001)
            end = time.perf_counter()
            return ((attempt - first_busy) * 1000 if first_busy else 0.0), (end - start) * 1000, retries
        except sqlite3.OperationalError as e:
            if not locked(e):
                raise
            first_busy = first_busy or time.perf_counter()
            retries += 1
            if con.in_transaction:
                con.execute("ROLLBACK")
            time.sleep(0.001)

now = time.time()
wait, total, retries = commit([("INSERT INTO workflow (run_id, workflow_name, workflow_version, time_began, host, user, rundir,"
                         " tasks_failed_count, tasks_completed_count) VALUES (?, 'torture', '1', ?, 'vm', 'root', '/tmp', 0, 0)",
                         [(run, ts(now))])])
counts["workflow"] = 1
log.write(json.dumps({"run": run, "t": time.time(), "wait_ms": wait, "batch_ms": total, "retries": retries, "counts": counts}) + "\n")
next_task, node_id = 0, 10_000_000
while not stop:
    time.sleep(interval)
    now = time.time()
    ids = range(next_task, next_task + tasks_per_batch)
    t = ts(now)
    statements = [
        ("INSERT INTO task (task_id, run_id, task_depends, task_func_name, task_memoize, task_inputs, task_outputs,"
         " task_time_invoked, task_time_returned, task_fail_count, task_fail_cost) VALUES (?, ?, '', 'sleep_task', '0',"
         " 'None', 'None', ?, ?, 0, 0.0)", [(i, run, t, t) for i in ids]),
        ("INSERT INTO try (try_id, task_id, run_id, block_id, hostname, task_executor, task_try_time_launched,"
         " task_try_time_running, task_try_time_returned, task_fail_history) VALUES (0, ?, ?, '0', 'vm', 'htex_local',"
         " ?, ?, ?, '')", [(i, run, t, t, t) for i in ids]),
        ("INSERT INTO status (task_id, task_status_name, timestamp, run_id, try_id) VALUES (?, ?, ?, ?, 0)",
         [(i, s, t, run) for i in ids for s in ("pending", "launched", "exec_done")]),
        ("INSERT INTO resource (try_id, task_id, run_id, timestamp, resource_monitoring_interval, psutil_process_pid,"
         " psutil_process_time_user, psutil_process_memory_resident) VALUES (0, ?, ?, ?, 1.0, 4242, ?, 1e8)",
         [(i, run, ts(now + k * 1e-3), 0.1 * k) for i in ids for k in range(2)]),
        ("INSERT INTO node (id, run_id, hostname, uid, block_id, cpu_count, total_memory, active, worker_count,"
         " python_v, timestamp, last_heartbeat) VALUES (?, ?, 'vm', 'abcdefabcdef', '0', 2, 8000000000, 1, 2,"
         " '3.11.7', ?, ?)", [(node_id + k, run, t, t) for k in range(2)]),
    ]
    wait, total, retries = commit(statements)
    next_task += tasks_per_batch
    node_id += 2
    for table, rows in (("task", 1), ("try", 1), ("status", 3), ("resource", 2)):
        counts[table] += rows * tasks_per_batch
    counts["node"] += 2
    log.write(json.dumps({"run": run, "t": time.time(), "wait_ms": wait, "batch_ms": total, "retries": retries, "counts": counts}) + "\n")
'''


def read_writer_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def exported_rows(out_dir, run):
    """Per table: (rows of the writer's run, task ids of the writer's run) for every table file under out_dir."""
    found = {}
    for rel in outputs.list_files(out_dir):
        path = os.path.join(out_dir, rel)
        name = os.path.basename(rel)
        table = name.split(".")[0]
        if table not in outputs.PARSL_TABLES:
            continue
        if name.endswith(".csv.gz") or name.endswith(".csv"):
            with open(path, "rb") as f:
                data = f.read()
            text = (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8").lstrip("\ufeff")
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
            mine = [r for r in rows if r.get("run_id") == run]
            ids = {int(r["task_id"]) for r in mine} if table == "task" else None
        elif name.endswith(".parquet"):
            import pyarrow.parquet as pq
            t = pq.read_table(path).to_pydict()
            mine_idx = [i for i, r in enumerate(t["run_id"]) if r == run]
            mine = mine_idx
            ids = {t["task_id"][i] for i in mine_idx} if table == "task" else None
        else:
            continue
        found[rel] = (table, len(mine), ids)
    return found


def check_rows_read(section, label, text, base, before):
    """A metrics exposition must have read every row committed before it started. Returns 1 if it could check."""
    read = outputs.rows_read(text)
    if not read:
        return 0
    for table, committed in before["counts"].items():
        want = base.get(table, 0) + committed
        if read.get(table, 0) == 0:
            continue  # a table this command does not read (prometheus needs no try rows)
        if read.get(table, 0) < want:
            fail(section, f"{label}: rows_read_total{{table={table}}} {read.get(table, 0):.0f}, "
                          f"but {want} rows were committed before it started")
    return 1


def serve_while_writing(binary, db, log_path, base, seconds, spans):
    """Scrapes `serve` every 0.25 s while the writer commits; every scrape must count the rows committed before it."""
    section = "writer/serve"
    server = outputs.Server(outputs.command_line(binary, "serve", db, None))
    if server.url is None:
        fail(section, f"serve did not start: {server.lines[-3:]}")
        server.stop(signal.SIGKILL)
        return 0, 0
    start = time.time()
    first_read = None
    scrapes = checked = 0
    while time.time() - start < seconds:
        entries = read_writer_log(log_path)
        t = time.time()
        before = [e for e in entries if e["t"] < t][-1]
        try:
            status, body = server.scrape()
        except Exception as e:
            fail(section, f"scrape failed: {e}")
            break
        scrapes += 1
        if status != 200:
            fail(section, f"/metrics answered {status}")
            continue
        up = outputs.prometheus_values(body, "parsl_export_database_up")
        done = outputs.prometheus_values(body, "parsl_export_initial_read_done")
        if 1.0 not in done.values():
            time.sleep(0.25)
            continue  # still reading the first time round
        if first_read is None:
            first_read = time.time()
            spans.append(("serve first read", start, first_read))
        if 1.0 not in up.values():
            fail(section, f"parsl_export_database_up {up} while the database is readable")
        checked += check_rows_read(section, "serve /metrics", body, base, before)
        time.sleep(0.25)
    spans.append(("serve", first_read or start, time.time()))
    rc, lines = server.stop(signal.SIGTERM)
    if rc != 0:
        fail(section, f"serve exit {rc} after SIGTERM (documented: 0): {lines[-3:]}")
    if checked == 0:
        fail(section, "no scrape could be checked (initial read never finished, or no rows_read_total)")
    return scrapes, checked


def live_writer(binary, runnable, work, seconds, copies, tasks=0, interval=1.0, source=None, status_rows=0,
                limit_ms=50.0, each_once=False):
    """The writer commits while the commands run in turn for `seconds` (`each_once`: each command once, however
    long that takes; then serve for a third of `seconds`)."""
    section = f"writer ({status_rows} status rows)" if status_rows else "writer"
    print(f"\n== (a) live writer for {seconds} s while exports run"
          + (f", status table grown to {status_rows} rows" if status_rows else ""), flush=True)
    db = os.path.join(work, "live.db")
    if source:
        shutil.copyfile(source, db)
        figure(f"writer's database: a copy of {source}, {os.path.getsize(db) >> 20} MiB")
    elif tasks:
        make_synthetic_db(db, tasks, work)
    else:
        make_big_db(db, copies)
        figure(f"writer's database: the real fixture's rows ×{copies + 1}, {os.path.getsize(db) >> 20} MiB")
    if status_rows:
        started = time.monotonic()
        have = inflate_status(db, status_rows)
        figure(f"status table grown to {have} rows by copies of its own rows in {time.monotonic() - started:.0f} s "
               f"({os.path.getsize(db) >> 20} MiB)")
    base = outputs.sqlite_counts(db)  # rows before the writer's run; metrics count all runs
    log_path = os.path.join(work, "writer.log")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db, log_path, str(interval), "50"])
    figure(f"writer: a batch of 50 tasks every {interval:g} s")
    # inspect (quick) first, so a slow round of exports on a big database still leaves it a turn.
    exports = (["inspect"] if "inspect" in runnable else []) + [c for c in runnable if c not in ("inspect", "serve")]
    runs = {c: 0 for c in exports}
    checked_rows = 0
    spans = []  # (command, start, end) to say which export the writer waited for
    time.sleep(3)  # a few commits without readers: the writer's own baseline
    baseline = [e["batch_ms"] for e in read_writer_log(log_path)]
    deadline = time.monotonic() + seconds
    i = 0
    while (i < len(exports)) if each_once else (time.monotonic() < deadline):
        if writer.poll() is not None:
            fail(section, f"writer died (rc {writer.returncode})")
            break
        command = exports[i % len(exports)]
        i += 1
        out = tempfile.mkdtemp(dir=work, prefix=f"live-{command}-")
        entries = read_writer_log(log_path)
        start = time.time()
        before = [e for e in entries if e["t"] < start][-1]
        argv = outputs.command_line(binary, command, db, out)
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            fail(section, f"{command}: no exit within {TIMEOUT} s")
            continue
        runs[command] += 1
        spans.append((command, start, time.time()))
        if proc.returncode != 0:
            fail(section, f"{command}: exit {proc.returncode}: {proc.stderr.decode()[-300:]!r}")
            continue
        for rel in outputs.list_files(out):
            try:
                outputs.validate_file(os.path.join(out, rel))
            except Exception as e:
                fail(section, f"{command}: invalid {rel}: {e}")
        for rel in [f for f in outputs.list_files(out) if f.endswith(".prom")]:
            with open(os.path.join(out, rel)) as f:
                checked_rows += check_rows_read(section, f"{command} {rel}", f.read(), base, before)
        # A trace of the writer's run holds a slice for every try committed before the export started.
        for rel in [f for f in outputs.list_files(out) if os.path.basename(f) == f"trace-{before['run']}.json.gz"]:
            checked_rows += 1
            with gzip.open(os.path.join(out, rel)) as f:
                tries = json.load(f)["otherData"]["tries"]
            if tries < before["counts"]["try"]:
                fail(section, f"{command} {rel}: {tries} try slices, {before['counts']['try']} tries were committed before it started")
        for rel, (table, count, ids) in exported_rows(out, before["run"]).items():
            checked_rows += 1
            want = before["counts"].get(table, 0)
            if count < want:
                fail(section, f"{command} {rel}: {count} rows of the writer's run, {want} were committed before the export started")
            if ids is not None:
                missing = set(range(before["counts"]["task"])) - ids
                if missing:
                    fail(section, f"{command} {rel}: task ids committed before start are missing, e.g. {sorted(missing)[:5]}")
        shutil.rmtree(out)
    if "serve" in runnable:
        scrapes, checked = serve_while_writing(binary, db, log_path, base, max(10, seconds // 3), spans)
        runs["serve"] = scrapes
        checked_rows += checked
    writer.send_signal(signal.SIGTERM)
    try:
        writer.wait(timeout=30)
    except subprocess.TimeoutExpired:
        writer.kill()
        fail(section, "writer did not stop")
    entries = read_writer_log(log_path)[len(baseline):]
    if not entries:
        fail(section, "the writer committed nothing while exports ran")
        return
    waits = sorted(e["wait_ms"] for e in entries)
    batches = sorted(e["batch_ms"] for e in entries)
    longest = waits[-1]
    worst = {}
    for e in entries:
        for command, a, b in spans:
            if a <= e["t"] <= b + 0.5:
                worst[command] = max(worst.get(command, 0.0), e["wait_ms"])
    figure(f"writer: {len(entries)} commits during exports; longest wait for the lock {longest:.1f} ms "
           f"(median {waits[len(waits) // 2]:.1f} ms, {sum(1 for w in waits if w > 0)} commits waited at all, "
           f"{sum(e['retries'] for e in entries)} retries); whole batch incl. fsync: longest {batches[-1]:.1f} ms, "
           f"median {batches[len(batches) // 2]:.1f} ms (without readers: longest {max(baseline):.1f} ms)")
    figure("longest lock wait by the export running then: " + ", ".join(f"{c} {w:.1f} ms" for c, w in worst.items()))
    figure("exports while writing: " + ", ".join(f"{c} ×{n}" for c, n in runs.items())
           + f"; {checked_rows} table files checked for rows committed before start "
           + "(csv/parquet: rows of the writer's run; prometheus/serve: parsl_export_rows_read_total; "
           + "trace: try slices of the writer's run; inspect: exit code only)")
    if longest > limit_ms:
        fail(section, f"longest writer commit wait {longest:.1f} ms > {limit_ms:g} ms")
    if any(n == 0 for n in runs.values()):
        fail(section, f"some commands never ran while writing: {runs}")


def opens_while_growing(binary, work, count=100):
    """A database that grows many times a second must still open: its size is checked against its header."""
    section = "writer/open"
    db = os.path.join(work, "growing.db")
    shutil.copyfile(FIXTURE, db)
    log_path = os.path.join(work, "growing-writer.log")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db, log_path, "0.02", "5"])
    time.sleep(1)
    failures = 0
    try:
        for _ in range(count):
            p = subprocess.run([binary, "inspect", db], capture_output=True, timeout=TIMEOUT)
            if p.returncode != 0:
                failures += 1
                if failures == 1:
                    fail(section, f"inspect exit {p.returncode}: {p.stderr.decode()[-200:]!r}")
    finally:
        writer.send_signal(signal.SIGTERM)
        writer.wait(timeout=30)
    commits = len(read_writer_log(log_path))
    figure(f"opens while the file grows ({commits} commits, 50 a second): {count - failures}/{count} inspect runs exit 0")


# ---------------------------------------------------------------------------------------------------------------
# (b) SIGINT / SIGTERM in the middle of every export.

def interrupts(binary, runnable, work, tasks, repeats, rng):
    section = "signals"
    print(f"\n== (b) SIGINT/SIGTERM mid-export ({repeats} per command and signal)", flush=True)
    db = os.path.join(work, "big.db")
    make_synthetic_db(db, tasks, work)
    digest = sha256(db)
    # serve is not an export: it documents exit 0 on SIGINT/SIGTERM and is checked in (a) and check-bad-inputs.
    exports = [c for c in runnable if outputs.OUTPUT_KIND[c] not in (None, "http")]
    tried = interrupted = early = completed = 0
    for command in exports:
        out = tempfile.mkdtemp(dir=work, prefix=f"full-{command}-")
        start = time.monotonic()
        proc = subprocess.run(outputs.command_line(binary, command, db, out), capture_output=True, timeout=TIMEOUT)
        duration = time.monotonic() - start
        shutil.rmtree(out)
        if proc.returncode != 0:
            fail(section, f"{command} on the big database: exit {proc.returncode} {proc.stderr.decode()[-200:]!r}")
            continue
        figure(f"{command}: {duration:.2f} s uninterrupted on {os.path.getsize(db) >> 20} MiB")
        for sig in (signal.SIGINT, signal.SIGTERM):
            for _ in range(repeats):
                tried += 1
                out = tempfile.mkdtemp(dir=work, prefix=f"sig-{command}-")
                p = subprocess.Popen(outputs.command_line(binary, command, db, out),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(rng.uniform(0.05, max(0.1, duration * 0.9)))
                if p.poll() is not None:
                    early += 1
                    p.wait()
                    shutil.rmtree(out)
                    continue
                p.send_signal(sig)
                try:
                    _, err = p.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    fail(section, f"{command} {sig.name}: still running 30 s after the signal")
                    continue
                files = outputs.list_files(out)
                if p.returncode == 0:
                    # The signal landed as the export was finishing: acceptable only as a complete export.
                    completed += 1
                    tables = {os.path.basename(f).split(".")[0] for f in files}
                    if command in ("csv", "parquet", "all") and not set(outputs.PARSL_TABLES) <= tables:
                        fail(section, f"{command} {sig.name}: exit 0 but tables missing: {sorted(set(outputs.PARSL_TABLES) - tables)}")
                else:
                    interrupted += 1
                    if os.listdir(out):
                        fail(section, f"{command} {sig.name}: interrupted but left {sorted(os.listdir(out))}")
                if p.returncode not in (0, 130):
                    fail(section, f"{command} {sig.name}: exit {p.returncode}, expected 130 ({err.decode()[-200:]!r})")
                hidden = [f for f in files if os.path.basename(f).startswith(".") or f.endswith(".tmp")]
                if hidden:
                    fail(section, f"{command} {sig.name}: temporary files left: {hidden}")
                for rel in files:
                    if rel in hidden:
                        continue
                    try:
                        outputs.validate_file(os.path.join(out, rel))
                    except Exception as e:
                        fail(section, f"{command} {sig.name}: partial or invalid file {rel}: {e}")
                shutil.rmtree(out)
    if sha256(db) != digest:
        fail(section, "the source database changed")
    figure(f"signals: {tried} tried, {interrupted} interrupted (exit 130), {completed} completed as the signal arrived, "
           f"{early} finished before the signal")
    if exports and interrupted == 0:
        fail(section, "no signal landed mid-export (database too small?)")


# ---------------------------------------------------------------------------------------------------------------
# (c) Unwritable output directory and a full disk.

def expect_output_failure(section, label, argv, out_root, preexec=None, user=None):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, preexec_fn=preexec, user=user)
    except subprocess.TimeoutExpired:
        fail(section, f"{label}: no exit within {TIMEOUT} s")
        return False
    err = p.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l.strip()]
    ok = True
    if p.returncode != 73:
        detail = f"killed by signal {-p.returncode}" if p.returncode < 0 else f"exit {p.returncode}"
        fail(section, f"{label}: {detail}, expected 73 ({err[-200:]!r})")
        ok = False
    elif len(lines) != 1 or not lines[0].startswith("parsl-export: "):
        fail(section, f"{label}: want one 'parsl-export: <path>: <cause>' line, got {err[:300]!r}")
        ok = False
    left = outputs.list_files(out_root) if os.path.isdir(out_root) else []
    if left:
        # ExportError.outputFailed promises nothing partial: not even complete files of a failed export's set.
        fail(section, f"{label}: files left behind: {left[:5]}")
        ok = False
    elif os.path.isdir(out_root) and os.listdir(out_root):
        fail(section, f"{label}: directories it made are left behind: {sorted(os.listdir(out_root))}")
        ok = False
    return ok


def output_failures(binary, runnable, work, copies):
    section = "output"
    print("\n== (c) unwritable output directory and full disk", flush=True)
    db = os.path.join(work, "outfail.db")
    make_big_db(db, copies)
    os.chmod(work, 0o755)
    os.chmod(db, 0o644)
    exports = [c for c in runnable if outputs.OUTPUT_KIND[c] not in (None, "http")]
    cases = passed = 0

    # Unwritable: a directory the exporter's user may not write (root ignores modes, so drop to nobody).
    locked = os.path.join(work, "readonly")
    os.makedirs(locked)
    os.chmod(locked, 0o555)
    user = 65534 if os.geteuid() == 0 else None
    for command in exports:
        cases += 1
        passed += expect_output_failure(section, f"{command} into a read-only directory",
                                        outputs.command_line(binary, command, db, locked), locked, user=user)
    # The same when the directory to create lies under a read-only one.
    for command in [c for c in exports if outputs.OUTPUT_KIND[c] == "dir"]:
        cases += 1
        argv = [binary, command, db, "-o", os.path.join(locked, "sub", "deeper")]
        passed += expect_output_failure(section, f"{command} creating a directory under a read-only one", argv,
                                        locked, user=user)

    # How much each command writes, so the limits below are certain to be too small for it.
    sizes = {}
    for command in exports:
        out = tempfile.mkdtemp(dir=work, prefix=f"size-{command}-")
        p = subprocess.run(outputs.command_line(binary, command, db, out), capture_output=True, timeout=TIMEOUT)
        files = [os.path.getsize(os.path.join(out, f)) for f in outputs.list_files(out)]
        shutil.rmtree(out)
        if p.returncode != 0 or not files:
            fail(section, f"{command}: could not measure its output (exit {p.returncode})")
            continue
        sizes[command] = (max(files), sum(files))

    # Full disk through the file-size limit (half the largest file): writes past it must fail with EFBIG, not
    # kill the process with SIGXFSZ.
    for command, (largest, _) in sizes.items():
        cases += 1
        limit = max(1024, largest // 2)
        out = tempfile.mkdtemp(dir=work, prefix=f"fsize-{command}-")
        passed += expect_output_failure(section, f"{command} with a {limit >> 10} KiB file-size limit (largest file "
                                        f"{largest >> 10} KiB)", outputs.command_line(binary, command, db, out), out,
                                        preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))

    # Full disk for real: a tmpfs half the size of the command's output, when this machine lets us mount one.
    mount = os.path.join(work, "tiny")
    os.makedirs(mount)
    mounted = 0
    for command, (_, total) in sizes.items():
        size_kib = max(8, total // 2048)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", mount],
                          capture_output=True).returncode != 0:
            break
        mounted += 1
        try:
            cases += 1
            passed += expect_output_failure(section, f"{command} onto a full {size_kib} KiB tmpfs (output "
                                            f"{total >> 10} KiB)", outputs.command_line(binary, command, db, mount),
                                            mount)
        finally:
            subprocess.run(["umount", mount])
    if mounted:
        figure(f"full disk: tmpfs half the output's size, {mounted} commands")
    else:
        figure("full disk: tmpfs mount not permitted here; only the file-size-limit cases ran")
    figure(f"output failures: {passed}/{cases} cases gave exit 73, one error line and no files")


# ---------------------------------------------------------------------------------------------------------------
# (e) Nothing a user has is destroyed: previous outputs, the source, files reached through links or devices.

def run_quiet(argv, **kwargs):
    p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, **kwargs)
    return p.returncode, [l for l in p.stderr.decode("utf-8", "replace").splitlines() if l.strip()]


def tree_state(directory):
    """Relative path → (inode, sha256) of every file under directory."""
    state = {}
    for rel in outputs.list_files(directory):
        path = os.path.join(directory, rel)
        state[rel] = (os.lstat(path).st_ino, sha256(path))
    return state


def output_safety(binary, runnable, work):
    section = "safety"
    print("\n== (e) previous outputs, the source database, links and devices are never written over", flush=True)
    db = os.path.join(work, "safety.db")
    shutil.copyfile(FIXTURE, db)
    source = sha256(db)
    cases = passed = 0

    def expect(label, argv, code, check=None):
        nonlocal cases, passed
        cases += 1
        rc, lines = run_quiet(argv)
        problems = []
        if rc != code:
            problems.append(f"exit {rc}, expected {code}: {lines[:2]}")
        elif code != 0 and (len(lines) != 1 or not lines[0].startswith("parsl-export: ")):
            problems.append(f"want one 'parsl-export: ' line, got {lines[:3]}")
        if sha256(db) != source:
            problems.append("the source database changed")
        if check:
            problems += check()
        for p in problems:
            fail(section, f"{label}: {p}")
        passed += not problems

    # A commit that fails halfway (an immutable file: link and rename both fail) puts back every file the
    # export had already renamed over; the second run writes other bytes (gzip level 1), so a file left from
    # it would show.
    out = os.path.join(work, "again")
    if "all" in runnable:
        rc, lines = run_quiet([binary, "all", db, "-o", out, "-q"])
        first = tree_state(out)
        victim = os.path.join(out, "parquet", "try.parquet")
        if rc != 0 or len(first) < 17:
            fail(section, f"all: first export gave exit {rc}, {len(first)} files: {lines[:2]}")
        elif subprocess.run(["chattr", "+i", victim], capture_output=True).returncode == 0:
            try:
                expect("all twice into one directory, a rename failing at commit", [binary, "all", db, "-o", out,
                       "--level", "1"], 73, lambda: [] if tree_state(out) == first else
                       [f"previous export changed: {sorted(k for k in first if tree_state(out).get(k) != first[k])[:5]}"
                        f" (now {len(tree_state(out))} files, were {len(first)})"])
            finally:
                subprocess.run(["chattr", "-i", victim])
        else:
            figure("safety: chattr +i not permitted here; the failing-commit case runs in the Swift tests only")

    # The source and its companions as outputs, by their names and by other names for them.
    wal_db = os.path.join(work, "wal.db")
    shutil.copyfile(FIXTURE, wal_db)
    holder = sqlite3.connect(wal_db)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.execute("UPDATE workflow SET user = user")
    holder.commit()
    wal = sha256(wal_db + "-wal")
    os.link(db, os.path.join(work, "hardlink.prom"))
    os.symlink(work, os.path.join(work, "via"))
    for path in [db, db + "-journal", os.path.join(work, "hardlink.prom"), os.path.join(work, "via", "safety.db")]:
        expect(f"prometheus -o {os.path.relpath(path, work)} (the source)", [binary, "prometheus", db, "-o", path], 64)
    json_db = os.path.join(work, "run.json")
    shutil.copyfile(FIXTURE, json_db)
    json_sum = sha256(json_db)
    expect("trace run.json -o run.json", [binary, "trace", json_db, "--latest", "-o", json_db], 64,
           lambda: [] if sha256(json_db) == json_sum else ["the database changed"])
    expect("prometheus w.db -o w.db-wal", [binary, "prometheus", wal_db, "-o", wal_db + "-wal"], 64,
           lambda: [] if sha256(wal_db + "-wal") == wal else ["the -wal file changed"])
    holder.close()
    # A directory export whose file names meet the source: the database named like one of its outputs.
    named = os.path.join(work, "named")
    os.makedirs(named)
    shutil.copyfile(FIXTURE, os.path.join(named, "task.csv.gz"))
    named_db = os.path.join(named, "task.csv.gz")
    named_sum = sha256(named_db)
    expect("csv into the directory of a database named task.csv.gz", [binary, "csv", named_db, "-o", named], 64,
           lambda: [] if sha256(named_db) == named_sum else ["the database changed"])

    # Links, FIFOs and devices are refused, never renamed over or written through.
    keep = os.path.join(work, "keep.txt")
    with open(keep, "w") as f:
        f.write("keep")
    os.symlink(keep, os.path.join(work, "link.prom"))
    os.mkfifo(os.path.join(work, "fifo.prom"))
    for name in ["link.prom", "fifo.prom", "/dev/null"]:
        path = name if name.startswith("/") else os.path.join(work, name)
        expect(f"prometheus -o {name}", [binary, "prometheus", db, "-o", path], 73,
               lambda path=path: ([] if open(keep).read() == "keep" else ["the link's target changed"])
               + ([] if os.path.islink(path) or not name.endswith("link.prom") else ["the link was replaced"])
               + ([] if name != "/dev/null" or os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
                  else ["/dev/null was replaced"]))

    # Leftovers of a process killed with SIGKILL: the next export into the directory removes them.
    killed = os.path.join(work, "killed")
    os.makedirs(killed)
    child = subprocess.Popen([binary, "prometheus", FIXTURE, "-o", os.path.join(killed, "m.prom")])
    child.wait()
    host = os.uname().nodename
    stale = os.path.join(killed, f".parsl-export-{child.pid}@{host}-deadbeef.tmp")
    with open(stale, "w") as f:
        f.write("x" * 4096)
    expect("an export into a directory with a killed run's temporary file", [binary, "prometheus", db, "-o",
           os.path.join(killed, "m.prom")], 0, lambda: [] if not os.path.exists(stale) else ["stale file kept"])
    # And a real one: SIGKILL mid-export, then an export into the same directory.
    big = os.path.join(work, "big.db")
    make_big_db(big, 20)
    victim_dir = os.path.join(work, "sigkill")
    proc = subprocess.Popen([binary, "csv", big, "-o", victim_dir, "-q"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(n.endswith(".tmp") for n in outputs.list_files(victim_dir)
                                                  if os.path.isdir(victim_dir)):
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    left = [n for n in outputs.list_files(victim_dir)] if os.path.isdir(victim_dir) else []
    expect("csv after a SIGKILLed csv into the same directory", [binary, "csv", db, "-o", victim_dir, "-q"], 0,
           lambda: [f"temporary files kept: {t}" for t in outputs.list_files(victim_dir) if t.endswith(".tmp")])
    figure(f"safety: the killed export left {sum(1 for n in left if n.endswith('.tmp'))} temporary file(s); "
           "the next export removed them")

    # --immutable promises no writer: a -wal file or a journal with content says otherwise.
    imm = os.path.join(work, "imm.db")
    shutil.copyfile(FIXTURE, imm)
    with open(imm + "-wal", "wb") as f:
        f.write(b"\x37\x7f\x06\x82" + b"\0" * 28)
    expect("--immutable with a -wal file", [binary, "inspect", "--immutable", imm], 65)
    os.unlink(imm + "-wal")
    with open(imm + "-journal", "wb") as f:
        f.write(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + b"\0" * 504)
    expect("--immutable with a journal", [binary, "csv", "--immutable", imm, "-o", os.path.join(work, "imm-out")], 65)
    figure(f"safety: {passed}/{cases} cases (previous outputs kept, source refused as output, links and devices "
           "refused, stale temporary files removed, --immutable with a log refused)")


# ---------------------------------------------------------------------------------------------------------------
# (d) Corrupt-database fuzz loop.

SCHEMA_NAMES = ["task_id", "run_id", "try_id", "timestamp", "task_func_name", "hostname", "x", "Q", "\"a b\"",
                "\"é\"", "\"\u2028\"", "block_id", "task_status_name", "psutil_process_pid"]
SCHEMA_TYPES = ["INTEGER", "TEXT", "REAL", "BLOB", "FLOAT", "DATETIME", "BOOLEAN", "VARCHAR(8)", "NUMERIC", ""]


def damage_schema(path, rng):
    """Rewrites one table's CREATE statement as damage to the schema page can, on an otherwise sound file: a column
    renamed, dropped (the values after it shift into the wrong columns), retyped, made nullable or NOT NULL, or one
    character replaced."""
    con = sqlite3.connect(path)
    tables = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL").fetchall()
    name, sql = rng.choice(tables)
    lines = sql.split("\n")
    columns = [i for i, line in enumerate(lines) if line.startswith("\t")
               and not line.lstrip().startswith(("PRIMARY", "FOREIGN", "UNIQUE", "CHECK", "CONSTRAINT"))]
    kind = rng.choice(["rename", "drop", "type", "nullable", "character"])
    i = rng.choice(columns)
    words = lines[i].strip().rstrip(",").split(" ")
    comma = "," if lines[i].rstrip().endswith(",") else ""
    if kind == "rename":
        words[0] = rng.choice(SCHEMA_NAMES)
    elif kind == "type":
        words[1:2] = [t for t in [rng.choice(SCHEMA_TYPES)] if t]
    elif kind == "nullable":
        text = " ".join(words)
        words = (text.replace(" NOT NULL", "") if "NOT NULL" in text else text + " NOT NULL").split(" ")
    if kind == "drop":
        del lines[i]
        if lines[i - 1].rstrip().endswith(",") and lines[i].startswith(")"):
            lines[i - 1] = lines[i - 1].rstrip().rstrip(",")
    elif kind == "character":
        pos = rng.randrange(len(sql))
        lines = (sql[:pos] + chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 32), 0xE9, 0x2028]))
                 + sql[pos + 1:]).split("\n")
    else:
        lines[i] = "\t" + " ".join(words) + comma
    con.execute("PRAGMA writable_schema = ON")
    con.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", ("\n".join(lines), name))
    con.commit()
    con.close()


def fuzz_case(binary, commands, work, n, seed):
    rng = random.Random(seed)
    data = bytearray(open(FIXTURE, "rb").read())
    schema_damage = n % 2 == 1
    if not schema_damage:
        flips = rng.randint(1, 16)
        for _ in range(flips):
            # Half the flips hit the header and schema page, where damage changes the most.
            pos = rng.randrange(0, 4096) if rng.random() < 0.5 else rng.randrange(len(data))
            data[pos] = rng.randrange(256) if rng.random() < 0.5 else data[pos] ^ (1 << rng.randrange(8))
    case_dir = os.path.join(work, f"fuzz-{n}")
    os.makedirs(case_dir)
    db = os.path.join(case_dir, "monitoring.db")
    with open(db, "wb") as f:
        f.write(data)
    if schema_damage:
        damage_schema(db, rng)
    digest = sha256(db)
    problems, codes = [], []
    for command in commands:
        out = os.path.join(work, f"fuzz-{n}-{command}-out")
        os.makedirs(out)
        try:
            p = subprocess.run(outputs.command_line(binary, command, db, out), capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            problems.append(f"{command}: hang (> 60 s)")
            codes.append("hang")
            continue
        rc = p.returncode
        codes.append(rc)
        lines = [l for l in p.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
        files = outputs.list_files(out)
        if rc < 0 or (rc >= 128 and rc != 130):
            problems.append(f"{command}: crash rc {rc}: {lines[-3:]}")
        elif rc != 0:
            if rc not in outputs.DOCUMENTED_FAILURES or len(lines) != 1 or db not in lines[0]:
                problems.append(f"{command}: rc {rc} with stderr {lines[:3]}")
            if files:
                problems.append(f"{command}: failed but left {files}")
        else:
            try:
                counts = outputs.sqlite_counts(db)
            except sqlite3.DatabaseError:
                counts = None  # SQLite cannot count it either; validity of the files is all we can check
            for rel in files:
                try:
                    table, rows = outputs.validate_file(os.path.join(out, rel))
                except Exception as e:
                    problems.append(f"{command}: invalid {rel}: {e}")
                    continue
                if counts and table in counts and rows != counts[table]:
                    problems.append(f"{command}: exit 0 but {rel} has {rows} rows, SQLite counts {counts[table]}")
        shutil.rmtree(out)
    if sha256(db) != digest:
        problems.append("source changed")
    return codes, problems, case_dir


def fuzz(binary, runnable, work, iterations, seed):
    section = "fuzz"
    # Every case runs inspect and one export, taking the exports in turn, so each command meets corrupt files.
    exports = [c for c in ("csv", "parquet", "trace", "prometheus", "all") if c in runnable]
    first = ["inspect"] if "inspect" in runnable else []
    cases = [first + exports[n % len(exports):][:1] for n in range(iterations)]
    print(f"\n== (d) corrupt-database fuzz: {iterations} cases (random bytes flipped, or one table's CREATE statement "
          f"damaged, in turn), each inspect and one of {' '.join(exports)}", flush=True)
    histogram, kinds = {}, {}
    kept = tempfile.mkdtemp(prefix="torture-fuzz-failures-")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(fuzz_case, binary, cases[n], work, n, seed * 100003 + n) for n in range(iterations)]
        for n, job in enumerate(jobs):
            codes, problems, case_dir = job.result()
            for c in codes:
                histogram[c] = histogram.get(c, 0) + 1
            if problems:
                target = os.path.join(kept, os.path.basename(case_dir))
                shutil.move(case_dir, target)
            else:
                shutil.rmtree(case_dir)
            for p in problems:
                # Group by the kind of problem so one bug does not flood the report; every case still counts.
                kind = p.split(":")[0] + ": " + ("error of several lines" if "stderr [" in p and "', '" in p
                                                 else p.split(":", 1)[1].strip()[:60])
                kinds.setdefault(kind, []).append(f"case {n} ({target}): {p}")
    for kind, examples in kinds.items():
        fail(section, f"{len(examples)} cases, {kind}; first: {examples[0][:400]}")
    if not kinds:
        os.rmdir(kept)
    figure(f"fuzz: {iterations} corrupt databases, {sum(map(len, cases))} runs ({' '.join(first + exports)}), exit codes "
           + ", ".join(f"{k}: {v}" for k, v in sorted(histogram.items(), key=lambda kv: str(kv[0]))))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--binary", default=os.environ.get("PARSL_EXPORT"))
    ap.add_argument("--writer-seconds", type=int, default=60)
    ap.add_argument("--copies", type=int, default=60, help="copies of the real fixture's rows for the writer's database")
    ap.add_argument("--writer-tasks", type=int, default=0,
                    help="instead, a scripts/synth-db database of this many tasks for the writer (e.g. 100000)")
    ap.add_argument("--writer-interval", type=float, default=1.0, help="seconds between the writer's batches")
    ap.add_argument("--writer-db", help="instead, a copy of this database for the writer")
    ap.add_argument("--writer-status-rows", type=int, default=0,
                    help="then the writer part again, each command once, with the status table grown to this many "
                         "rows (copies of its own rows under other run ids)")
    ap.add_argument("--writer-limit-ms", type=float, default=50.0,
                    help="longest time the writer may be locked out of a commit")
    ap.add_argument("--tasks", type=int, default=15000, help="tasks in the synthetic database for the signal runs")
    ap.add_argument("--signal-repeats", type=int, default=3)
    ap.add_argument("--fuzz", type=int, default=300, help="fuzz iterations")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--only", choices=["writer", "signals", "output", "safety", "fuzz"], action="append")
    args = ap.parse_args()
    if not args.binary:
        sys.exit("torture: set PARSL_EXPORT or pass --binary")
    runnable, other, unknown = outputs.plan(args.binary)
    print(f"torture: seed {args.seed}; commands run: {' '.join(runnable)}; not run here: "
          f"{' '.join(other) or '-'}; not covered: {' '.join(unknown) or '-'}")
    if unknown:
        failures.append(f"commands this script cannot run: {' '.join(unknown)}")
    rng = random.Random(args.seed)
    parts = args.only or ["writer", "signals", "output", "safety", "fuzz"]
    work = tempfile.mkdtemp(prefix="torture-")
    started = time.monotonic()
    try:
        if "writer" in parts:
            live_writer(args.binary, runnable, work, args.writer_seconds, args.copies, args.writer_tasks,
                        args.writer_interval, args.writer_db, 0, args.writer_limit_ms)
            if args.writer_status_rows:
                # The same database again with its status table grown: a lock that grows with a table shows here.
                live_writer(args.binary, runnable, work, args.writer_seconds, args.copies, args.writer_tasks,
                            args.writer_interval, args.writer_db, args.writer_status_rows, args.writer_limit_ms,
                            each_once=True)
            if "inspect" in runnable:
                opens_while_growing(args.binary, work)
        if "signals" in parts:
            interrupts(args.binary, runnable, work, args.tasks, args.signal_repeats, rng)
        if "output" in parts:
            output_failures(args.binary, runnable, work, args.copies)
        if "safety" in parts:
            output_safety(args.binary, runnable, work)
        if "fuzz" in parts:
            fuzz(args.binary, runnable, work, args.fuzz, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n== torture figures ({time.monotonic() - started:.0f} s, parts: {' '.join(parts)})")
    for f in figures:
        print(f"  {f}")
    for f in failures:
        print(f"FAIL {f}")
    print("torture: " + ("passed" if not failures else f"{len(failures)} failures"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
