"""Checks parsl-export's CSV output against the SQLite database it came from, with the readers users have.

usage:
  csv_check.py compare DB DIR [--raw]        every <table>.csv(.gz) in DIR, value by value against DB
  csv_check.py same DIR_A DIR_B              the two exports hold the same text (after gunzip and BOM)
  csv_check.py libreoffice DB FILE TABLE WORK LibreOffice opens FILE; cells compared with openpyxl
  csv_check.py formulas-default WORK FILE…   formula cells per FILE with LibreOffice's default CSV settings

Expected values come from the database (Python's sqlite3) and from Mappings/*.json, never from constants.
Prints one summary line per command; exits 1 when anything differs, listing the first differences.
"""

import csv
import datetime
import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAPPINGS = os.path.join(ROOT, 'Mappings')
TABLES = json.load(open(os.path.join(MAPPINGS, 'mappings.json')))['tables']
FORMULA_START = ('=', '+', '-', '@', '\t', '\r')  # documented in `parsl-export schema`
TIMESTAMP_FORMAT = '%Y-%m-%d %H:%M:%S.%f'
NUMBER = re.compile(r'-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\Z')  # rejects nan/inf/1_000, which float() accepts
INTEGER = re.compile(r'-?\d+\Z')

CELL_LIMIT = 32767  # characters per cell in Excel and in LibreOffice's xlsx, counted in UTF-16 units
csv.field_size_limit(1 << 30)  # the hostile database has a 200 KB field


class Mismatches:
    def __init__(self, where):
        self.where, self.items = where, []

    def add(self, message):
        self.items.append(message)

    def fail_if_any(self):
        if self.items:
            print(f'FAIL {self.where}: {len(self.items)} mismatch(es)', file=sys.stderr)
            for m in self.items[:15]:
                print('  ' + m[:400], file=sys.stderr)
            sys.exit(1)


def mapping(table):
    with open(os.path.join(MAPPINGS, table + '.json')) as f:
        return json.load(f)['columns']


def source_columns(db, table):
    return [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]


def expected_columns(db, table):
    """Documented order: mapped columns present in the source or still written by Parsl, then unknown ones.
    Returns [(name, type, normalise, in_source)]."""
    present = source_columns(db, table)
    mapped = mapping(table)
    names = {c['name'] for c in mapped}
    out = [(c['name'], c['type'], c.get('normalise'), c['name'] in present)
           for c in mapped if c['name'] in present or 'until' not in c]
    out += [(name, 'text', None, True) for name in present if name not in names]
    return out


def open_text(path):
    """The file as text, BOM removed; also returns whether there was one."""
    data = gzip.open(path).read() if path.endswith('.gz') else open(path, 'rb').read()
    bom = data.startswith(b'\xef\xbb\xbf')
    return data[3:].decode('utf-8') if bom else data.decode('utf-8'), bom


def read_csv(path, m):
    """Strict Python csv plus the width check it does not do itself. Returns (header, rows)."""
    text, _ = open_text(path)
    import io
    rows = list(csv.reader(io.StringIO(text, newline=''), strict=True))
    if not rows:
        m.add(f'{path}: no header row')
        return [], []
    header, body = rows[0], rows[1:]
    for i, row in enumerate(body):
        if len(row) != len(header):
            m.add(f'{path} row {i + 1}: {len(row)} fields, header has {len(header)}')
    # RFC 4180 as the writer documents it: CRLF after every record; a field quoted exactly when it holds , " CR LF
    # or starts/ends with a space or TAB; a lone empty field as "". Re-encoding the parsed rows that way must give
    # the file back byte for byte, which also catches what csv.reader tolerates (stray quotes, LF-only ends).
    def field(v):
        if any(ch in v for ch in ',"\r\n') or v[:1] in (' ', '\t') or v[-1:] in (' ', '\t'):
            return '"' + v.replace('"', '""') + '"'
        return v
    def record(r):
        return ('""' if r == [''] else ','.join(map(field, r))) + '\r\n'
    if ''.join(map(record, rows)) != text:
        m.add(f'{path}: not byte-identical to an RFC 4180 re-encoding of its own rows (CRLF / quoting rule)')
    return header, body


