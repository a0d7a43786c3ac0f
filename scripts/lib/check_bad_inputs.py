"""Runs every export command on every item of the bad-input corpus and checks the contract:
exit 0 with valid outputs (and a warning count where values were dropped), or exactly one stderr line naming the
file with the documented exit code; never a crash or hang; nothing partial or temporary left in the output
directory; the source files byte-identical afterwards.

Usage: python check_bad_inputs.py BINARY CORPUS_DIR [ITEM...]"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outputs  # noqa: E402

TIMEOUT = int(os.environ.get("BAD_INPUTS_TIMEOUT", "60"))
LOCK_HOLDER = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


def snapshot(directory):
    """Name → sha256 of every file next to the source (the -journal included); a directory maps to 'dir'."""
    state = {}
    if not os.path.isdir(directory):
        return state
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            state[name] = "dir"
        else:
            with open(path, "rb") as f:
                state[name] = hashlib.sha256(f.read()).hexdigest()
    return state


def expected_codes(expect):
    return {int(x.rstrip("wi")) for x in expect.split("|")}


def run_serve(binary, item, expect, db):
    """serve either refuses the input (one line, the expected documented code) or keeps serving valid metrics that
    say whether the database could be read (parsl_export_database_up), and exits 0 on SIGTERM."""
    import signal
    problems = []
    source_dir = os.path.dirname(db)
    before = snapshot(source_dir)
    server = outputs.Server(outputs.command_line(binary, "serve", db, None, ["--busy-timeout", "300"]))
    readable = expect.startswith("0")
    if server.url is None:
        rc, lines = server.stop(signal.SIGKILL, timeout=5) if server.proc.poll() is None else (server.proc.wait(), server.lines)
        lines = [l for l in lines if l.strip()]
        if rc is None or rc < 0:
            problems.append(f"neither served nor exited within 20 s: {lines[:3]}")
        elif rc >= 128 and rc != 130:
            problems.append(f"crashed (rc {rc}): {lines[-3:]}")
        elif rc not in expected_codes(expect) or readable:
            problems.append(f"exit {rc} instead of serving or the expected {expect}: {lines[:3]}")
        elif len(lines) != 1 or not lines[0].startswith("parsl-export: ") or db not in lines[0]:
            problems.append(f"want one line naming the file, got {lines[:3]}")
        cell = str(rc)
    else:
        up = done = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                status, body = server.scrape()
            except Exception as e:
                problems.append(f"scrape failed: {e}")
                break
            if status != 200:
                problems.append(f"/metrics answered {status}")
                break
            try:
                up = outputs.prometheus_values(body, "parsl_export_database_up")
                done = outputs.prometheus_values(body, "parsl_export_initial_read_done")
            except Exception as e:
                problems.append(f"invalid exposition: {e}")
                break
            up = max(up.values()) if up else None
            done = max(done.values()) if done else None
            if (readable and up == 1 and done == 1) or (not readable and up == 0):
                break
            time.sleep(0.25)
        if not problems and readable and (up != 1 or done != 1):
            problems.append(f"database_up {up}, initial_read_done {done} after 20 s on a readable database")
        if not problems and not readable and up != 0:
            problems.append(f"database_up {up} on an unreadable database")
        rc, lines = server.stop(signal.SIGTERM)
        if rc != 0:
            problems.append(f"exit {rc} after SIGTERM (documented: 0): {lines[-3:]}")
        cell = f"srv up{up}"
    if snapshot(source_dir) != before:
        problems.append("source directory changed")
    return cell + (" !" if problems else ""), problems


def run_one(binary, command, item, expect, db, counts):
    """Returns (cell text, list of problems)."""
    if command == "serve":
        return run_serve(binary, item, expect, db)
    problems = []
    source_dir = os.path.dirname(db)
    before = snapshot(source_dir)
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as out:
        # A short busy timeout keeps the locked case fast; it changes nothing for the others.
        argv = outputs.command_line(binary, command, db, out, ["--busy-timeout", "300"])
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return "HANG", [f"no exit within {TIMEOUT} s: {' '.join(argv)}"]
        elapsed = time.monotonic() - started
        rc = proc.returncode
        stderr = proc.stderr.decode("utf-8", "replace")
        lines = [l for l in stderr.splitlines() if l.strip()]
        files = outputs.list_files(out)
        warnings = outputs.warning_count(stderr)
        if command == "inspect":
            warnings += outputs.inspect_problem_count(proc.stdout.decode("utf-8", "replace"))

        temporary = [f for f in files if os.path.basename(f).startswith(".") or f.endswith(".tmp")]
        if temporary:
            problems.append(f"temporary files left: {temporary}")
            files = [f for f in files if f not in temporary]
        if rc < 0 or (rc >= 128 and rc != 130):
            problems.append(f"crashed (rc {rc}, signal {-rc if rc < 0 else rc - 128}); stderr: {stderr[-300:]!r}")
        elif rc == 0:
            wants_warning = "0wi" in expect.split("|") if command == "inspect" else expect.startswith("0w")
            if wants_warning and warnings < 1:
                problems.append("exit 0 but no warning count for the values it dropped")
            table_rows = {}
            for rel in files:
                try:
                    table, rows = outputs.validate_file(os.path.join(out, rel))
                except Exception as e:  # any reader failure is an invalid output
                    problems.append(f"invalid output {rel}: {type(e).__name__}: {str(e)[:200]}")
                    continue
                if table in outputs.PARSL_TABLES and rows is not None:
                    table_rows.setdefault(table, []).append((rel, rows))
            if outputs.OUTPUT_KIND[command] is not None and not files:
                problems.append("exit 0 but no output file")
            for table, found in table_rows.items():
                for rel, rows in found:
                    if rows != counts[table]:
                        problems.append(f"{rel}: {rows} rows, the database has {counts[table]}")
            if command == "inspect" and item == "killed-mid-flight" and b"unfinished" not in proc.stdout:
                problems.append("inspect does not call the run without time_completed 'unfinished'")
        else:
            if rc not in outputs.DOCUMENTED_FAILURES:
                problems.append(f"undocumented exit code {rc}")
            if len(lines) != 1:
                problems.append(f"{len(lines)} stderr lines, want 1: {stderr[:400]!r}")
            elif not lines[0].startswith("parsl-export: ") or (db not in lines[0] and out not in lines[0]):
                # The cause's file: the source, or for an output-side failure the output path.
                problems.append(f"error line does not name the file: {lines[0][:300]!r}")
            if files:
                problems.append(f"failed but left files: {files}")
            if os.listdir(out):
                problems.append(f"failed but left {sorted(os.listdir(out))} in the output's parent (it made them)")
        if rc not in expected_codes(expect) and not problems:
            first = lines[0][:200] if lines else ""
            problems.append(f"exit {rc}, expected {expect.replace('wi', '').replace('w', '')} ({first!r})")
        elif rc not in expected_codes(expect):
            problems.append(f"exit {rc}, expected {expect.replace('wi', '').replace('w', '')}")

    after = snapshot(source_dir)
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        problems.append(f"source directory changed: {changed}")
    cell = str(rc) + (f" w{warnings}" if warnings else "") + ("" if not problems else " !")
    if elapsed > 20:
        cell += f" {elapsed:.0f}s"
    return cell, problems


# Bad command lines: each must exit 64 with one line naming the option, before writing anything.
OPTION_CASES = [
    ("csv", ["-o", ""]), ("parquet", ["-o", ""]), ("all", ["-o", ""]), ("trace", ["-o", ""]),
    ("prometheus", ["-o", ""]),
    ("csv", ["-o", "{out}/x", "--batch-size", "2000000000"]), ("csv", ["-o", "{out}/x", "--batch-size", "0"]),
    ("csv", ["-o", "{out}/x", "--batch-size", "-5"]), ("csv", ["-o", "{out}/x", "--busy-timeout", "-1"]),
    ("csv", ["-o", "{out}/x", "--busy-timeout", "99999999999"]), ("csv", ["-o", "{out}/x", "--level", "10"]),
    ("csv", ["-o", "{out}/x", "--threads", "100000"]), ("csv", ["-o", "{out}/x", "--threads", "-1"]),
    ("parquet", ["-o", "{out}/x", "--row-group-size", "2000000000"]),
    ("all", ["-o", "{out}/x", "--row-group-size", "-1"]),
    ("trace", ["-o", "{out}/x", "--max-events", "-1"]), ("trace", ["-o", "{out}/x", "--max-events", "1e12"]),
    ("trace", ["-o", "{out}/t.json", "--since", "100", "--until", "10"]),
    ("trace", ["-o", "{out}/t.json", "--since", "2026-11-25 00:00:00", "--until", "2026-11-24 00:00:00"]),
    ("csv", ["-o", "{out}/x", "--latest", "--run", "0"]), ("inspect", ["--latest", "--run", "0"]),
    ("serve", ["--interval", "1e300"]), ("serve", ["--interval", "-1"]), ("serve", ["--scrape-timeout", "0"]),
    ("serve", ["--max-scrapes", "100000"]), ("serve", ["--listen", "127.0.0.1:70000"]),
]


def option_cases(binary, db):
    """Bad options: exit 64, one line that names the option (a negative number is a bad value, not a missing
    one), nothing written. Then the escaping of written paths and -o with an upper-case suffix."""
    failures = []
    for command, args in OPTION_CASES:
        with tempfile.TemporaryDirectory(prefix="bad-options-") as out:
            argv = [binary, command, db] + [a.replace("{out}", out) for a in args]
            try:
                proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                failures.append(f"{command} {args}: no exit within {TIMEOUT} s")
                continue
            lines = [l for l in proc.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
            named = [a.lstrip("-") for a in args if a.startswith("-") and not a[1:].replace(".", "").isdigit()]
            named = [n for n in named if n != "o"] or ["output"]
            if proc.returncode != 64:
                failures.append(f"{command} {args}: exit {proc.returncode}, expected 64 ({lines[:2]})")
            elif len(lines) != 1 or not lines[0].startswith("parsl-export: "):
                failures.append(f"{command} {args}: want one 'parsl-export: ' line, got {lines[:4]}")
            elif "Missing value" in lines[0] or not any(n in lines[0] for n in named):
                failures.append(f"{command} {args}: the line does not name the bad option: {lines[0]!r}")
            if os.listdir(out):
                failures.append(f"{command} {args}: wrote {os.listdir(out)}")
    # "wrote" lines quote the path as errors do: a newline in a directory name stays one line.
    with tempfile.TemporaryDirectory(prefix="bad-options-") as out:
        target = os.path.join(out, "two\nlines")
        proc = subprocess.run([binary, "csv", db, "-o", target, "--tables", "task"], capture_output=True,
                              timeout=TIMEOUT)
        lines = proc.stderr.decode("utf-8", "replace").splitlines()
        wrote = [l for l in lines if l.startswith("wrote ")]
        if proc.returncode != 0 or len(wrote) != 1 or "two\\nlines" not in wrote[0] or any(
                l.startswith("lines") for l in lines):
            failures.append(f"csv -o 'two<newline>lines': want one escaped 'wrote' line, got {lines[:4]}")
        # -o x.JSON is a file, as x.json is.
        upper = os.path.join(out, "t.JSON")
        proc = subprocess.run([binary, "trace", db, "--latest", "-o", upper, "-q"], capture_output=True,
                              timeout=TIMEOUT)
        if proc.returncode != 0 or not os.path.isfile(upper):
            failures.append(f"trace -o t.JSON: exit {proc.returncode}, a file: {os.path.isfile(upper)}")
    print(f"bad options: {len(OPTION_CASES)} command lines, a path with a newline, -o t.JSON: "
          + ("all passed" if not failures else f"{len(failures)} failures"))
    return failures


def main():
    binary, corpus = sys.argv[1], sys.argv[2]
    only = set(sys.argv[3:])
    items = []
    with open(os.path.join(corpus, "manifest.tsv")) as f:
        for line in f:
            name, expect, description = line.rstrip("\n").split("\t")
            if not only or name in only:
                items.append((name, expect, description))

    runnable, other, unknown = outputs.plan(binary)
    print(f"commands run: {' '.join(runnable)}")
    print(f"commands not run here (no database, or a check of their own): {' '.join(other) or '-'}")
    if unknown:
        print(f"NOT COVERED (this check does not know how to run them): {' '.join(unknown)}")

    failures = []
    width = max(len(n) for n, _, _ in items)
    header = f"{'item':<{width}}  {'expect':<6}  " + "  ".join(f"{c:<10}" for c in runnable)
    print(header)
    print("-" * len(header))
    for name, expect, description in items:
        db = os.path.join(corpus, name, "monitoring.db")
        counts = outputs.sqlite_counts(db) if expect.startswith("0") and os.path.isfile(db) else None
        holder = None
        if name == "locked":
            holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, db], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            if holder.stdout.readline().strip() != "locked":
                failures.append("locked: could not take the exclusive lock")
        cells = []
        for command in runnable:
            cell, problems = run_one(binary, command, name, expect, db, counts or {})
            cells.append(cell)
            failures += [f"{name} × {command}: {p}" for p in problems]
        if holder:
            holder.stdin.close()
            holder.wait(timeout=30)
        print(f"{name:<{width}}  {expect:<6}  " + "  ".join(f"{c:<10}" for c in cells), flush=True)

    valid = [os.path.join(corpus, n, "monitoring.db") for n, e, _ in items if e == "0"]
    if not only or "options" in only:
        failures += option_cases(binary, valid[0] if valid else os.path.join(corpus, "killed-mid-flight", "monitoring.db"))
    cases = len(items) * len(runnable)
    print(f"\n{cases} cases ({len(items)} inputs × {len(runnable)} commands); cell = exit code, wN = warnings, ! = failed")
    for f in failures:
        print(f"FAIL {f}")
    if unknown:
        print(f"FAIL commands not covered: {' '.join(unknown)}")
    ok = not failures and not unknown
    print("bad inputs: " + ("all cases passed" if ok else f"{len(failures)} failures"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
