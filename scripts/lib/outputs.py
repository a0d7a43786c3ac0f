"""Shared helpers for the reliability checks: which export commands exist and how to call them, validating what
they wrote, and reading exported row counts back with the software users read them with."""
import csv
import gzip
import io
import json
import os
import re
import subprocess

DOCUMENTED_FAILURES = {64, 65, 66, 69, 70, 73, 75, 130}
PARSL_TABLES = ["workflow", "task", "try", "status", "resource", "block", "node"]
# Commands that do not read a database.
NOT_DATABASE_COMMANDS = {"schema", "help"}
# How each known export command names its output: a directory, a file (with this name), or nothing.
OUTPUT_KIND = {
    "inspect": None,
    "csv": "dir",
    "parquet": "dir",
    "all": "dir",
    "trace": "trace.json",
    "prometheus": "metrics.prom",
}

csv.field_size_limit(1 << 30)


def subcommands(binary):
    """The subcommand names listed by `--help`."""
    text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60).stdout
    names, inside = [], False
    for line in text.splitlines():
        if line.strip().upper().startswith("SUBCOMMANDS"):
            inside = True
            continue
        if inside:
            m = re.match(r"^  (\S+)", line)
            if m and not line.strip().startswith("See "):
                names.append(m.group(1))
            elif line and not line.startswith(" "):
                break
    if not names:
        raise SystemExit(f"no subcommands found in `{binary} --help`")
    return names


def plan(binary):
    """(runnable export commands, commands that do not read a database, commands this check cannot run)."""
    runnable, other, unknown = [], [], []
    for name in subcommands(binary):
        if name in OUTPUT_KIND:
            runnable.append(name)
        elif name in NOT_DATABASE_COMMANDS:
            other.append(name)
        else:
            unknown.append(name)
    return runnable, other, unknown


def command_line(binary, command, db, out_dir, extra=()):
    """argv for one export command; the output (if any) goes into out_dir, which must exist and be empty."""
    kind = OUTPUT_KIND[command]
    argv = [binary, command, db, *extra]
    if kind == "dir":
        argv += ["-o", os.path.join(out_dir, "export")]
    elif kind is not None:
        argv += ["-o", os.path.join(out_dir, kind)]
    return argv


def list_files(directory):
    """Every file under directory (relative paths), hidden ones included."""
    found = []
    for root, dirs, files in os.walk(directory):
        for f in files:
            found.append(os.path.relpath(os.path.join(root, f), directory))
    return sorted(found)


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def validate_file(path):
    """Reads one output file completely with a real reader. Returns (table, rows) where rows is None when the
    format has no row notion; raises on anything invalid."""
    name = os.path.basename(path)
    if name.startswith("."):
        raise ValueError("hidden (temporary?) file left behind")
    if name.endswith(".csv.gz") or name.endswith(".csv"):
        with open(path, "rb") as f:
            raw = f.read()
        data = gzip.decompress(raw) if name.endswith(".gz") else raw
        text = data.decode("utf-8")  # strict: invalid UTF-8 in an output is a bug
        if text.startswith("\ufeff"):
            text = text[1:]
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            raise ValueError("no header row")
        width = len(rows[0])
        bad = [i for i, r in enumerate(rows) if len(r) != width]
        if bad:
            raise ValueError(f"row {bad[0]} has {len(rows[bad[0]])} fields, header has {width}")
        return name.split(".")[0], len(rows) - 1
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq
        table = pq.read_table(path)
        for column in table.columns:  # decode every value, strings included
            column.to_pylist()
        return name[: -len(".parquet")], table.num_rows
    if name.endswith(".json"):
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"), parse_constant=_reject_constant)
        events = doc["traceEvents"] if isinstance(doc, dict) else doc
        if not isinstance(events, list):
            raise ValueError("no traceEvents list")
        return None, None
    if name.endswith(".prom"):
        from prometheus_client.parser import text_string_to_metric_families
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        if text and not text.endswith("\n"):
            raise ValueError("exposition does not end with a newline")
        for family in text_string_to_metric_families(text):  # the parser is lazy: walk every sample
            list(family.samples)
        return None, None
    raise ValueError("unexpected file type")


def warning_count(stderr):
    """Sum of the counts in `warning: table.column: N problem` lines."""
    total = 0
    for line in stderr.splitlines():
        if line.startswith("warning:"):
            m = re.match(r"warning: \S+: (\d+) ", line)
            total += int(m.group(1)) if m else 1
    return total


def inspect_problem_count(stdout):
    """Sum of the counts `inspect` lists under its value-problems heading (`  table.column: N ...`)."""
    total, inside = 0, False
    for line in stdout.splitlines():
        if line.startswith("value problems"):
            inside = True
        elif inside:
            m = re.match(r"^\s+\S+: (\d+) ", line)
            if m:
                total += int(m.group(1))
            elif line.strip():
                inside = False
    return total


def sqlite_counts(db, tables=PARSL_TABLES):
    """Row counts per Parsl table, read from a private copy so the source is never opened for writing."""
    import shutil
    import sqlite3
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "copy.db")
        shutil.copyfile(db, copy)
        con = sqlite3.connect(f"file:{copy}?mode=ro&immutable=1", uri=True)
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        counts = {t: (con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] if t in present else 0) for t in tables}
        con.close()
    return counts
