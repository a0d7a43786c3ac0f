"""Compares every Parquet file parsl-export wrote with the SQLite source, value by value, as DuckDB, pyarrow and
polars read them; checks the declared types, statistics and the LIST<INT64> columns, and try_summary against the summary
csv_check.py recomputes from the raw tables.

usage: python parquet_values.py SOURCE.db PARQUET_DIR
"""
import datetime
import math
import sqlite3
import sys
import json

import duckdb
import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq

from csv_check import try_summary_expected

TABLES = ["workflow", "task", "try", "status", "resource", "block", "node"]
MAPPINGS = "Mappings"


def mapping(table):
    with open(f"{MAPPINGS}/{table}.json") as f:
        return {c["name"]: c for c in json.load(f)["columns"]}


def fmt_ts(value):
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if value is not None else None


def normalise_source(value, kind):
    """The source value as the exporter documents its conversion."""
    if value is None:
        return None
    if kind == "timestamp":
        return str(value)
    if kind == "bool":
        return {"0": False, "1": True, 0: False, 1: True}[value]
    if kind == "int64":
        return int(value)
    if kind == "float64":
        return float(value)
    return str(value)


def normalise_parquet(value, kind):
    if value is None:
        return None
    if kind == "timestamp":
        return fmt_ts(value)
    return value


def equal(a, b, kind):
    if a is None or b is None:
        return a is None and b is None
    if kind == "float64":
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def check_try_summary(db, path, problems):
    """try_summary as DuckDB reads it, value by value against the summary csv_check recomputes from the raw tables."""
    want = try_summary_expected(sqlite3.connect(f"file:{db}?mode=ro", uri=True))
    md = mapping("try_summary")
    names = list(md)
    rows = duckdb.sql(f"select {', '.join(names)} from '{path}'").fetchall()
    compared = 0
    for i, row in enumerate(rows):
        got = dict(zip(names, row))
        expected = want.get((got["run_id"], got["task_id"], got["try_id"]))
        if expected is None:
            problems.append(f"try_summary row {i}: {row[:3]} is not a try in SQLite")
            continue
        for name, column in md.items():
            kind, value, source = column["type"], got[name], expected[name]
            if name == "final_state":
                ok = value is None if source is None else value in source
            elif name == "cpu_seconds" and source is not None and value is not None:
                ok = abs(value - source) <= 5e-7 + 1e-12  # rounded to 6 decimals, as documented
            else:
                ok = equal(normalise_source(source, kind), normalise_parquet(value, kind), kind)
            if not ok:
                problems.append(f"try_summary {row[:3]} {name}: expected {source!r}, parquet {value!r}")
            compared += 1
    return compared


