"""Runs the benchmark cases of scripts/bench and writes the Markdown report.

Each case is one command line run under /usr/bin/time -v. Runs are interleaved (round r of every
case before round r+1), so a burst of load from elsewhere spreads over all cases instead of one.
"""
import argparse
import datetime
import os
import platform
import re
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

TABLES = ["workflow", "task", "try", "status", "resource", "block", "node"]


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()


def tree_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for base, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(base, f)) for f in files)
    return total


def clear(path, work):
    # Only ever delete inside the scratch directory.
    if os.path.commonpath([os.path.abspath(path), os.path.abspath(work)]) != os.path.abspath(work):
        raise ValueError(f"refusing to delete {path}")
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


class Case:
    """One command; `group` pairs ours with its peers, `ours` marks the exporter's own row."""

    def __init__(self, group, tool, command, output, ours=False, floor=False):
        self.group, self.tool, self.command, self.output = group, tool, command, output
        self.ours, self.floor = ours, floor
        self.samples = []  # (wall, cpu, rss_kib, bytes)
        self.failed = None

    def run(self, work):
        if self.output != os.devnull:
            clear(self.output, work)
            if not self.output.endswith((".json", ".json.gz", ".prom")):
                os.makedirs(self.output, exist_ok=True)
        timing = os.path.join(work, "time.txt")
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", timing, "bash", "-c", self.command],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        if proc.returncode != 0:
            # Keep going: one failing case should not cost the others' figures.
            print(f"bench: failed ({proc.returncode}): {self.command}\n{proc.stderr[-2000:]}", file=sys.stderr)
            self.failed = proc.returncode
            return
        text = open(timing).read()

        def field(name):
            return re.search(re.escape(name) + r":\s*(\S+)", text).group(1)

        wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
        seconds = 0.0
        for part in wall.split(":"):
            seconds = seconds * 60 + float(part)
        cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
        rss = int(field("Maximum resident set size (kbytes)"))
        size = 0 if self.output == os.devnull else tree_bytes(self.output)
        self.samples.append((seconds, cpu, rss, size))

    def median(self, i):
        return statistics.median(s[i] for s in self.samples)


def cases_for(db, args, work, has, peers=True):
    q = shlex.quote
    out = lambda name: os.path.join(work, name)
    px = q(args.binary)
    tables = ",".join(TABLES)
    ddb = q(args.duckdb)
    lit = lambda text: "'" + text.replace("'", "''") + "'"
    attach = f"LOAD {lit(args.duckdb_sqlite)}; ATTACH {lit(db)} AS s (TYPE sqlite, READ_ONLY);"

    def duck_copy(fmt, ext):
        body = " ".join(
            f'COPY (SELECT * FROM s."{t}") TO {lit(os.path.join(out("duck-" + ext), t + "." + ext))} ({fmt});'
            for t in TABLES
        )
        return f"{ddb} -c {q(attach + ' ' + body)}"

    sqlite_gzip = "; ".join(
        f"sqlite3 -readonly -csv -header {q(db)} {q('select * from ' + t)} | gzip -6 > {q(os.path.join(out('sqlite-csv'), t + '.csv.gz'))}"
        for t in TABLES
    )
    floor_sql = " ".join(f"select * from {t};" for t in TABLES)

    cases = [
        Case("floor", "sqlite3 read all tables > /dev/null",
             f"sqlite3 -readonly {q(db)} {q(floor_sql)} > /dev/null", os.devnull, floor=True),
        Case("parquet", "parsl-export parquet (snappy)",
             f"{px} parquet {q(db)} -o {q(out('px-parquet'))} --compression snappy --tables {tables} --quiet",
             out("px-parquet"), ours=True),
        Case("parquet", "DuckDB 1.5.5 COPY parquet (snappy)", duck_copy("FORMAT parquet", "parquet"),
             out("duck-parquet")),
        Case("parquet-zstd", "parsl-export parquet (zstd)",
             f"{px} parquet {q(db)} -o {q(out('px-parquet-zstd'))} --compression zstd --tables {tables} --quiet",
             out("px-parquet-zstd"), ours=True),
        Case("parquet-zstd", "DuckDB 1.5.5 COPY parquet (zstd)", duck_copy("FORMAT parquet, COMPRESSION zstd", "zstd.parquet"),
             out("duck-zstd.parquet")),
        Case("csv.gz", "parsl-export csv (level 6)",
             f"{px} csv {q(db)} -o {q(out('px-csv'))} --level 6 --tables {tables} --quiet",
             out("px-csv"), ours=True),
        Case("csv.gz", "sqlite3 -csv | gzip -6, per table", sqlite_gzip, out("sqlite-csv")),
        Case("csv.gz", "DuckDB 1.5.5 COPY csv gzip", duck_copy("FORMAT csv, HEADER, COMPRESSION gzip", "csv.gz"),
             out("duck-csv.gz")),
    ]
    if not peers:
        cases = [c for c in cases if c.ours or c.floor]
    if has("trace"):
        cases.append(Case("trace", "parsl-export trace (.json)",
                          f"{px} trace {q(db)} -o {q(out('px-trace.json'))} --max-events 0 --quiet", out("px-trace.json"), ours=True))
        cases.append(Case("trace", "parsl-export trace (.json.gz, level 6)",
                          f"{px} trace {q(db)} -o {q(out('px-trace.json.gz'))} --max-events 0 --quiet",
                          out("px-trace.json.gz"), ours=True))
    if has("prometheus"):
        cases.append(Case("prometheus", "parsl-export prometheus",
                          f"{px} prometheus {q(db)} -o {q(out('px.prom'))} --quiet", out("px.prom"), ours=True))
    cases.append(Case("all", "parsl-export all (every format, 8 tables)",
                      f"{px} all {q(db)} -o {q(out('px-all'))} --quiet", out("px-all"), ours=True))
    return cases


