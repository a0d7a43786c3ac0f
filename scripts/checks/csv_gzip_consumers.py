#!/usr/bin/env python3
"""Real consumers read a .csv.gz written by CSVWriter + GzipWriter: gzip, pandas, LibreOffice Calc.

How to run, from the repository root:

    scripts/checks/csv_gzip_consumers.sh          # makes .venv (pandas, openpyxl) and runs this
    .venv/bin/python scripts/checks/csv_gzip_consumers.py [--dir DIR]

Without --dir it runs the Swift test FormatTests.CSVConsumerExportTests with CSV_CONSUMER_OUT set to a
temporary directory, which writes sheet.csv.gz (BOM, default formula neutralisation, 4000 rows of id,
text, value with the hostile strings of the consumer notes, gzip in 32 KiB blocks), sheet.csv and
sheet-expected.json. Needs `gzip`, `soffice` (Debian libreoffice-calc), pandas and openpyxl.

Checks:
- `gzip -t` accepts the file;
- pandas.read_csv(compression='gzip', dtype=str, keep_default_na=False) gives every cell as expected
  (text neutralised as documented, numbers equal);
- LibreOffice headless converts the .csv.gz to xlsx with an explicit CSV filter (UTF-8, text column as
  text) and openpyxl finds every cell equal (LibreOffice turns CRLF inside a cell into LF);
- LibreOffice with its default import (which evaluates formulas) finds no formula cell in the file,
  while a two-line control CSV holding a raw `=1+1` does give a formula cell, so the check can fail.
Prints 'N passed, N failed' and exits non-zero on any failure.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import openpyxl
import pandas

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
passed = failed = 0


def expect(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def neutralised(text):
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def as_double(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def soffice(directory, outdir, source, infilter=None):
    command = ["soffice", f"-env:UserInstallation=file://{directory}/lo_profile", "--headless"]
    if infilter:
        command.append(f"--infilter={infilter}")
    command += ["--convert-to", "xlsx", "--outdir", outdir, source]
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    expect(run.returncode == 0, f"soffice exit {run.returncode}: {run.stdout}")


def cells(path):
    sheet = openpyxl.load_workbook(path).active
    return [[c for c in row] for row in sheet.iter_rows()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir")
    args = parser.parse_args()
    directory = args.dir
    if directory is None:
        directory = tempfile.mkdtemp(prefix="csv-consumers.")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        run = subprocess.run(["swift", "test", "--filter", "FormatTests.CSVConsumerExportTests"], cwd=root,
                             env=dict(os.environ, CSV_CONSUMER_OUT=directory),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0 or not os.path.exists(os.path.join(directory, "sheet.csv.gz")):
            print(run.stdout[-4000:])
            print("0 passed, 1 failed")
            return 1
    sheet_gz = os.path.join(directory, "sheet.csv.gz")
    with open(os.path.join(directory, "sheet-expected.json"), encoding="utf-8") as f:
        expected = [(i, neutralised(t), as_double(v)) for i, t, v in json.load(f)]

    # gzip itself, and the gzip payload equals the plain file.
    expect(subprocess.run(["gzip", "-t", sheet_gz]).returncode == 0, "gzip -t")
    with gzip.open(sheet_gz, "rb") as f, open(os.path.join(directory, "sheet.csv"), "rb") as g:
        expect(f.read() == g.read(), "gzip payload differs from sheet.csv")

    # pandas.
    frame = pandas.read_csv(sheet_gz, compression="gzip", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    expect(list(frame.columns) == ["id", "text", "value"], f"pandas header {list(frame.columns)}")
    expect(len(frame) == len(expected), f"pandas rows {len(frame)} != {len(expected)}")
    for (i, t, v), (gi, gt, gv) in zip(expected, frame.itertuples(index=False)):
        expect(int(gi) == i and gt == t and float(gv) == v, f"pandas row {i}: {(gi, gt, gv)!r} != {(i, t, v)!r}")

    # LibreOffice with an explicit filter: UTF-8 (76), column 2 as text, no formula evaluation.
    outdir = os.path.join(directory, "lo_explicit")
    soffice(directory, outdir, sheet_gz, "CSV:44,34,76,1,1/1/2/2/3/1,1033,false,false,,,false,,false")
    got = cells(os.path.join(outdir, "sheet.csv.xlsx"))
    expect([c.value for c in got[0]] == ["id", "text", "value"], f"LibreOffice header {[c.value for c in got[0]]}")
    expect(len(got) - 1 == len(expected), f"LibreOffice rows {len(got) - 1} != {len(expected)}")
    for (i, t, v), row in zip(expected, got[1:]):
        gi, gt, gv = (c.value for c in row)
        gt = "" if gt is None else gt
        expect(gi == i and gt == t.replace("\r\n", "\n") and gv == v,
               f"LibreOffice row {i}: {(gi, gt, gv)!r} != {(i, t, v)!r}")

    # LibreOffice with its default import, which evaluates formulas: none in our file, one in the control.
    control = os.path.join(directory, "control.csv")
    with open(control, "w", newline="") as f:
        f.write("=1+1,x\r\n")
    outdir = os.path.join(directory, "lo_default")
    soffice(directory, outdir, sheet_gz)
    soffice(directory, outdir, control)
    formulas = sum(c.data_type == "f" for row in cells(os.path.join(outdir, "sheet.csv.xlsx")) for c in row)
    expect(formulas == 0, f"{formulas} formula cells in LibreOffice's default import of {sheet_gz}")
    control_formulas = sum(c.data_type == "f" for row in cells(os.path.join(outdir, "control.xlsx")) for c in row)
    expect(control_formulas == 1, f"control: {control_formulas} formula cells, expected 1")

    print(f"{len(expected)} rows checked in {directory}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
