"""What the metrics must say about a database, computed straight from SQLite with Python (an implementation
independent of the Swift one): same definitions, written as SQL and dicts."""
import sqlite3
from collections import Counter, defaultdict
from datetime import datetime, timezone

TERMINAL = {"exec_done", "memo_done", "failed", "dep_fail", "done"}
TRY_END = TERMINAL | {"fail_retryable"}


def connect(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def columns(db, table):
    return {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}


def micros(text):
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(str(text).replace("T", " "))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def expected(path):
    db = connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    out = {"rows": {t: (db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] if t in tables else 0)
                    for t in ["workflow", "task", "status", "block", "node", "resource"]}}
    apps = {}
    if "task" in tables:
        for run, task, app in db.execute("SELECT run_id, task_id, task_func_name FROM task"):
            apps[(run, task)] = app or ""
    has_try = "status" in tables and "try_id" in columns(db, "status")
    # Current state of each task: a terminal state first, then the highest try, then the latest time, then rowid.
    current = {}
    tries = Counter()
    ended = set()
    queue, run_time = defaultdict(list), defaultdict(list)
    if "status" in tables:
        query = "SELECT rowid, run_id, task_id, task_status_name, timestamp, " + (
            "try_id" if has_try else "NULL") + " FROM status ORDER BY rowid"
        for rowid, run, task, state, ts, attempt in db.execute(query):
            t = micros(ts)
            key = (1 if state in TERMINAL else 0, attempt if attempt is not None else -1,
                   t if t is not None else -(2**63), rowid)
            if (run, task) not in current or key >= current[(run, task)][0]:
                current[(run, task)] = (key, state)
            app = apps.get((run, task), "")
            # One per try: Parsl up to 2024.01 wrote some dep_fail rows twice. Without try ids, every row.
            if state in TRY_END and (not has_try or (run, task, attempt, state) not in ended):
                tries[(app, state)] += 1
                ended.add((run, task, attempt, state))
    # Queue wait (launched -> running) and run time (running -> returned) from the try table's times.
    if "try" in tables:
        cols = columns(db, "try")
        times = [c if c in cols else "NULL" for c in
                 ("task_try_time_launched", "task_try_time_running", "task_try_time_returned")]
        for run, task, launched, running, returned in db.execute(
                f"SELECT run_id, task_id, {', '.join(times)} FROM try"):
            app = apps.get((run, task), "")
            launched, running, returned = micros(launched), micros(running), micros(returned)
            if launched is not None and running is not None:
                queue[app].append(max(0, running - launched) / 1e6)
            if running is not None and returned is not None:
                run_time[app].append(max(0, returned - running) / 1e6)
    out["tasks"] = Counter((apps.get(k, ""), v[1]) for k, v in current.items())
    out["tries"] = tries
    out["queue"] = {a: (len(v), sum(v)) for a, v in queue.items()}
    out["run_time"] = {a: (len(v), sum(v)) for a, v in run_time.items()}
    out["runs"] = db.execute("SELECT count(*), count(time_completed) FROM workflow").fetchone() if "workflow" in tables else (0, 0)
    blocks = {}
    if "block" in tables:
        for rowid, run, ex, block, status, ts in db.execute(
                "SELECT rowid, run_id, executor_label, block_id, status, timestamp FROM block ORDER BY rowid"):
            t = micros(ts) or -(2**63)
            k = (run, ex, block)
            if k not in blocks or t >= blocks[k][0]:
                blocks[k] = (t, status)
    out["blocks"] = Counter((ex, s) for (run, ex, b), (t, s) in blocks.items())
    # Managers registered now: latest snapshot per manager, of runs not completed, in blocks not ended.
    ended = {"CANCELLED", "COMPLETED", "FAILED", "TIMEOUT", "MISSING", "SCALED_IN"}
    live_blocks = {(run, b) for (run, ex, b), (t, s) in blocks.items() if s not in ended}
    ended_blocks = {(run, b) for (run, ex, b), (t, s) in blocks.items() if s in ended}
    completed_runs = {r for (r,) in db.execute("SELECT run_id FROM workflow WHERE time_completed IS NOT NULL")} \
        if "workflow" in tables else set()
    managers = {}
    if "node" in tables:
        node_cols = columns(db, "node")
        block = "block_id" if "block_id" in node_cols else "''"
        uid = "uid" if "uid" in node_cols else f"hostname || '/' || {block}"
        workers = "worker_count" if "worker_count" in node_cols else "0"
        for run, manager, b, workers in db.execute(
                f"SELECT run_id, {uid}, {block}, {workers} FROM node ORDER BY rowid"):
            managers[(run, manager)] = (b, workers or 0)
    now = {k: w for (run, m), (b, w) in managers.items() for k in [(run, m)]
           if run not in completed_runs and ((run, b) in live_blocks or (run, b) not in ended_blocks)}
    out["managers"] = len(now)
    out["workers"] = sum(now.values())
    return out
