#!/usr/bin/env python3
"""Appends to a Parsl monitoring database the way Parsl's database manager does: one batch a second, the task
rows committed before their status rows, and on "database is locked" a retry until it goes through. Measures how
long each commit waited (first attempt to success) and prints one line per batch:
  <batch> <tasks added so far> <exec_done added so far> <blocks added so far> <longest wait ms in this batch>

usage: parsl_writer.py DB BATCHES TASKS_PER_BATCH"""
import sqlite3
import sys
import time
from datetime import datetime, timedelta


def template(db, table):
    cur = db.execute(f'SELECT * FROM "{table}" LIMIT 1')
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    return names, (dict(zip(names, row)) if row else None)


def insert(db, table, names, rows):
    sql = f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" for _ in names)})'
    db.executemany(sql, [[r[n] for n in names] for r in rows])


def commit_with_retry(path, work):
    """Runs work(db) in one transaction, retrying while the database is locked; returns the wait in ms."""
    started = time.perf_counter()
    while True:
        db = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            work(db)
            db.execute("COMMIT")
            return (time.perf_counter() - started) * 1000
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            try:
                db.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass
            time.sleep(0.001)
        finally:
            db.close()


def main():
    path, batches, per_batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    probe = sqlite3.connect(path)
    task_names, task_row = template(probe, "task")
    status_names, status_row = template(probe, "status")
    block_names, block_row = template(probe, "block")
    node_names, node_row = template(probe, "node")
    resource_names, resource_row = template(probe, "resource")
    next_task = probe.execute("SELECT coalesce(max(task_id), -1) + 1 FROM task").fetchone()[0]
    next_node = probe.execute("SELECT coalesce(max(id), 0) + 1 FROM node").fetchone()[0] if node_row else 0
    probe.close()
    clock = datetime(2030, 1, 1)
    added = done = blocks = 0
    for batch in range(batches):
        ids = list(range(next_task, next_task + per_batch))
        next_task += per_batch
        clock += timedelta(seconds=1)

        def ts(offset):
            return (clock + timedelta(milliseconds=offset)).strftime("%Y-%m-%d %H:%M:%S.%f")

        def tasks(db):
            insert(db, "task", task_names, [dict(task_row, task_id=i, task_func_name="live_app") for i in ids])

        def statuses(db):
            rows = []
            for n, i in enumerate(ids):
                states = ["pending", "launched", "running"] + (["exec_done"] if n % 2 == 0 else [])
                rows += [dict(status_row, task_id=i, try_id=0, task_status_name=s, timestamp=ts(10 * k))
                         for k, s in enumerate(states)]
            insert(db, "status", status_names, rows)
            if resource_row:
                insert(db, "resource", resource_names,
                       [dict(resource_row, task_id=i, try_id=0, timestamp=ts(5)) for i in ids])

        def infrastructure(db):
            if block_row:
                insert(db, "block", block_names, [dict(block_row, block_id=f"live{batch}", status="PENDING", timestamp=ts(0))])
            if node_row:
                insert(db, "node", node_names, [dict(node_row, id=next_node + batch, uid=f"live{batch}", timestamp=ts(0))])

        waits = [commit_with_retry(path, tasks), commit_with_retry(path, statuses), commit_with_retry(path, infrastructure)]
        added += per_batch
        done += (per_batch + 1) // 2
        blocks += 1 if block_row else 0
        print(batch, added, done, blocks, f"{max(waits):.2f}", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
