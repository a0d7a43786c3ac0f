"""Replays a finished Parsl monitoring database into a fresh file in the order Parsl's database manager writes it,
one small commit per change: the workflow row first; then, in time order, each task's row when its first try is
launched, each try inserted with its launch time only and updated when it starts running, status, resource,
block and node rows at their timestamps, the try's block and host (Parsl's deferred update) after its resource
samples, its returned time last; the run's completion at the end.

The writer publishes which tries it has committed, so a reader started at any moment knows what it must find."""
import random
import sqlite3
import threading
import time

TRY_TIMES = ("task_try_time_launched", "task_try_time_running", "task_try_time_returned")


def _rows(db, table):
    cursor = db.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
    names = [d[0] for d in cursor.description]
    return names, [dict(zip(names, row)) for row in cursor]


def _has(db, table):
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def plan(source_path):
    """The source's DDL and the replay's steps: (sort key, description, SQL statements, try committed or None)."""
    src = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    ddl = [sql for (sql,) in src.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
    steps = []

    def insert(table, row):
        names = list(row)
        return (f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" for _ in names)})',
                [row[n] for n in names])

    def add(key, rank, statements, committed=None):
        steps.append(((key or "", rank, len(steps)), statements, committed))

    _, workflows = _rows(src, "workflow")
    for workflow in workflows:
        opening = dict(workflow, time_completed=None)
        add("", 0, [insert("workflow", opening)])
        add("\uffff", 9, [(
            "UPDATE workflow SET time_completed = ?, tasks_completed_count = ?, tasks_failed_count = ? WHERE run_id = ?",
            [workflow["time_completed"], workflow["tasks_completed_count"], workflow["tasks_failed_count"],
             workflow["run_id"]])])

    tasks = {}
    if _has(src, "task"):
        for task in _rows(src, "task")[1]:
            tasks[(task["run_id"], task["task_id"])] = task
    inserted_tasks = set()
    first_sample = {}
    if _has(src, "resource"):
        for sample in _rows(src, "resource")[1]:
            key = (sample["run_id"], sample["task_id"], sample["try_id"])
            first_sample.setdefault(key, sample["timestamp"])
            add(sample["timestamp"], 3, [insert("resource", sample)])
    for attempt in _rows(src, "try")[1]:
        run, task, number = attempt["run_id"], attempt["task_id"], attempt["try_id"]
        launched, running, returned = (attempt[c] for c in TRY_TIMES)
        where = "WHERE run_id = ? AND task_id = ? AND try_id = ?"
        ident = [run, task, number]
        statements = []
        if (run, task) not in inserted_tasks and (run, task) in tasks:
            inserted_tasks.add((run, task))
            statements.append(insert("task", dict(tasks[(run, task)], task_time_returned=None)))
        opening = dict(attempt, block_id=None, hostname=None, task_try_time_running=None,
                       task_try_time_returned=None, task_fail_history=None)
        statements.append(insert("try", opening))
        begin = launched or running or returned
        add(begin, 1, statements, committed=(task, number))
        if running is not None:
            add(running, 2, [(f'UPDATE "try" SET task_try_time_running = ? {where}', [running, *ident])])
        # Parsl fills in the block and host after the first resource samples of the try reached the database.
        deferred = first_sample.get((run, task, number)) or running or begin
        add(deferred, 4, [(f'UPDATE "try" SET block_id = ?, hostname = ? {where}',
                           [attempt["block_id"], attempt["hostname"], *ident])])
        if returned is not None:
            update = [(f'UPDATE "try" SET task_try_time_returned = ?, task_fail_history = ? {where}',
                       [returned, attempt["task_fail_history"], *ident])]
            task_row = tasks.get((run, task))
            if task_row is not None and task_row.get("task_time_returned") is not None:
                update.append(('UPDATE task SET task_time_returned = ? WHERE run_id = ? AND task_id = ?',
                               [task_row["task_time_returned"], run, task]))
            add(returned, 5, update)
    for task_key, task in tasks.items():
        if task_key not in inserted_tasks:
            add(task.get("task_time_invoked"), 1, [insert("task", task)])
    for table, rank in (("status", 1), ("block", 6), ("node", 6)):
        if not _has(src, table):
            continue
        for row in _rows(src, table)[1]:
            add(row.get("timestamp") or row.get("reg_time"), rank, [insert(table, row)])
    src.close()
    steps.sort(key=lambda step: step[0])
    return ddl, [(statements, committed) for _, statements, committed in steps]


class Replay:
    """Writes the plan into `path` on a thread of its own, one commit per step, `pause` seconds apart (with a
    seeded jitter). `committed()` is a copy of the tries whose rows are committed so far."""

    def __init__(self, source_path, path, pause=0.002, seed=13, journal_mode="delete"):
        self.ddl, self.steps = plan(source_path)
        self.path = path
        self.pause = pause
        self.rng = random.Random(seed)
        self.journal_mode = journal_mode
        self._committed = set()
        self.steps_done = 0
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.error = None
        self.busy_waits = 0
        db = sqlite3.connect(path, isolation_level=None)
        db.execute(f"PRAGMA journal_mode = {journal_mode}")
        for sql in self.ddl:
            db.execute(sql)
        db.close()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def committed(self):
        with self._lock:
            return set(self._committed)

    def start(self):
        """Starts writing; returns once the workflow row is committed."""
        self._thread.start()
        while not self.done.is_set():
            with self._lock:
                if self.steps_done:
                    return
            time.sleep(0.001)

    def join(self):
        self._thread.join()
        if self.error:
            raise self.error

    def _run(self):
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            db.execute("PRAGMA synchronous = OFF")
            for statements, committed in self.steps:
                while True:
                    try:
                        db.execute("BEGIN IMMEDIATE")
                        for sql, values in statements:
                            db.execute(sql, values)
                        db.execute("COMMIT")
                        break
                    except sqlite3.OperationalError as error:
                        if "locked" not in str(error) and "busy" not in str(error):
                            raise
                        self.busy_waits += 1
                        try:
                            db.execute("ROLLBACK")
                        except sqlite3.OperationalError:
                            pass
                        time.sleep(0.001)
                with self._lock:
                    if committed is not None:
                        self._committed.add(committed)
                    self.steps_done += 1
                time.sleep(self.pause * (0.5 + self.rng.random()))
            db.close()
        except Exception as error:  # reported by join()
            self.error = error
        finally:
            self.done.set()
