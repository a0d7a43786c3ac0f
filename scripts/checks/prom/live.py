"""Live test: serve follows a copy of a real database while parsl_writer.py appends to it; then the file goes
missing, gets locked and is replaced, and serve must say so (parsl_export_database_up 0, last good values) and
recover by itself."""
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

from expected import expected
from promtools import CheckFailed, free_port, http, samples

BATCHES = 8
PER_BATCH = 50


def scrape(port):
    status, _, body = http(f"http://127.0.0.1:{port}/metrics", timeout=15)
    if status != 200:
        raise CheckFailed(f"scrape: HTTP {status}")
    return samples(body)


def value(s, name, **labels):
    return sum(v for (n, ls), v in s.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def run(binary, source, work, other=None):
    from check_prometheus import compare, start_serve, stop_serve  # noqa: PLC0415 - avoids a cycle at import
    db = os.path.join(work, "live.db")
    shutil.copy(source, db)
    before = expected(db)
    base_tasks = sum(before["tasks"].values())
    base_done = sum(n for (a, s), n in before["tasks"].items() if s == "exec_done")
    port = free_port()
    serve = start_serve(binary, db, port, ["--interval", "0.2"])
    stop = threading.Event()
    scrapes = [0]

    def hammer():  # other clients scraping all along: reads must not stall the writer
        while not stop.is_set():
            scrape(port)
            scrapes[0] += 1

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    writer = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "parsl_writer.py"), db,
                               str(BATCHES), str(PER_BATCH)], stdout=subprocess.PIPE, text=True)
    longest = 0.0
    try:
        for line in writer.stdout:
            batch, added, done, blocks, wait = line.split()
            longest = max(longest, float(wait))
            s = scrape(port)  # after the commit: must show it
            tasks = value(s, "parsl_tasks")
            exec_done = value(s, "parsl_tasks", state="exec_done")
            if tasks < base_tasks + int(added) or exec_done < base_done + int(done):
                raise CheckFailed(f"batch {batch}: scrape shows {tasks} tasks / {exec_done} exec_done, "
                                  f"committed {base_tasks + int(added)} / {base_done + int(done)}")
        if writer.wait() != 0:
            raise CheckFailed("the writer failed")
    finally:
        stop.set()
        thread.join(timeout=30)
    final = scrape(port)
    compare(final, expected(db), "live database after the writer")
    print(f"  live: {BATCHES} batches x {PER_BATCH} tasks appended, each shown by the next scrape; "
          f"{scrapes[0]} concurrent scrapes; writer's longest commit wait {longest:.1f} ms")
    if longest >= 100:
        raise CheckFailed(f"the writer waited {longest:.1f} ms for a commit (limit 100 ms)")

    # Missing file: last good values, database_up 0; back: up 1.
    os.rename(db, db + ".away")
    s = scrape(port)
    if value(s, "parsl_export_database_up") != 0 or value(s, "parsl_tasks") != value(final, "parsl_tasks"):
        raise CheckFailed("missing file: expected database_up 0 with the last values")
    os.rename(db + ".away", db)
    if value(scrape(port), "parsl_export_database_up") != 1:
        raise CheckFailed("file back: expected database_up 1")
    # Locked past the busy timeout (1 s): database_up 0; unlocked: 1.
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    s = scrape(port)
    locker.execute("ROLLBACK")
    locker.close()
    if value(s, "parsl_export_database_up") != 0 or value(s, "parsl_tasks") != value(final, "parsl_tasks"):
        raise CheckFailed("locked file: expected database_up 0 with the last values")
    if value(scrape(port), "parsl_export_database_up") != 1:
        raise CheckFailed("unlocked: expected database_up 1")
    # Replaced by another database (new inode, fewer rows): read from scratch.
    shutil.copy(source, db + ".new")
    os.replace(db + ".new", db)
    s = scrape(port)
    compare(s, expected(db), "replaced database")
    print("  live: missing -> database_up 0 (last values kept) -> 1; locked -> 0 -> 1; replaced -> re-read, equal to SQLite")
    if other:
        # Overwritten in place by another database (same inode, other runs): detected, read anew.
        inode = os.stat(db).st_ino
        with open(other, "rb") as f:
            content = f.read()
        with open(db, "r+b") as f:
            f.truncate(0)
            f.write(content)
        if os.stat(db).st_ino != inode:
            raise CheckFailed("the in-place overwrite changed the inode")
        s = scrape(port)
        compare(s, expected(db), "database overwritten in place")
        if value(s, "parsl_export_database_replacements_total") < 2:
            raise CheckFailed("overwritten in place: parsl_export_database_replacements_total did not count it")
        print(f"  live: overwritten in place by {os.path.basename(other)} (same inode) -> detected, equal to SQLite")
    stop_serve(serve)
