#!/usr/bin/env bash
# The packaged parsl-export as a user without Swift gets it. scripts/package builds the static binary, the wheel and
# the tarball; the wheel is installed into a fresh venv and run with the Swift toolchain's directory hidden (an empty
# tmpfs over it in a mount namespace of its own, where unshare is allowed) under `env -i` with a PATH holding no
# Swift: --help, --version (names the compiled-in SQLite, zlib, zstd and libdeflate), inspect on every fixture
# database, `all` (its outputs through the same consumer checks as the source build's: csv_check.py,
# parquet_values.py, promtool, json) and `serve` (one scrape). Exit codes and signals reach the caller; installing
# twice is harmless; pip uninstall leaves the venv as it was; auditwheel's policy matches the wheel's tag and
# covers every library it links, and rejects a wheel of the dynamically linked build.
# Env: PARSL_EXPORT (the normal, dynamically linked release build), PYTHON (venv with auditwheel, pyarrow, duckdb,
# polars, pandas, prometheus_client). Needs promtool.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PARSL_EXPORT:?set PARSL_EXPORT to the release binary}"
: "${PYTHON:?set PYTHON to the checking tools venv python}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

started=$SECONDS
mapfile -t made < <(scripts/package -o "$tmp/dist")
wheel=${made[0]}
tarball=${made[1]}
echo "scripts/package: $((SECONDS - started)) s; $(basename "$wheel") $(stat -c %s "$wheel") bytes," \
    "$(basename "$tarball") $(stat -c %s "$tarball") bytes"

"$PYTHON" scripts/checks/package_check.py policy "$wheel"
# The control: the dynamically linked build in the same wheel must be refused.
mkdir -p "$tmp/dynamic"
python3 scripts/package.d/make_wheel.py --binary "$PARSL_EXPORT" --version 0 --platform "$(basename "$wheel" .whl | sed "s/.*-none-//")" \
    --summary control --readme README.md --out-dir "$tmp/dynamic" --level 1 >/dev/null
