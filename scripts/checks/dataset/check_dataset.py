"""Builds a dataset with `parsl-export dataset`, updates it step by step, and after every step has DuckDB, polars,
pyarrow.dataset and Spark read it: partitions found, counts and values equal to SQLite for every run, no duplicates,
run_id a string everywhere, the README's cross-run query answered alike by all four.

usage: python check_dataset.py PARSL_EXPORT WORK FIXTURE.db... -- SYNTH_A.db WEIRD.db SYNTH_B.db GROW_FULL.db

The expectations come from the SQLite files and Mappings/*.json, never from constants: which database owns a run
is recomputed from the documented rule (first database with the run, in the order the updates named them).
"""
import fcntl
import hashlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse

import duckdb
import polars as pl
import pyarrow.dataset as pads
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parquet_values import mapping, normalise_source, normalise_parquet, equal  # noqa: E402
from csv_check import try_summary_expected  # noqa: E402

TABLES = ["workflow", "task", "try", "status", "resource", "block", "node", "try_summary"]
MANIFEST = "_parsl_export_manifest.json"
ROOT_FILES = {MANIFEST, "_parsl_export.lock", "_SUCCESS"}

# The README's cross-run question: median run time per app per run (tries that ran), in each engine's own words.
CROSS_RUN_SQL = """
    SELECT run_id, task_func_name, median(run_time_seconds) AS median_run_time, count(*) AS tries
    FROM read_parquet('{root}/try_summary/**/*.parquet', hive_partitioning = true)
    WHERE run_time_seconds IS NOT NULL
    GROUP BY run_id, task_func_name
"""

problems = []


def problem(text):
    problems.append(text)
    print("PROBLEM", text, file=sys.stderr)


