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
NOT_DATABASE_COMMANDS = {"schema", "help", "dashboard"}
# Commands whose outputs this module cannot judge, with the check that puts them through bad and interrupted
# updates instead (a dataset is a tree of partitions with a manifest and a lock, not one export's files).
OWN_CHECK_COMMANDS = {"dataset": "check-dataset.sh"}
# How each known command names its output: a directory, a file (with this name), nothing, or an HTTP server.
# trace gets a directory (one file per run) so databases with several runs need no --run.
OUTPUT_KIND = {
    "inspect": None,
    "csv": "dir",
    "parquet": "dir",
    "all": "dir",
    "trace": "dir",
    "prometheus": "metrics.prom",
    "serve": "http",
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
    """(runnable export commands, commands run elsewhere or not reading a database, commands no check runs)."""
    runnable, other, unknown = [], [], []
    for name in subcommands(binary):
        if name in OUTPUT_KIND:
            runnable.append(name)
        elif name in NOT_DATABASE_COMMANDS:
            other.append(name)
        elif name in OWN_CHECK_COMMANDS:
            other.append(f"{name} (see {OWN_CHECK_COMMANDS[name]})")
        else:
            unknown.append(name)
    return runnable, other, unknown


def command_line(binary, command, db, out_dir, extra=()):
    """argv for one export command; the output (if any) goes into out_dir, which must exist and be empty."""
    kind = OUTPUT_KIND[command]
    argv = [binary, command, db, *extra]
    if kind == "http":
        argv += ["--listen", "127.0.0.1:0", "--interval", "0.5"]
    elif kind == "dir":
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
    if name.endswith(".json") or name.endswith(".json.gz"):
        with open(path, "rb") as f:
            raw = f.read()
        data = gzip.decompress(raw) if name.endswith(".gz") else raw
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
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


def prometheus_values(text, name):
    """{label tuple: value} of one sample name in a Prometheus text exposition (validated by prometheus_client)."""
    from prometheus_client.parser import text_string_to_metric_families
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def rows_read(text):
    """parsl_export_rows_read_total per table, when the exposition has it."""
    return {dict(k).get("table"): v for k, v in prometheus_values(text, "parsl_export_rows_read_total").items()}


class Server:
    """`serve` started on an ephemeral loopback port; .url is set once it says where it listens."""

    def __init__(self, argv, startup=20):
        import queue
        import threading
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines = []
        self.url = None
        lines = queue.Queue()

        def pump():
            for raw in self.proc.stderr:
                lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.put(None)
        threading.Thread(target=pump, daemon=True).start()
        import time
        deadline = time.monotonic() + startup
        while self.url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            m = re.search(r"(http://[^ ]+/metrics)", line)
            if m:
                self.url = m.group(1)
        self._queue = lines

    def scrape(self, timeout=10):
        """(HTTP status, body text)."""
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(self.url, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def stop(self, sig, timeout=15):
        """Sends sig; returns the exit code (None if it did not exit) and all stderr lines."""
        import queue
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        while True:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return rc, self.lines


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