def check(db, out):
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    present = {r[0] for r in src.execute("select name from sqlite_master where type='table'")}
    compared = 0
    problems = []
    expected_type = {"int64": "int64", "float64": "double", "bool": "bool", "text": "string", "id-list": "string",
                     "timestamp": "timestamp[us]"}
    for table in TABLES + ["try_summary"]:
        path = f"{out}/{table}.parquet"
        pf = pq.ParquetFile(path)
        arrow = pq.read_table(path)
        rows_polars = pl.read_parquet(path).height
        rows_duck = duckdb.sql(f"select count(*) from '{path}'").fetchone()[0]
        if table == "try_summary":
            expected_rows = src.execute("select count(*) from try").fetchone()[0] if "try" in present else 0
            if not (arrow.num_rows == rows_polars == rows_duck == expected_rows):
                problems.append(f"{table}: rows pyarrow {arrow.num_rows} polars {rows_polars} duckdb {rows_duck} sqlite {expected_rows}")
            compared += check_try_summary(db, path, problems)
            continue
        md = mapping(table)
        if table not in present:
            if arrow.num_rows != 0:
                problems.append(f"{table}: absent in source but {arrow.num_rows} rows written")
            continue
        info = {r[1]: r for r in src.execute(f'pragma table_info("{table}")')}
        source_cols = list(info)
        cols = [c for c in arrow.schema.names if c in source_cols]
        for c in cols:
            kind = md.get(c, {}).get("type", "text")
            got = str(arrow.schema.field(c).type)
            if got != expected_type[kind]:
                problems.append(f"{table}.{c}: arrow type {got}, mapping says {kind}")
            # REQUIRED exactly where the source says NOT NULL and the mapping agrees (no value here fails to parse).
            required = bool(info[c][3]) and md.get(c, {}).get("nullable", True) is False
            if arrow.schema.field(c).nullable == required:
                problems.append(f"{table}.{c}: nullable {arrow.schema.field(c).nullable}, source NOT NULL {bool(info[c][3])}")
        for c in source_cols:
            if c not in arrow.schema.names:
                problems.append(f"{table}: source column {c} missing from the Parquet file")
        # Every mapped column of the current schema must be there, even when this era lacks it.
        for name, column in md.items():
            if "until" not in column and name not in arrow.schema.names:
                problems.append(f"{table}: column {name} missing")
        quoted = ", ".join(f'"{c}"' for c in cols)
        source_rows = src.execute(f'select {quoted} from "{table}" order by rowid').fetchall()
        duck_rows = duckdb.sql(f"select {quoted} from '{path}'").fetchall()
        if len(source_rows) != len(duck_rows) or len(duck_rows) != rows_polars:
            problems.append(f"{table}: sqlite {len(source_rows)} rows, duckdb {len(duck_rows)}, polars {rows_polars}")
            continue
        kinds = [md.get(c, {}).get("type", "text") for c in cols]
        for i, (s, d) in enumerate(zip(source_rows, duck_rows)):
            for c, kind, sv, dv in zip(cols, kinds, s, d):
                if not equal(normalise_source(sv, kind), normalise_parquet(dv, kind), kind):
                    problems.append(f"{table}.{c} row {i}: sqlite {sv!r} parquet {dv!r}")
                compared += 1
        # LIST<INT64> columns hold the same ids as the source text, row by row (DuckDB reads the list).
        for c in cols:
            if md.get(c, {}).get("type") == "id-list":
                texts = [r[0] for r in src.execute(f'select "{c}" from "{table}" order by rowid')]
                lists = [r[0] for r in duckdb.sql(f"select {c}_list from '{path}'").fetchall()]
                edges = 0
                for i, (text, ids) in enumerate(zip(texts, lists)):
                    want = [int(p) for p in str(text or "").split(",") if p.strip()]
                    edges += len(want)
                    if (ids or []) != want:
                        problems.append(f"{table}.{c}_list row {i}: {ids!r}, source text {text!r}")
                        break
                compared += edges
        # Statistics in every row group: present, and min/max/null count equal to the values pyarrow reads.
        meta = pf.metadata
        for g in range(meta.num_row_groups):
            group = pf.read_row_group(g)
            for j in range(meta.row_group(g).num_columns):
                col = meta.row_group(g).column(j)
                stats = col.statistics
                if stats is None:
                    problems.append(f"{table}: column {col.path_in_schema} has no statistics")
                    continue
                name = col.path_in_schema
                if name not in group.schema.names:
                    continue  # a list's element column
                values = group.column(name)
                if stats.null_count != values.null_count:
                    problems.append(f"{table}.{name} group {g}: null_count {stats.null_count}, {values.null_count} nulls")
                if stats.has_min_max and values.null_count < len(values):
                    low, high = pc.min_max(values).values()
                    if (stats.min, stats.max) != (low.as_py(), high.as_py()):
                        problems.append(f"{table}.{name} group {g}: statistics {stats.min!r}..{stats.max!r}, "
                                        f"values {low.as_py()!r}..{high.as_py()!r}")
        if not meta.created_by.startswith("parsl-export version"):
            problems.append(f"{table}: created_by {meta.created_by!r}")
    return compared, problems


if __name__ == "__main__":
    compared, problems = check(sys.argv[1], sys.argv[2])
    for p in problems[:30]:
        print("MISMATCH", p)
    print(f"{sys.argv[1]}: {compared} values compared, {len(problems)} problems")
    sys.exit(1 if problems else 0)
