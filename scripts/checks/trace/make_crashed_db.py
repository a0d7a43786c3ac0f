#!/usr/bin/env python3
"""Makes the database a crashed workflow would leave: a copy of SOURCE cut off at a moment of its first run.

usage: make_crashed_db.py SOURCE DEST [FRACTION]

Everything stamped after began + FRACTION (default 0.5) of the run's duration is removed, as if the process had
died then: later status/resource/node/block rows are deleted, tries not launched yet are deleted, later try and
task times become NULL, and the run has no time_completed. Tries that were running at the cut have no returned
time and no final status: the trace must show them open until the last timestamp left.
"""
import datetime
import sqlite3
import sys


def main():
    source, dest = sys.argv[1], sys.argv[2]
    fraction = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
    db = sqlite3.connect(dest)
    run_id, began, completed = db.execute(
        "select run_id, time_began, time_completed from workflow order by time_began limit 1").fetchone()
    start = datetime.datetime.fromisoformat(began)
    end = datetime.datetime.fromisoformat(completed)
    cut = (start + (end - start) * fraction).strftime("%Y-%m-%d %H:%M:%S.%f")
    # Timestamps are fixed-width text, so text comparison is time comparison.
    statements = [
        "update workflow set time_completed = null where run_id = :run",
        "delete from status where run_id = :run and timestamp > :cut",
        "delete from resource where run_id = :run and timestamp > :cut",
        "delete from node where run_id = :run and timestamp > :cut",
        "delete from block where run_id = :run and timestamp > :cut",
        "delete from task where run_id = :run and task_time_invoked > :cut",
        "update task set task_time_returned = null where run_id = :run and task_time_returned > :cut",
        "delete from try where run_id = :run and (task_try_time_launched > :cut or task_id not in "
        "(select task_id from task where run_id = :run))",
        "update try set task_try_time_running = null where run_id = :run and task_try_time_running > :cut",
        "update try set task_try_time_returned = null where run_id = :run and task_try_time_returned > :cut",
    ]
    for sql in statements:
        db.execute(sql, {"run": run_id, "cut": cut})
    db.commit()
    open_tries = db.execute(
        "select count(*) from try where run_id = ? and task_try_time_returned is null", (run_id,)).fetchone()[0]
    db.close()
    print(f"{dest}: run {run_id} cut at {cut}; {open_tries} tries without a returned time")


if __name__ == "__main__":
    main()