def check_pandas(path, header, rows, m):
    import pandas as pd
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding='utf-8-sig')
    if list(df.columns) != header:
        m.add(f'{path}: pandas header {list(df.columns)[:5]}… differs')
    if len(df) != len(rows):
        m.add(f'{path}: pandas reads {len(df)} rows, csv {len(rows)}')
    elif df.values.tolist() != rows:
        m.add(f'{path}: pandas values differ from the csv module\'s')


def utf16_len(text):
    return len(text.encode('utf-16-le')) // 2


def expect_text(value, raw):
    s = value if isinstance(value, str) else str(value)
    return s if raw or not s.startswith(FORMULA_START) else "'" + s


def compare_value(kind, normalise, src, cell, raw):
    """None when the CSV cell matches the SQLite value, else a reason."""
    if src is None:
        return None if cell == '' else 'NULL exported as non-empty'
    if kind == 'timestamp':
        return None if isinstance(src, str) and cell == src else 'timestamp text differs'
    if kind == 'int64':
        if not INTEGER.match(cell):
            return 'not an integer'
        try:
            want = int(src)  # text-to-int64 columns hold '0', '1', … as text
        except (TypeError, ValueError):
            return 'source is not an integer'
        return None if int(cell) == want else 'integer differs'
    if kind == 'float64':
        if not NUMBER.match(cell):
            return 'not a number'
        return None if float(cell) == float(src) else 'number differs'
    if kind == 'bool':
        truth = {1: 'true', 0: 'false', '1': 'true', '0': 'false', 'true': 'true', 'false': 'false'}
        want = truth.get(src.lower() if isinstance(src, str) else src)
        return None if want is not None and cell == want else 'bool differs'
    # text, id-list and unknown columns: exact, apart from the documented formula neutralisation
    return None if cell == expect_text(src, raw) else 'text differs'


def compare_table(db, path, table, raw, m):
    header, rows = read_csv(path, m)
    cols = expected_columns(db, table)
    if header != [c[0] for c in cols]:
        m.add(f'{table}: header {header} != expected {[c[0] for c in cols]}')
        return 0, 0
    select = ', '.join(f'"{c[0]}"' if c[3] else 'NULL' for c in cols)
    src_rows = db.execute(f'SELECT {select} FROM "{table}" ORDER BY rowid').fetchall()
    if len(src_rows) != len(rows):
        m.add(f'{table}: {len(rows)} CSV rows, {len(src_rows)} in SQLite')
    cells = 0
    for i, (src, row) in enumerate(zip(src_rows, rows)):
        for (name, kind, normalise, _), s, c in zip(cols, src, row):
            cells += 1
            reason = compare_value(kind, normalise, s, c, raw)
            if reason:
                m.add(f'{table} row {i + 1} {name}: {reason}: sqlite {s!r} csv {c!r}')
    check_pandas(path, header, rows, m)
    return len(rows), cells