def run_export(binary, root, databases, *extra, expect=0):
    started = time.monotonic()
    result = subprocess.run([binary, "dataset", *databases, "-o", root, *extra], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != expect:
        problem(f"dataset exited {result.returncode}, expected {expect}: {result.stderr.strip()}")
    return result, elapsed


def summary_counts(stderr):
    """(added, updated, skipped) from the summary line."""
    line = [l for l in stderr.splitlines() if l.startswith("dataset ")][-1]
    words = line.split(": ", 1)[1].replace(",", "").replace(";", "").split()
    return int(words[0]), int(words[3]), int(words[5])


def source_runs(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT run_id FROM workflow ORDER BY rowid")]
    finally:
        con.close()


def owners(databases):
    """run id -> the database that owns it under the documented rule (first to have it)."""
    owner = {}
    for db in databases:
        for run in source_runs(db):
            owner.setdefault(run, os.path.realpath(db))
    return owner


def sqlite_counts(db, run):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    counts = {}
    for table in TABLES:
        source = "try" if table == "try_summary" else table
        counts[table] = (con.execute(f'SELECT count(*) FROM "{source}" WHERE run_id = ?', (run,)).fetchone()[0]
                         if source in present else 0)
    con.close()
    return counts


def tree_snapshot(root):
    """Every path under ROOT with its inode, size and mtime, and the manifest's bytes: equal means untouched."""
    entries = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            entries[os.path.relpath(path, root)] = (info.st_ino, info.st_size, info.st_mtime_ns)
    with open(os.path.join(root, MANIFEST), "rb") as f:
        entries["manifest-sha256"] = hashlib.sha256(f.read()).hexdigest()
    return entries


def check_tree(root, expected_runs):
    """Layout: only table dirs and the `_` files at ROOT, only run_id= dirs with part-0.parquet under a table."""
    names = set(os.listdir(root))
    if names != set(TABLES) | ROOT_FILES:
        problem(f"ROOT holds {sorted(names - set(TABLES) - ROOT_FILES)} besides the tables, or lacks "
                f"{sorted((set(TABLES) | ROOT_FILES) - names)}")
    for table in TABLES:
        found = set()
        for entry in os.listdir(os.path.join(root, table)):
            path = os.path.join(root, table, entry)
            if not entry.startswith("run_id=") or not os.path.isdir(path):
                problem(f"{table}/{entry}: not a run_id= directory")
                continue
            inside = os.listdir(path)
            if inside != ["part-0.parquet"]:
                problem(f"{table}/{entry}: holds {inside}")
            run = urllib.parse.unquote(entry[len("run_id="):])
            found.add(run)
            # The file's own run_id column equals the directory's value.
            values = set(pq.read_table(os.path.join(path, "part-0.parquet"), columns=["run_id"]).column(0).to_pylist())
            if values - {run}:
                problem(f"{table}/{entry}: file holds run_id {values - {run}}")
        if found != set(expected_runs):
            problem(f"{table}: partitions {sorted(found ^ set(expected_runs))} differ from the runs expected")


def partition_files(root, run):
    files = {}
    for table in TABLES:
        info = os.stat(f"{root}/{table}/run_id={escape(run)}/part-0.parquet")
        files[table] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return files


def check_values(root, owner, runs, summaries, verified):
    """Every value of every run against its owner database, from the partition files themselves; runs whose files
    were compared before and have not been touched since (same inode, size, mtime) are not compared again."""
    compared = 0
    for run in runs:
        files = partition_files(root, run)
        if verified.get(run) == (owner[run], files):
            continue
        verified[run] = (owner[run], files)
        db = owner[run]
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        present = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        partition = "run_id=" + escape(run)
        for table in TABLES:
            arrow = pq.read_table(f"{root}/{table}/{partition}/part-0.parquet")
            md = mapping(table)
            for name in md:
                if name not in arrow.schema.names:
                    problem(f"{table}: mapped column {name} missing from the dataset")
            if table == "try_summary":
                if db not in summaries:
                    summaries[db] = try_summary_expected(sqlite3.connect(f"file:{db}?mode=ro", uri=True))
                want = summaries[db]
                for row in arrow.to_pylist():
                    expected = want.get((row["run_id"], row["task_id"], row["try_id"]))
                    if expected is None:
                        problem(f"try_summary {run} {row['task_id']}/{row['try_id']}: not a try in SQLite")
                        continue
                    for name, column in md.items():
                        value, source = row[name], expected[name]
                        if name == "final_state":
                            ok = value is None if source is None else value in source
                        elif name == "cpu_seconds" and source is not None and value is not None:
                            ok = abs(value - source) <= 5e-7 + 1e-12
                        else:
                            ok = equal(normalise_source(source, column["type"]),
                                       normalise_parquet(value, column["type"]), column["type"])
                        if not ok:
                            problem(f"try_summary {run} {row['task_id']}/{row['try_id']} {name}: {source!r} vs {value!r}")
                        compared += 1
                continue
            if table not in present:
                if arrow.num_rows:
                    problem(f"{table} {run}: absent in {db} but {arrow.num_rows} rows")
                continue
            columns = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")') if r[1] in md]
            quoted = ", ".join(f'"{c}"' for c in columns)
            source_rows = src.execute(f'SELECT {quoted} FROM "{table}" WHERE run_id = ? ORDER BY rowid', (run,)).fetchall()
            got = arrow.select(columns).to_pylist()
            if len(source_rows) != len(got):
                problem(f"{table} {run}: {len(source_rows)} rows in SQLite, {len(got)} in the dataset")
                continue
            for source_row, row in zip(source_rows, got):
                for name, value in zip(columns, source_row):
                    kind = md[name]["type"]
                    if not equal(normalise_source(value, kind), normalise_parquet(row[name], kind), kind):
                        problem(f"{table} {run} {name}: sqlite {value!r}, dataset {row[name]!r}")
                    compared += 1
        # task_key: one per task; Parsl's hashsum where it recorded one (memoized calls of one computation share
        # it), otherwise a key of its own.
        keys = pq.read_table(f"{root}/try_summary/{partition}/part-0.parquet", columns=["task_id", "task_key"]).to_pylist()
        per_task = {}
        for row in keys:
            per_task.setdefault(row["task_id"], set()).add(row["task_key"])
        app_keys = [next(iter(v)) for v in per_task.values() if len(v) == 1 and next(iter(v), "").startswith("app:")]
        if any(len(v) != 1 or None in v for v in per_task.values()) or len(set(app_keys)) != len(app_keys):
            problem(f"try_summary {run}: task_key is not one key per task, or app keys repeat")
        if "task" in present:
            for task_id, hashsum in src.execute(
                    "SELECT task_id, task_hashsum FROM task WHERE run_id = ? AND task_hashsum IS NOT NULL "
                    "AND task_hashsum != ''", (run,)):
                if task_id in per_task and per_task[task_id] != {"hashsum:" + hashsum}:
                    problem(f"try_summary {run} task {task_id}: task_key {per_task[task_id]}, hashsum {hashsum}")
        src.close()
    return compared


def escape(value):
    out = []
    for ch in value:
        if ord(ch) < 0x80 and (ord(ch) < 0x20 or ch in '"#%\'*/:=?\\{[]^\x7f'):
            out.append("%%%02X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def engine_counts(root, spark):
    """Per engine and table: {run_id: rows}, and the run_id type each reports."""
    results = {}
    for table in TABLES:
        path = f"{root}/{table}"
        duck = duckdb.sql(f"SELECT run_id, count(*) FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true) "
                          "GROUP BY run_id").fetchall()
        duck_type = duckdb.sql(f"SELECT typeof(run_id) FROM read_parquet('{path}/**/*.parquet', "
                               "hive_partitioning = true) LIMIT 1").fetchone()[0]
        lazy = pl.scan_parquet(path, hive_partitioning=True)
        polars_type = str(lazy.collect_schema()["run_id"])
        polars_rows = dict(lazy.group_by("run_id").agg(pl.len()).collect().iter_rows())
        dataset = pads.dataset(path, format="parquet", partitioning="hive")
        arrow_type = str(dataset.schema.field("run_id").type)
        arrow_rows = arrow_group_counts(dataset)
        frame = spark.read.parquet(path)
        spark_type = dict(frame.dtypes)["run_id"]
        spark_rows = {r[0]: r[1] for r in frame.groupBy("run_id").count().collect()}
        results[table] = {
            "duckdb": (dict(duck), duck_type, "VARCHAR"),
            "polars": (polars_rows, polars_type, "String"),
            "pyarrow": (arrow_rows, arrow_type, "string"),
            "spark": (spark_rows, spark_type, "string"),
        }
    return results


def arrow_group_counts(dataset):
    grouped = dataset.to_table(columns=["run_id"]).group_by("run_id").aggregate([("run_id", "count")]).to_pydict()
    return dict(zip(grouped["run_id"], grouped["run_id_count"]))


def cross_run(root, spark):
    """The README query, answered by each engine: {(run_id, app): (median, tries)}."""
    answers = {}
    answers["duckdb"] = {(r, a): (m, n) for r, a, m, n in duckdb.sql(CROSS_RUN_SQL.format(root=root)).fetchall()}
    frame = (pl.scan_parquet(f"{root}/try_summary", hive_partitioning=True)
             .filter(pl.col("run_time_seconds").is_not_null())
             .group_by("run_id", "task_func_name")
             .agg(pl.col("run_time_seconds").median().alias("m"), pl.len().alias("n")).collect())
    answers["polars"] = {(r, a): (m, n) for r, a, m, n in frame.iter_rows()}
    table = pads.dataset(f"{root}/try_summary", format="parquet", partitioning="hive").to_table(
        columns=["run_id", "task_func_name", "run_time_seconds"],
        filter=pads.field("run_time_seconds").is_valid())
    groups = {}
    for r, a, t in zip(*table.to_pydict().values()):
        groups.setdefault((r, a), []).append(t)
    answers["pyarrow"] = {k: (median(v), len(v)) for k, v in groups.items()}
    spark.read.parquet(f"{root}/try_summary").createOrReplaceTempView("try_summary")
    answers["spark"] = {(r, a): (m, n) for r, a, m, n in spark.sql(
        "SELECT run_id, task_func_name, median(run_time_seconds), count(*) FROM try_summary "
        "WHERE run_time_seconds IS NOT NULL GROUP BY run_id, task_func_name").collect()}
    return answers


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def verify(step, root, databases, spark, summaries, verified):
    started = time.monotonic()
    owner = owners(databases)
    runs = sorted(owner)
    check_tree(root, runs)
    compared = check_values(root, owner, runs, summaries, verified)
    expected = {run: sqlite_counts(owner[run], run) for run in runs}
    manifest_runs = json.load(open(os.path.join(root, MANIFEST)))["runs"]
    for run in runs:
        entry = manifest_runs.get(run)
        if entry is None or entry["source"] != owner[run] or entry["replacing"]:
            problem(f"manifest entry of {run}: {entry}, owner {owner[run]}")
        elif entry["rows"] != expected[run]:
            problem(f"manifest rows of {run}: {entry['rows']}, SQLite {expected[run]}")
    counts = engine_counts(root, spark)
    for table, engines in counts.items():
        want = {run: expected[run][table] for run in runs if expected[run][table]}
        for engine, (rows, kind, string) in engines.items():
            if kind != string:
                problem(f"{step}: {engine} reads {table}.run_id as {kind}, not {string}")
            if {k: v for k, v in rows.items() if v} != want:
                problem(f"{step}: {engine} {table} counts {rows} differ from SQLite {want}")
    answers = cross_run(root, spark)
    reference = answers["duckdb"]
    if not reference:
        problem(f"{step}: the cross-run query found no rows")
    for engine, answer in answers.items():
        if answer.keys() != reference.keys() or any(
                answer[k][1] != reference[k][1] or not math.isclose(answer[k][0], reference[k][0], rel_tol=1e-9,
                                                                    abs_tol=1e-9) for k in reference):
            problem(f"{step}: {engine} answers the cross-run query differently from DuckDB")
    total = sum(sum(c.values()) for c in expected.values())
    print(f"{step}: {len(runs)} runs, {total} rows; {compared} values of new partitions compared with SQLite; "
          f"DuckDB, polars, pyarrow, Spark agree ({len(reference)} groups in the cross-run query) "
          f"[{time.monotonic() - started:.1f} s]")


def grow(full, partial):
    """Inserts into `partial`, in place, the rows of its unfinished run that `full` has, and finishes the run."""
    con = sqlite3.connect(partial)
    con.execute("ATTACH ? AS full", (full,))
    for table in ["task", "try", "status", "resource", "block", "node"]:
        con.execute(f'INSERT OR IGNORE INTO main."{table}" SELECT * FROM full."{table}"')
        # Parsl updates task and try rows in place as they progress.
        if table in ("task", "try"):
            con.execute(f'INSERT OR REPLACE INTO main."{table}" SELECT * FROM full."{table}"')
    con.execute("UPDATE main.workflow SET time_completed = (SELECT time_completed FROM full.workflow)")
    con.commit()
    con.execute("DETACH full")
    con.close()


def main():
    binary, work = sys.argv[1], sys.argv[2]
    split = sys.argv.index("--")
    fixtures = sys.argv[3:split]
    synth_a, weird, synth_b, grow_full = sys.argv[split + 1:split + 5]
    root = os.path.join(work, "dataset")
    grow_db = os.path.join(work, "grow.db")
    make_unfinished(grow_full, grow_db)

    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[1]").appName("check-dataset")
             .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.shuffle.partitions", "1")
             .config("spark.sql.session.timeZone", "UTC").config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    summaries = {}
    verified = {}

    # 1. Every fixture (five distinct runs; the other eight databases repeat one of them) plus a three-run database
    # and one whose run id needs escaping.
    first = fixtures + [synth_a, weird]
    result, first_seconds = run_export(binary, root, first)
    added, updated, skipped = summary_counts(result.stderr)
    distinct = len(owners(first))
    duplicates = sum(len(source_runs(db)) for db in first) - distinct
    if (added, updated) != (distinct, 0) or result.stderr.count("was already exported from") != duplicates:
        problem(f"first update: {result.stderr.strip()}; expected {distinct} added and {duplicates} duplicates")
    verify("1 first export", root, first, spark, summaries, verified)

    # 2. A new database and an unfinished run.
    second = first + [synth_b, grow_db]
    result, _ = run_export(binary, root, second)
    if summary_counts(result.stderr)[:2] != (len(source_runs(synth_b)) + 1, 0):
        problem(f"second update: {result.stderr.strip()}")
    verify("2 database added", root, second, spark, summaries, verified)

    # 3. The unfinished run grows and finishes: exported again, replacing its partitions.
    grow(grow_full, grow_db)
    summaries.pop(os.path.realpath(grow_db), None)
    result, _ = run_export(binary, root, second)
    if summary_counts(result.stderr)[:2] != (0, 1):
        problem(f"third update: {result.stderr.strip()}; expected the grown run updated")
    verify("3 unfinished run grew", root, second, spark, summaries, verified)

    # 4. Nothing changed: nothing is read or written but _SUCCESS, and it costs a fraction of the first export.
    before = tree_snapshot(root)
    result, again_seconds = run_export(binary, root, second)
    after = tree_snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k) and k != "_SUCCESS")
    if summary_counts(result.stderr)[:2] != (0, 0) or changed:
        problem(f"unchanged update: {result.stderr.strip()}; changed {changed}")
    verify("4 unchanged", root, second, spark, summaries, verified)
    print(f"unchanged update: {again_seconds:.3f} s, first export {first_seconds:.3f} s")

    # 5. A database that fails half-way (a damaged try page) leaves ROOT exactly as it was.
    broken = os.path.join(work, "broken.db")
    make_broken(fixtures[-1], broken)
    before = tree_snapshot(root)
    result, _ = run_export(binary, root, second + [broken], expect=65)
    after = tree_snapshot(root)
    if before != after or "broken.db" not in result.stderr:
        problem(f"failed update changed ROOT or did not name the file: {result.stderr.strip()}")

    # 6. The lock: a second update fails with a clear message, or waits with --wait.
    with open(os.path.join(root, "_parsl_export.lock")) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result, _ = run_export(binary, root, second, expect=73)
        if "another parsl-export dataset is updating" not in result.stderr:
            problem(f"locked update: {result.stderr.strip()}")
        waiting = subprocess.Popen([binary, "dataset", *second, "-o", root, "--wait"],
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        if waiting.poll() is not None:
            problem("--wait did not wait for the lock")
        fcntl.flock(held, fcntl.LOCK_UN)
    if waiting.wait(timeout=120) != 0:
        problem(f"--wait update failed: {waiting.stderr.read()}")
    verify("6 after lock", root, second, spark, summaries, verified)
    spark.stop()

    if problems:
        print(f"check-dataset: {len(problems)} problems", file=sys.stderr)
        sys.exit(1)
    print("check-dataset: all steps agree")


def make_unfinished(full, partial):
    """A copy of `full` holding the first 60 % of its one run's tasks, with the run not yet completed."""
    shutil.copyfile(full, partial)
    con = sqlite3.connect(partial)
    (tasks,) = con.execute("SELECT count(*) FROM task").fetchone()
    cut = int(tasks * 0.6)
    for table in ["task", "try", "status", "resource"]:
        con.execute(f'DELETE FROM "{table}" WHERE task_id >= ?', (cut,))
    con.execute("UPDATE try SET task_try_time_returned = NULL WHERE task_id >= ?", (cut - 5,))
    con.execute("UPDATE workflow SET time_completed = NULL")
    con.commit()
    con.execute("VACUUM")
    con.close()


def make_broken(fixture, broken):
    """A copy of `fixture` under a new run id with a try leaf page overwritten: it fails after some tables."""
    shutil.copyfile(fixture, broken)
    con = sqlite3.connect(broken)
    (old,) = con.execute("SELECT run_id FROM workflow").fetchone()
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
        con.execute(f'UPDATE "{table}" SET run_id = ? WHERE run_id = ?', ("0000beef-" + old[9:], old))
    con.commit()
    pages = [r[0] for r in con.execute("SELECT pageno FROM dbstat WHERE name='try' AND pagetype='leaf' ORDER BY pageno")]
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    with open(broken, "r+b") as f:
        f.seek((pages[len(pages) // 2] - 1) * page_size)
        f.write(b"\xff" * 64)


if __name__ == "__main__":
    main()
