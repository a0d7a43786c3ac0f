#!/usr/bin/env bash
# CSV, judged by its readers: every test database exported; every file passes gzip -t, strict Python csv and
# pandas, every value equals SQLite's; a database full of hostile text round-trips with --raw and is neutralised
# as documented without it; LibreOffice opens .csv.gz files with the filter string the README recommends.
# Env: PARSL_EXPORT (binary), PYTHON (venv with pandas, openpyxl).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check="$PYTHON scripts/checks/csv_check.py"
log="$tmp/log"
status=0
run() { "$@" | tee -a "$log" || status=1; }

dbs=(Tests/Fixtures/databases/*.db)
[ -e "${dbs[0]}" ] || { echo "no test databases" >&2; exit 1; }
for db in "${dbs[@]}"; do
    name=$(basename "$db" .db)
    "$PARSL_EXPORT" csv "$db" -o "$tmp/$name" --quiet
    run $check compare "$db" "$tmp/$name"
    # Options that change only the bytes on disk must not change the CSV text.
    "$PARSL_EXPORT" csv "$db" -o "$tmp/$name-plain" --no-gzip --quiet
    "$PARSL_EXPORT" csv "$db" -o "$tmp/$name-l0" --level 0 --quiet
    "$PARSL_EXPORT" csv "$db" -o "$tmp/$name-l9" --level 9 --threads 1 --quiet
    "$PARSL_EXPORT" csv "$db" -o "$tmp/$name-bom" --bom --quiet
    run $check same "$tmp/$name" "$tmp/$name-plain"
    run $check same "$tmp/$name" "$tmp/$name-l0"
    run $check same "$tmp/$name" "$tmp/$name-l9"
    run $check same "$tmp/$name" "$tmp/$name-bom" --bom

    # Hostile text in task and try (and so in try_summary), built on this real database.
    "$PYTHON" scripts/checks/make_hostile_db.py "$db" "$tmp/$name-hostile.db"
    "$PARSL_EXPORT" csv "$tmp/$name-hostile.db" -o "$tmp/$name-hostile" --quiet
    "$PARSL_EXPORT" csv "$tmp/$name-hostile.db" -o "$tmp/$name-hostile-raw" --raw --quiet
    run $check compare "$tmp/$name-hostile.db" "$tmp/$name-hostile"
    run $check compare "$tmp/$name-hostile.db" "$tmp/$name-hostile-raw" --raw
done

# Controls: the comparison must reject a --raw export read as neutralised, and a file with one digit changed.
last="$tmp/$name-hostile"
if $check compare "$last.db" "$last-raw" >/dev/null 2>&1; then
    echo "FAIL: a --raw export passed as neutralised" >&2; status=1
fi
cp -r "$last" "$tmp/tampered"
# (the last digit of the first row's timestamp, a microsecond)
zcat "$last/status.csv.gz" | "$PYTHON" -c '
import sys, re
data = sys.stdin.buffer.read()
head, first, rest = data.split(b"\r\n", 2)
first = re.sub(rb"(\.\d{5})(\d)", lambda m: m[1] + str((int(m[2]) + 1) % 10).encode(), first, count=1)
sys.stdout.buffer.write(b"\r\n".join([head, first, rest]))' | gzip > "$tmp/tampered/status.csv.gz"
if zcmp -s "$last/status.csv.gz" "$tmp/tampered/status.csv.gz" || $check compare "$last.db" "$tmp/tampered" >/dev/null 2>&1; then
    echo "FAIL: a changed value went unnoticed (or the control did not change anything)" >&2; status=1
fi

# LibreOffice (slow: one database is enough): the largest test database, hostile task table and real try_summary.
big=$(ls -S "${dbs[@]}" | head -n 1)
name=$(basename "$big" .db)
lo="$tmp/lo"
mkdir -p "$lo"
run $check libreoffice "$tmp/$name-hostile.db" "$tmp/$name-hostile/task.csv.gz" task "$lo"
run $check libreoffice "$tmp/$name-hostile.db" "$tmp/$name-hostile-raw/try.csv.gz" try "$lo"
run $check libreoffice "$big" "$tmp/$name/try_summary.csv.gz" try_summary "$lo"
# With LibreOffice's defaults (a double-click), neutralised text must not become formulas, while the same table
# written with --raw does: that proves both the neutralisation and that this check can see a formula.
cp "$tmp/$name-hostile-raw/task.csv.gz" "$lo/task-raw.csv.gz"  # one soffice run, two distinct output names
counts=$($check formulas-default "$lo" "$tmp/$name-hostile/task.csv.gz" "$lo/task-raw.csv.gz") || status=1
read -r safe unsafe <<<"$counts"
echo "LibreOffice defaults: $safe formula cells from the neutralised task table, $unsafe from --raw" | tee -a "$log"
if [ "$safe" != 0 ] || ! [ "${unsafe:-0}" -gt 0 ]; then
    echo "FAIL: expected 0 formula cells neutralised and some with --raw" >&2
    status=1
fi

awk '/^ok / && / files, / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^files/) f += $i; if ($(i+1) ~ /^rows/) r += $i; if ($(i+1) ~ /^cells/) c += $i } }
     /^ok LibreOffice/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^cells/) l += $i }
     END { printf "csv: %d file exports compared with SQLite, %d rows, %d cells; %d cells checked in LibreOffice\n", f, r, c, l }' "$log"
[ $status -eq 0 ] && echo "csv: all checks passed" || echo "csv: FAILED" >&2
exit $status