def try_summary_expected(db):
    """try_summary recomputed in Python from the raw tables, keyed by (run_id, task_id, try_id)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if 'try' not in tables:
        return {}
    db.row_factory = sqlite3.Row
    tasks = {(r['run_id'], r['task_id']): dict(r) for r in db.execute('SELECT * FROM task')}
    samples = {}
    # Samples belong to a try only when the era's resource table records try_id.
    if 'resource' in tables and 'try_id' in source_columns(db, 'resource'):
        for r in db.execute('SELECT * FROM resource ORDER BY timestamp'):
            samples.setdefault((r['run_id'], r['task_id'], r['try_id']), []).append(r)
    # Final state, our own rule: a terminal state if the try has one, else its latest status; ties kept as a set.
    has_try = 'try_id' in source_columns(db, 'status')
    part = 'run_id, task_id' + (', try_id' if has_try else '')
    finals = {}
    for r in db.execute(f'''
        WITH ranked AS (
          SELECT run_id, task_id, {'try_id' if has_try else 'NULL AS try_id'}, task_status_name,
                 rank() OVER (PARTITION BY {part} ORDER BY
                     task_status_name IN ('exec_done', 'memo_done', 'failed', 'dep_fail', 'fail_retryable', 'done') DESC,
                     timestamp DESC) AS n
          FROM status)
        SELECT * FROM ranked WHERE n = 1'''):
        finals.setdefault((r['run_id'], r['task_id'], r['try_id'] if has_try else None), set()).add(r['task_status_name'])
    out = {}
    for t in db.execute('SELECT * FROM try ORDER BY rowid'):
        t = dict(t)  # a column this era lacks reads as NULL, as documented
        key = (t['run_id'], t['task_id'], t['try_id'])
        task = tasks.get(key[:2])
        rs = samples.get(key, [])
        cpu = [r['psutil_process_time_user'] + r['psutil_process_time_system'] for r in rs]

        def seconds(a, b):
            if a is None or b is None:
                return None
            d = (datetime.datetime.strptime(b, TIMESTAMP_FORMAT) - datetime.datetime.strptime(a, TIMESTAMP_FORMAT))
            return max(0.0, d.total_seconds())
        out[key] = {
            'run_id': key[0], 'task_id': key[1], 'try_id': key[2],
            'task_func_name': task.get('task_func_name') if task else None,
            'task_executor': t.get('task_executor'), 'block_id': t.get('block_id'), 'hostname': t.get('hostname'),
            'worker_pid': rs[0]['psutil_process_pid'] if rs else None,
            'launched': t.get('task_try_time_launched'), 'running': t.get('task_try_time_running'),
            'returned': t.get('task_try_time_returned'),
            'final_state': finals.get(key if has_try else key[:2] + (None,)),
            'queue_wait_seconds': seconds(t.get('task_try_time_launched'), t.get('task_try_time_running')),
            'run_time_seconds': seconds(t.get('task_try_time_running'), t.get('task_try_time_returned')),
            'fail_reason': t.get('task_fail_history'),
            'peak_rss_bytes': int(max(r['psutil_process_memory_resident'] for r in rs)) if rs else None,
            'cpu_seconds': max(cpu) - min(cpu) if rs else None,
            'resource_samples': len(rs),
            'task_depends': task.get('task_depends') if task else None,
        }
    db.row_factory = None
    return out


def compare_try_summary(db, path, raw, m):
    header, rows = read_csv(path, m)
    cols = mapping('try_summary')
    if header != [c['name'] for c in cols]:
        m.add(f'try_summary: header {header} != mapping order')
        return 0, 0
    want = try_summary_expected(db)
    if len(rows) != len(want):
        m.add(f'try_summary: {len(rows)} rows, {len(want)} tries in SQLite')
    seen, cells = set(), 0
    for i, row in enumerate(rows):
        rec = dict(zip(header, row))
        try:
            key = (rec['run_id'], int(rec['task_id']), int(rec['try_id']))
        except ValueError:
            m.add(f'try_summary row {i + 1}: bad key {row[:3]}')
            continue
        if key in seen or key not in want:
            m.add(f'try_summary row {i + 1}: key {key} duplicated or not a try in SQLite')
            continue
        seen.add(key)
        for c in cols:
            name, kind, cell, src = c['name'], c['type'], rec[c['name']], want[key][c['name']]
            cells += 1
            if name == 'final_state':
                ok = (cell == "" and src is None) or (src is not None and cell in src)
                reason = None if ok else 'final state differs'
            elif name == 'cpu_seconds' and src is not None:
                # the exporter rounds to 6 decimals (SQLite round()); allow exactly that
                reason = None if NUMBER.match(cell) and abs(float(cell) - src) <= 5e-7 + 1e-12 else 'differs'
            else:
                reason = compare_value(kind, None, src, cell, raw)
            if reason:
                m.add(f'try_summary {key} {name}: {reason}: sqlite {src!r} csv {cell!r}')
    check_pandas(path, header, rows, m)
    return len(rows), cells


def find(directory, table):
    for ext in ('.csv.gz', '.csv'):
        p = os.path.join(directory, table + ext)
        if os.path.exists(p):
            return p
    return None


def cmd_compare(db_path, directory, raw=False):
    db = sqlite3.connect(f'file:{db_path}?mode=ro', uri=True)
    m = Mismatches(f'{db_path} -> {directory}')
    files = rows = cells = 0
    for table in TABLES + ['try_summary']:
        path = find(directory, table)
        if path is None:
            m.add(f'{table}: no file')
            continue
        if path.endswith('.gz'):
            t = subprocess.run(['gzip', '-t', path], capture_output=True, text=True)
            if t.returncode != 0:
                m.add(f'{path}: gzip -t: {t.stderr.strip()}')
        if table == 'try_summary':
            r, c = compare_try_summary(db, path, raw, m)
        elif table in [x[0] for x in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]:
            r, c = compare_table(db, path, table, raw, m)
        else:  # a table this schema era lacks: header only
            header, body = read_csv(path, m)
            r, c = len(body), 0
            if body or header != [x['name'] for x in mapping(table) if 'until' not in x]:
                m.add(f'{table}: absent from the database, expected a header-only file')
        files, rows, cells = files + 1, rows + r, cells + c
    extra = sorted(set(os.listdir(directory)) - {os.path.basename(find(directory, t) or '') for t in TABLES + ['try_summary']})
    if extra:
        m.add(f'unexpected files left in {directory}: {extra}')
    m.fail_if_any()
    print(f'ok {os.path.basename(db_path)}{" --raw" if raw else ""}: {files} files, {rows} rows, {cells} cells compared')
    return files, rows, cells


def cmd_same(dir_a, dir_b, want_bom=False):
    """Plain/gzip, levels and BOM change the bytes on disk, never the CSV text."""
    m = Mismatches(f'{dir_a} vs {dir_b}')
    n = 0
    for table in TABLES + ['try_summary']:
        a, b = find(dir_a, table), find(dir_b, table)
        if a is None or b is None:
            m.add(f'{table}: missing in one export')
            continue
        ta, bom_a = open_text(a)
        tb, bom_b = open_text(b)
        if ta != tb:
            m.add(f'{table}: text differs between {a} and {b}')
        if bom_a or bom_b != want_bom:
            m.add(f'{table}: byte-order mark {bom_a}/{bom_b}, expected False/{want_bom}')
        n += 1
    m.fail_if_any()
    print(f'ok {os.path.basename(dir_b)} = {os.path.basename(dir_a)}: {n} files')


def filter_string(db, table, columns):
    """The --infilter string: UTF-8 (76), formulas not evaluated, and per column text (2) for text so ids and
    leading zeros stay exact, YMD (5) for timestamps so they become dates, standard (1) for numbers."""
    kinds = column_kinds(db, table, columns)
    fmt = {'timestamp': 5, 'int64': 1, 'float64': 1}
    per_column = '/'.join(f'{i}/{fmt.get(k, 2)}' for i, k in enumerate(kinds, 1))
    return f'CSV:44,34,76,1,{per_column},1033,false,false,,,false,,false'


def column_kinds(db, table, columns):
    types = {c['name']: c['type'] for c in mapping(table)}
    return [types.get(c, 'text') for c in columns]


def soffice(paths, work, infilter=None):
    """Converts the files in one LibreOffice run; returns their worksheets (openpyxl), or None where nothing came out
    (soffice exits 0 even when it converts nothing)."""
    import openpyxl
    out = os.path.join(work, 'xlsx')
    args = ['soffice', f'-env:UserInstallation=file://{work}/lo-profile', '--headless']
    if infilter:
        args.append('--infilter=' + infilter)
    subprocess.run(args + ['--convert-to', 'xlsx', '--outdir', out] + list(paths), capture_output=True)
    sheets = []
    for path in paths:
        xlsx = os.path.join(out, os.path.basename(path).removesuffix('.gz') + '.xlsx')
        sheets.append(openpyxl.load_workbook(xlsx).active if os.path.exists(xlsx) else None)
        if os.path.exists(xlsx):
            os.remove(xlsx)
    return sheets


def formula_cells(ws):
    return [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == 'f']


def cmd_formulas_default(work, *paths):
    """LibreOffice's defaults (what a double-click gives): only formula safety can be asserted, since the default
    charset is not UTF-8. Prints the number of formula cells per file, so the caller can assert both ways."""
    sheets = soffice(paths, work)
    if None in sheets:
        sys.exit(f'LibreOffice converted nothing for {paths}')
    print(' '.join(str(len(formula_cells(ws))) for ws in sheets))


def cmd_libreoffice(db_path, path, table, work):
    db = sqlite3.connect(f'file:{db_path}?mode=ro', uri=True)
    m = Mismatches(f'LibreOffice {path}')
    mm = Mismatches('csv')
    header, rows = read_csv(path, mm)
    mm.fail_if_any()
    ws, = soffice([path], work, filter_string(db, table, header))
    if ws is None:
        m.add('LibreOffice converted nothing')
        m.fail_if_any()
    grid = list(ws.iter_rows(max_col=max(ws.max_column, len(header))))
    formulas = formula_cells(ws)
    if formulas:
        m.add(f'formula cells: {formulas[:10]}')
    if len(grid) != len(rows) + 1 or ws.max_column != len(header):
        m.add(f'{ws.max_row} x {ws.max_column} cells, CSV has {len(rows) + 1} x {len(header)}')
    kinds = column_kinds(db, table, header)
    cells = truncated = 0
    for r_i, (xrow, crow) in enumerate(zip(grid, [header] + rows)):
        for c_i, (cell, field) in enumerate(zip(xrow, crow)):
            cells += 1
            kind = 'text' if r_i == 0 else kinds[c_i]
            v = cell.value
            if field == '':
                ok = v is None
            elif kind == 'timestamp':
                # a real date cell; openpyxl reads dates to the millisecond
                want = datetime.datetime.strptime(field, TIMESTAMP_FORMAT)
                ok = cell.is_date and isinstance(v, datetime.datetime) and abs(v - want) <= datetime.timedelta(milliseconds=1)
            elif kind in ('int64', 'float64'):
                # LibreOffice keeps doubles but writes 15 significant digits into xlsx
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) == float(f'{float(field):.15g}')
            else:
                # text as is; LibreOffice turns CRLF and a lone CR inside a cell into LF, and keeps at most 32,767
                # UTF-16 units per cell (Excel's limit), cut before a split surrogate pair
                want = field.replace('\r\n', '\n').replace('\r', '\n')
                if utf16_len(want) > CELL_LIMIT and isinstance(v, str):
                    ok = want.startswith(v) and CELL_LIMIT - 1 <= utf16_len(v) <= CELL_LIMIT
                    truncated += 1
                else:
                    ok = cell.data_type == 's' and v == want
            if not ok:
                m.add(f'{cell.coordinate} ({header[c_i]}, {kind}): csv {field[:80]!r} cell {str(v)[:80]!r} type {cell.data_type}')
    m.fail_if_any()
    note = f', {truncated} over-long cells cut at the spreadsheet limit' if truncated else ''
    print(f'ok LibreOffice {os.path.basename(path)} ({table}): {len(rows)} rows, {cells} cells, no formulas{note}')
    return len(rows), cells


if __name__ == '__main__':
    argv = sys.argv[1:]
    flags = {a for a in argv if a.startswith('--')}
    args = [a for a in argv if not a.startswith('--')]
    if args[0] == 'compare':
        cmd_compare(args[1], args[2], raw='--raw' in flags)
    elif args[0] == 'same':
        cmd_same(args[1], args[2], want_bom='--bom' in flags)
    elif args[0] == 'libreoffice':
        cmd_libreoffice(*args[1:5])
    elif args[0] == 'formulas-default':
        cmd_formulas_default(*args[1:])
    else:
        sys.exit(__doc__)
