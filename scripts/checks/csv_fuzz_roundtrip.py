#!/usr/bin/env python3
"""Cross-checks CSVFormat (and GzipStream) against Python's csv module on random cells.

How to run, from the repository root (needs only the Python standard library):

    scripts/checks/csv_fuzz_roundtrip.py [--seed N] [--rows N]
        builds and runs the Swift test FormatTests.CSVFuzzExportTests with CSV_FUZZ_OUT set to a
        temporary directory, then checks the files it wrote;
    scripts/checks/csv_fuzz_roundtrip.py --dir DIR
        checks files already written by
        CSV_FUZZ_OUT=DIR CSV_FUZZ_SEED=1 CSV_FUZZ_ROWS=30000 swift test --filter FormatTests.CSVFuzzExportTests

The Swift test writes raw.csv (no formula neutralisation), neutral.csv.gz (default neutralisation,
gzip-compressed) and expected.json (every cell typed: text, integer, double as its IEEE bits, bool,
null; the last row has a 200 KB text cell). Both CSV files are read with csv.reader(strict=True) over newline='' text; every row must have
the expected width and every cell the expected value: text exactly (with a leading apostrophe in the
neutralised file when it starts with = + - @ TAB CR), numbers numerically (doubles bit for bit,
NaN as NaN), booleans as true/false, null as empty. Fails unless at least 100,000 cells were checked.
Prints 'N passed, N failed' (cells per file) and exits non-zero on any failure.
"""
import argparse
import csv
import gzip
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def expected_text(cell, neutralise):
    kind = cell[0]
    if kind == "s":
        text = cell[1]
        return "'" + text if neutralise and text.startswith(FORMULA_STARTS) else text
    if kind == "b":
        return "true" if cell[1] else "false"
    if kind == "n":
        return ""
    return None  # numbers are compared by value


def cell_matches(got, cell, neutralise):
    kind = cell[0]
    if kind == "i":
        return got.lstrip("-").isdigit() and int(got) == cell[1]
    if kind == "d":
        want = struct.unpack("<d", struct.pack("<Q", cell[1]))[0]
        try:
            value = float(got)
        except ValueError:
            return False
        if math.isnan(want):
            return math.isnan(value)
        return struct.pack("<d", value) == struct.pack("<d", want)
    return got == expected_text(cell, neutralise)


def check(name, stream, rows, neutralise):
    passed = failed = 0
    # Python's csv refuses fields over 128 KiB by default; the last row holds a 200 KB one on purpose.
    csv.field_size_limit(1 << 30)
    reader = csv.reader(stream, strict=True)
    count = 0
    for index, (got, want) in enumerate(zip(reader, rows)):
        count += 1
        if len(got) != len(want):
            failed += len(want)
            if failed <= 5 * len(want):
                print(f"{name} row {index}: {len(got)} fields, expected {len(want)}: {got!r}")
            continue
        for column, (g, w) in enumerate(zip(got, want)):
            if cell_matches(g, w, neutralise):
                passed += 1
            else:
                failed += 1
                if failed <= 10:
                    print(f"{name} row {index} column {column}: got {g!r}, expected {w!r}")
    rest = sum(1 for _ in reader)
    if count != len(rows) or rest:
        print(f"{name}: {count + rest} rows, expected {len(rows)}")
        failed += 1
    print(f"{name}: {passed} passed, {failed} failed")
    return passed, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="check files already written there")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rows", type=int, default=30000)
    args = parser.parse_args()

    directory = args.dir
    if directory is None:
        directory = tempfile.mkdtemp(prefix="csv-fuzz.")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, CSV_FUZZ_OUT=directory, CSV_FUZZ_SEED=str(args.seed), CSV_FUZZ_ROWS=str(args.rows))
        run = subprocess.run(
            ["swift", "test", "--filter", "FormatTests.CSVFuzzExportTests"], cwd=root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0 or not os.path.exists(os.path.join(directory, "expected.json")):
            print(run.stdout[-4000:])
            print("the Swift test that writes the files failed")
            return 1

    with open(os.path.join(directory, "expected.json"), encoding="utf-8") as f:
        expected = json.load(f)
    rows = expected["rows"]
    with open(os.path.join(directory, "raw.csv"), encoding="utf-8", newline="") as f:
        raw_passed, raw_failed = check("raw.csv", f, rows, neutralise=False)
    with gzip.open(os.path.join(directory, "neutral.csv.gz"), "rt", encoding="utf-8", newline="") as f:
        neutral_passed, neutral_failed = check("neutral.csv.gz", f, rows, neutralise=True)

    cells = sum(len(r) for r in rows)
    passed, failed = raw_passed + neutral_passed, raw_failed + neutral_failed
    if cells < 100_000:
        print(f"only {cells} cells per file; at least 100000 are required")
        failed += 1
    print(f"seed {expected['seed']}, {len(rows)} rows, {cells} cells per file")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
