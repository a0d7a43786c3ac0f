# Installs what building and checking need, once per machine; sourced by scripts/demo and scripts/test.
# Sets PYTHON (the checking tools' venv) and PARSL_EXPORT (the release binary) for the caller.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${PARSL_EXPORT_VENV:-$ROOT/.venv}"

need_apt() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_build() {
    need_apt libsqlite3-dev zlib1g-dev libdeflate-dev libzstd-dev pkg-config sqlite3 gzip
    command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6.1 or later is needed)" >&2; exit 1; }
}

setup_checks() {
    need_apt chromium libjs-webcomponentsjs-custom-element-v0 prometheus prometheus-node-exporter \
        libreoffice-calc-nogui curl
    # Spark (pyspark) reads the dataset in check-dataset.sh; pyspark 4 needs Java 17.
    need_apt openjdk-17-jre-headless
    if [ ! -x "$VENV/bin/python" ]; then
        echo "setup: creating $VENV" >&2
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.requirements"
    if ! cmp -s "$ROOT/scripts/lib/requirements.txt" "$stamp"; then
        echo "setup: installing Python checking tools" >&2
        "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/lib/requirements.txt"
        cp "$ROOT/scripts/lib/requirements.txt" "$stamp"
    fi
    PYTHON="$VENV/bin/python"
    export PYTHON
    # duckdb-cli's native binary (the wrapper script adds start-up time).
    DUCKDB="$("$PYTHON" -c 'import duckdb_cli, os; print(os.path.join(os.path.dirname(duckdb_cli.__file__), "duckdb"))')"
    export DUCKDB
}

build_release() {
    (cd "$ROOT" && swift build -c release --product parsl-export >&2)
    PARSL_EXPORT="$ROOT/.build/release/parsl-export"
    export PARSL_EXPORT
}