def fmt_ratio(a, b):
    return f"{a / b:.2f}" if b else "–"


def report(results, machine, args):
    lines = []
    lines.append(f"Measured {machine['date']} on {machine['cpu']}, nproc {machine['nproc']}, "
                 f"{machine['mem']} RAM, {machine['os']}; commit {args.commit}. "
                 f"Median of {args.runs} interleaved runs; load average {machine['load_before']} before, "
                 f"{machine['load_after']} after (the machine is shared, so timings carry that noise).")
    lines.append("")
    lines.append(f"Versions: {machine['versions']}.")
    lines.append("")
    lines.append("Ratios are ours/peer on the peer's row (below 1 = ours is faster, smaller or leaner); "
                 "on the floor row they are `all`/floor. Peak RSS of a pipeline is its largest process.")
    for db, cases in results:
        lines.append("")
        lines.append(f"### {os.path.basename(db)} ({tree_bytes(db) / 1e6:.0f} MB, "
                     f"{db_rows(db)})")
        lines.append("")
        lines.append("| output | tool | wall s | CPU s | peak RSS MB | output MB | wall ratio | CPU ratio | RSS ratio | size ratio |")
        lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        ours = {c.group: c for c in cases if c.ours}
        for c in cases:
            w, cpu, rss, size = (c.median(i) for i in range(4))
            ref = ours.get("all") if c.floor else (None if c.ours else ours.get(c.group))
            if ref:
                ratios = [fmt_ratio(ref.median(i), c.median(i)) for i in range(3)]
                ratios.append("–" if c.floor else fmt_ratio(ref.median(3), size))
            else:
                ratios = [""] * 4
            name = f"**{c.tool}**" if c.ours else c.tool
            lines.append(f"| {c.group} | {name} | {w:.2f} | {cpu:.2f} | {rss / 1024:.0f} | "
                         f"{'–' if c.floor else f'{size / 1e6:.1f}'} | " + " | ".join(ratios) + " |")
        tries = db_tries(db)
        traces = [c for c in cases if c.ours and c.group == "trace"]
        if traces and tries:
            lines.append("")
            lines.append("Trace size per try (" + f"{tries:,} tries): "
                         + ", ".join(f"{c.median(3) / tries:,.0f} bytes ({c.tool.split('(')[1].split(',')[0].rstrip(')')})"
                                     for c in traces) + ".")
    lines.append("")
    lines.append("### Targets (100k database, 2 cores)")
    lines.append("")
    lines.extend(targets(results))
    return "\n".join(lines) + "\n"


