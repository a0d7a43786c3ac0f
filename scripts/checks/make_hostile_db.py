"""Copy a real monitoring database and fill task and try text columns with text that breaks naive CSV.

usage: make_hostile_db.py SOURCE.db DEST.db

Existing rows are updated and new tasks (each with one try) are added, so the hostile text also reaches the
derived try_summary. One extra column, unknown to the mappings, checks that such columns pass through after the
mapped ones. Only text columns change: keys and timestamps stay valid, numbers get a few awkward but legal values.
"""

import shutil
import sqlite3
import sys

# 200 KiB of UTF-8 (more characters would cost LibreOffice minutes); goes into the new rows only.
BIG = ('200 KB: a,b "q" \\ tab\there\r\nline ñ 🚀 ' * 6000).encode()[: 200 * 1024].decode(errors='ignore')

HOSTILE = [
    'say "hi", then leave',
    '"',
    '""',
    'stray"quote',
    ',',
    'a,b,c',
    'line1\nline2',
    'line1\r\nline2',
    'cr\ronly',
    'trailing newline\n',
    '\nleading newline',
    'tab\there',
    'back\\slash and \\n and \\"',
    'ends with backslash\\',
    ' padded ',
    '  leading spaces',
    'trailing space ',
    'ñodé-ü 日本語 函数 Ελληνικά עברית',
    'emoji 🚀 👩‍👩‍👧‍👦 🇫🇷',
    'line\u2028separator and NEL\u0085here',
    '\ufeffstarts with a BOM character',
    '=1+1',
    '=HYPERLINK("http://example.invalid","click")',
    '+cmd',
    '-2+3',
    '-5',
    '@SUM(A1)',
    '\tleading tab',
    '\rleading CR',
    '\r\nleading CRLF',
    "'already apostrophe",
    ' =1+1 after a space',
    '007',
    '12345678901234567890',
    '9007199254740993',
    '1e5',
    '2024-01-01',
    'None',
    '',
]

TASK_TEXT = ['task_func_name', 'task_hashsum', 'task_inputs', 'task_outputs', 'task_stdin', 'task_stdout',
             'task_stderr', 'task_depends']
TRY_TEXT = ['block_id', 'hostname', 'task_executor', 'task_fail_history', 'task_joins']
EXTRA = 'site_note'  # not in any mapping


def columns(db, table):
    return [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]


def insert(db, table, row):
    names = ', '.join(f'"{c}"' for c in row)
    db.execute(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(row))})', list(row.values()))


def main(source, dest):
    shutil.copyfile(source, dest)
    db = sqlite3.connect(dest)
    task_cols = [c for c in TASK_TEXT if c in columns(db, 'task')]
    try_cols = [c for c in TRY_TEXT if c in columns(db, 'try')]  # [] when the era has no try table
    db.execute(f'ALTER TABLE task ADD COLUMN {EXTRA} TEXT')

    # Rotate the hostile values over the columns of existing rows, so each value lands in every column.
    tasks = db.execute('SELECT rowid FROM task ORDER BY rowid LIMIT ?', (len(HOSTILE) * 2,)).fetchall()
    for i, (rowid,) in enumerate(tasks):
        values = [HOSTILE[(i + j) % len(HOSTILE)] for j in range(len(task_cols) + 1)]
        sets = ', '.join(f'"{c}" = ?' for c in task_cols + [EXTRA])
        db.execute(f'UPDATE task SET {sets} WHERE rowid = ?', values + [rowid])
    tries = db.execute('SELECT rowid FROM try ORDER BY rowid LIMIT ?', (len(HOSTILE) * 2,)).fetchall() if try_cols else []
    for i, (rowid,) in enumerate(tries):
        values = [HOSTILE[(i + 3 + j) % len(HOSTILE)] for j in range(len(try_cols))]
        sets = ', '.join(f'"{c}" = ?' for c in try_cols)
        db.execute(f'UPDATE try SET {sets} WHERE rowid = ?', values + [rowid])

    # New tasks, one try each, modelled on the first existing ones; awkward but legal numbers too.
    run_id, max_task = db.execute('SELECT run_id, max(task_id) FROM task GROUP BY run_id LIMIT 1').fetchone()
    template_task = db.execute('SELECT * FROM task WHERE run_id = ? ORDER BY rowid LIMIT 1', (run_id,)).fetchone()
    template_try = db.execute('SELECT * FROM try WHERE run_id = ? ORDER BY rowid LIMIT 1', (run_id,)).fetchone() if try_cols else None
    tcols, ycols = columns(db, 'task'), columns(db, 'try')
    numbers = [(0, -0.0), (-1, -2.5), (2**62, 1e-7), (3, 1e300), (1, 0.1 + 0.2)]
    for i, value in enumerate(HOSTILE + [BIG]):
        task_id = max_task + 1 + i
        row = dict(zip(tcols, template_task))
        row.update(task_id=task_id, task_memoize='1' if i % 2 else '0')
        for c in task_cols + [EXTRA]:
            row[c] = value
        for name, number in zip(('task_fail_count', 'task_fail_cost'), numbers[i % len(numbers)]):
            if name in row:
                row[name] = number
        insert(db, 'task', row)
        if template_try is None:
            continue
        trow = dict(zip(ycols, template_try))
        trow.update(task_id=task_id, try_id=0)
        for c in try_cols:
            trow[c] = value
        insert(db, 'try', trow)
    db.commit()
    db.close()


if __name__ == '__main__':
    main(*sys.argv[1:])