dynamic_wheel=("$tmp"/dynamic/*.whl)
if "$PYTHON" scripts/checks/package_check.py policy "${dynamic_wheel[0]}" 2>"$tmp/control"; then
    fail "the policy check accepted the dynamically linked build"
fi
echo "auditwheel: a wheel of the dynamic build is refused ($(sed 's/.*policy: //' "$tmp/control" | cut -c1-90)...)"

# A user's machine: a fresh venv, nothing inherited from this shell, the toolchain out of reach.
python3 -m venv "$tmp/venv"
venv="$tmp/venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" list >/dev/null  # pip's own first-run files, before the snapshot
(cd "$venv" && find . -path ./bin/__pycache__ -prune -o -print | sort) >"$tmp/venv-before"
"${pip[@]}" install --no-index "$wheel"
"${pip[@]}" install --no-index "$wheel" 2>&1 | tee "$tmp/again"
"${pip[@]}" install --no-index --force-reinstall "$wheel"
[ ! -s "$tmp/again" ] || fail "a second install printed: $(cat "$tmp/again")"

toolchain=$(dirname "$(dirname "$(dirname "$(command -v swift)")")")
clean_path="$venv/bin:/usr/local/bin:/usr/bin:/bin"
clean=(env -i PATH="$clean_path" HOME="$tmp" LANG=C.UTF-8)
hidden=()
if unshare --mount true 2>/dev/null; then
    hidden=(unshare --mount sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$toolchain")
fi
user() { "${hidden[@]}" "${clean[@]}" "$@"; }
user sh -c '! command -v swift && ! command -v swiftc' >/dev/null || fail "swift is on the clean PATH"
user sh -c 'test -z "${LD_LIBRARY_PATH:-}"' || fail "LD_LIBRARY_PATH is set"
if [ ${#hidden[@]} -gt 0 ]; then
    user "$PARSL_EXPORT" --version >/dev/null 2>"$tmp/control" && fail "the dynamic build still runs with $toolchain hidden"
    echo "clean environment: env -i, PATH=$clean_path, $toolchain hidden (the dynamic build cannot start there:" \
        "$(grep -o 'lib[^:]*: cannot open[^(]*' "$tmp/control" | head -n 1))"
else
    echo "clean environment: env -i, PATH=$clean_path ($toolchain not hidden: unshare --mount is not allowed here)"
fi

user parsl-export --help >"$tmp/help" || fail "--help"
grep -q '^SUBCOMMANDS:' "$tmp/help" || fail "--help lists no subcommands"
user parsl-export --version >"$tmp/version"
user "$venv/bin/python" -m parsl_export --version >"$tmp/version-m"
cmp -s "$tmp/version" "$tmp/version-m" || fail "python -m parsl_export --version differs"
header() { sed -n "s/^#define $1[[:space:]]*\"\{0,1\}\([0-9.]*\)\"\{0,1\}.*/\1/p" "/usr/include/$2" | head -n 1; }
zstd_version="$(header ZSTD_VERSION_MAJOR zstd.h).$(header ZSTD_VERSION_MINOR zstd.h).$(header ZSTD_VERSION_RELEASE zstd.h)"
expected="SQLite $(header SQLITE_VERSION sqlite3.h), zlib $(header ZLIB_VERSION zlib.h), zstd $zstd_version, libdeflate $(header LIBDEFLATE_VERSION_STRING libdeflate.h)"
version=$(basename "$wheel" | cut -d- -f2)
[ "$(sed -n 1p "$tmp/version")" = "parsl-export $version" ] || fail "--version says $(sed -n 1p "$tmp/version"), the wheel $version"
[ "$(sed -n 2p "$tmp/version")" = "$expected" ] || fail "--version says $(sed -n 2p "$tmp/version"), the headers $expected"
echo "--help, --version and python -m parsl_export: $(tr '\n' ' ' <"$tmp/version")"

for db in Tests/Fixtures/databases/*.db; do
    user parsl-export inspect "$db" >"$tmp/inspect" || fail "inspect $db"
    grep -q '^schema era: ' "$tmp/inspect" || fail "inspect $db printed no schema era"
done
echo "inspect: $(ls Tests/Fixtures/databases/*.db | wc -l) fixture databases"

set +e
user parsl-export csv "$tmp/missing.db" -o "$tmp/none" 2>/dev/null; missing=$?
user parsl-export csv Tests/Fixtures/databases/era-1.1.0.db -o "$tmp/none" --no-such-option 2>/dev/null; usage=$?
set -e
[ $missing -eq 66 ] && [ $usage -eq 64 ] || fail "exit codes through the entry point: missing input $missing, usage $usage"
echo "exit codes pass through: missing input 66, bad command line 64"

status=0
for db in Tests/Fixtures/databases/parsl-2026.10.26-htex.db Tests/Fixtures/databases/parsl-1.2.0-htex.db; do
    name=$(basename "$db" .db)
    user parsl-export all "$db" -o "$tmp/$name" --quiet || fail "all $db"
    "$PYTHON" scripts/checks/csv_check.py compare "$db" "$tmp/$name/csv" || status=1
    "$PYTHON" scripts/checks/parquet_values.py "$db" "$tmp/$name/parquet" >"$tmp/parquet.log" || { cat "$tmp/parquet.log"; status=1; }
    tail -n 1 "$tmp/parquet.log"
    promtool check metrics <"$tmp/$name/parsl.prom" || status=1
    "$PYTHON" -c 'import gzip, json, sys
for path in sys.argv[1:]:
    events = json.load(gzip.open(path))["traceEvents"]
    assert events, path
print(f"trace: {len(sys.argv) - 1} file(s) parse as JSON with events")' "$tmp/$name"/trace/*.json.gz || status=1
    # The same bytes as the source build writes, but for the two values that follow the clock: the time the
    # metrics took to compute and the newest row's age.
    "$PARSL_EXPORT" all "$db" -o "$tmp/$name-source" --quiet
    for out in "$tmp/$name" "$tmp/$name-source"; do
        grep -v -e '^parsl_export_scrape_duration_seconds ' -e '^parsl_export_newest_row_age_seconds ' \
            "$out/parsl.prom" >"$out.prom" && rm "$out/parsl.prom"
    done
    if ! diff -r "$tmp/$name" "$tmp/$name-source" >/dev/null || ! cmp -s "$tmp/$name.prom" "$tmp/$name-source.prom"; then
        echo "FAIL: $name: the packaged and source builds write different files" >&2
        diff -r "$tmp/$name" "$tmp/$name-source" >&2 || true
        diff "$tmp/$name.prom" "$tmp/$name-source.prom" | head -5 >&2 || true
        status=1
    fi
done
[ $status -eq 0 ] || exit 1
echo "all: CSV, Parquet, Prometheus and trace outputs pass their consumers, byte-equal to the source build's"

# serve through every wrapper: env -i, the namespace's shell, the console script.
"$PYTHON" scripts/checks/package_check.py serve Tests/Fixtures/databases/parsl-2026.10.26-htex.db \
    "$tmp/parsl-2026.10.26-htex.prom" -- "${hidden[@]}" "${clean[@]}" parsl-export

mkdir -p "$tmp/tarball"
tar -C "$tmp/tarball" -xzf "$tarball"
unpacked="$tmp/tarball/$(basename "$tarball" .tar.gz)"
[ "$(cd "$unpacked" && ls | tr '\n' ' ')" = "LICENSE README.md THIRD-PARTY-NOTICES parsl-export " ] \
    || fail "tarball holds $(ls "$unpacked")"
installed=$("$venv/bin/python" -c 'import parsl_export; print(parsl_export.binary_path())')
cmp -s "$unpacked/parsl-export" "$installed" || fail "the tarball's binary differs from the wheel's"
user "$unpacked/parsl-export" --version | cmp -s - "$tmp/version" || fail "the tarball's binary --version differs"
echo "tarball: binary (the wheel's), README, LICENSE, THIRD-PARTY-NOTICES; runs in the clean environment"

"${pip[@]}" uninstall -y parsl-export
(cd "$venv" && find . -path ./bin/__pycache__ -prune -o -print | sort) >"$tmp/venv-after"
diff "$tmp/venv-before" "$tmp/venv-after" || fail "pip uninstall left the venv different from before the install"
echo "pip: installing twice and a forced reinstall are quiet; uninstall leaves the venv as it was"
echo "check-package: $((SECONDS - started)) s in all"