def db_tries(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tries = con.execute("select count(*) from try").fetchone()[0]
    con.close()
    return tries


def db_rows(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tasks = con.execute("select count(*) from task").fetchone()[0]
    rows = sum(con.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES)
    con.close()
    return f"{tasks:,} tasks, {rows:,} rows in 7 tables"


def targets(results):
    out = []

    def check(ok, text):
        out.append(f"- {'MET' if ok else 'MISSED'}: {text}")

    db, cases = results[0]
    by = {(c.group, c.ours, c.tool.split()[0]): c for c in cases}
    get = lambda group, tool, ours=False: by.get((group, ours, tool))
    px_parquet, duck_parquet = get("parquet", "parsl-export", True), get("parquet", "DuckDB")
    px_csv, sq_csv = get("csv.gz", "parsl-export", True), get("csv.gz", "sqlite3")
    all_case, floor = get("all", "parsl-export", True), get("floor", "sqlite3")
    if not all((px_parquet, duck_parquet, px_csv, sq_csv, all_case, floor)):
        return ["- NOT MEASURED: a case failed (see below)"]
    speed = duck_parquet.median(0) / px_parquet.median(0)
    check(speed >= 2, f"Parquet ≥ 2× faster than DuckDB: {speed:.2f}× "
                      f"({px_parquet.median(0):.2f} s vs {duck_parquet.median(0):.2f} s)")
    check(px_parquet.median(3) <= duck_parquet.median(3),
          f"Parquet size ≤ DuckDB's: {px_parquet.median(3) / 1e6:.1f} MB vs {duck_parquet.median(3) / 1e6:.1f} MB")
    speed = sq_csv.median(0) / px_csv.median(0)
    check(speed >= 2, f"csv.gz ≥ 2× faster than sqlite3 | gzip -6: {speed:.2f}× "
                      f"({px_csv.median(0):.2f} s vs {sq_csv.median(0):.2f} s)")
    diff = px_csv.median(3) / sq_csv.median(3) - 1
    # Smaller is welcome; the target guards against trading size for speed.
    check(diff <= 0.05, f"csv.gz size at most 5 % above sqlite3 | gzip -6: {diff * 100:+.1f} %")
    factor = all_case.median(0) / floor.median(0)
    check(factor <= 1.5, f"`all` ≤ 1.5× the sqlite3 read floor: {factor:.2f}× "
                         f"({all_case.median(0):.2f} s vs {floor.median(0):.2f} s)")
    trace = next((c for c in cases if c.ours and c.group == "trace"), None)
    if trace:
        check(trace.median(0) <= 1.5, f"trace ≤ 1.5 s: {trace.median(0):.2f} s")
    else:
        out.append("- NOT MEASURED: trace ≤ 1.5 s (no `trace` command in this build)")
    for r_db, r_cases in results:
        worst = max((c for c in r_cases if c.ours), key=lambda c: c.median(2))
        check(worst.median(2) <= 64 * 1024,
              f"peak RSS ≤ 64 MB for every command, {os.path.basename(r_db)}: largest "
              f"{worst.median(2) / 1024:.0f} MB (`{worst.tool}`)")
    if len(results) > 1:
        small = {c.tool: c for c in results[0][1] if c.ours}
        big = {c.tool: c for c in results[1][1] if c.ours}
        growth = {t: big[t].median(2) / small[t].median(2) for t in small if t in big}
        worst = max(growth, key=growth.get)
        check(growth[worst] <= 1.2, f"RSS at 1M ≤ 1.2× RSS at 100k: worst {growth[worst]:.2f}× (`{worst}`); "
              + ", ".join(f"{t.removeprefix('parsl-export ')} {g:.2f}×" for t, g in growth.items()))
    else:
        out.append("- NOT MEASURED: RSS at 1M ≤ 1.2× RSS at 100k (run with --1m)")
    return out


def machine_info(args):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    duck = sh(f"{shlex.quote(args.duckdb)} --version").split()[:1]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": sh("nproc"),
        "mem": f"{mem / 1024 / 1024:.0f} GB",
        "os": platform.platform(terse=True),
        "versions": ", ".join([
            sh("swift --version 2>&1 | head -1").replace("Swift version ", "Swift ").split(" (")[0],
            "DuckDB " + " ".join(duck),
            "sqlite3 " + sh("sqlite3 --version").split()[0],
            sh("gzip --version | head -1"),
        ]),
        "load_before": "",
        "load_after": "",
    }


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duckdb", required=True)
    ap.add_argument("--duckdb-sqlite", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--commit", default="?")
    ap.add_argument("--peers-on-first-only", action="store_true",
                    help="run the peers on the first database only (they take minutes at 1M tasks)")
    ap.add_argument("databases", nargs="+")
    args = ap.parse_args()

    commands = sh(f"{shlex.quote(args.binary)} --help")
    has = lambda name: re.search(rf"^\s+{name}\b", commands, re.M) is not None
    machine = machine_info(args)
    machine["load_before"] = load()
    results = []
    failures = []
    for db in args.databases:
        work = os.path.join(args.work, os.path.basename(db).removesuffix(".db"))
        os.makedirs(work, exist_ok=True)
        peers = not (args.peers_on_first_only and db != args.databases[0])
        cases = cases_for(db, args, work, has, peers)
        if args.only:
            keep = set(args.only.split(","))
            cases = [c for c in cases if c.group in keep]
        # Warm the page cache so every tool reads the file from memory.
        with open(db, "rb") as f:
            while f.read(1 << 24):
                pass
        for r in range(args.runs):
            for c in cases:
                print(f"bench: {os.path.basename(db)} run {r + 1}/{args.runs}: {c.tool}", file=sys.stderr)
                c.run(work)
        for c in cases:
            if c.output != os.devnull:
                clear(c.output, work)
            if c.failed is not None:
                failures.append(f"{os.path.basename(db)}: `{c.tool}` exited {c.failed} in at least one run")
        results.append((db, [c for c in cases if c.samples and c.failed is None]))
    machine["load_after"] = load()
    if args.only:
        for db, cases in results:
            for c in cases:
                print(f"{c.tool}: wall {c.median(0):.2f} s, CPU {c.median(1):.2f} s, "
                      f"RSS {c.median(2) / 1024:.0f} MB, {c.median(3) / 1e6:.1f} MB")
        return
    text = report(results, machine, args)
    if failures:
        text += "\nFailed (left out above):\n\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write("<!-- Written by scripts/bench; rerun it to refresh. -->\n")
        f.write(text)
    print(f"bench: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
