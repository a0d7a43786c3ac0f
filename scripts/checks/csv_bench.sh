#!/usr/bin/env bash
# Measures CSVWriter on rows shaped like Parsl monitoring data (cells handed over as byte pointers, as
# from sqlite3_column_text): ns per row and MB/s of CSV, alone and piped through GzipWriter; and, with
# valgrind, that the number of heap allocations does not grow with the number of rows. Not a test.
#
#   scripts/checks/csv_bench.sh [ROWS=1000000]
#
# Builds a throwaway release package in $TMPDIR that links Sources/CSVFormat, Sources/GzipStream and
# Sources/CParslZlib from this checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${TMPDIR:-/tmp}/csv-bench"
rows="${1:-1000000}"
mkdir -p "$work/Sources/csvbench"
for module in CSVFormat GzipStream CParslZlib; do ln -sfn "$root/Sources/$module" "$work/Sources/$module"; done
cat > "$work/Package.swift" <<'MANIFEST'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "csv-bench",
    targets: [
        .systemLibrary(name: "CParslZlib", pkgConfig: "zlib"),
        .target(name: "GzipStream", dependencies: ["CParslZlib"]),
        .target(name: "CSVFormat"),
        .executableTarget(name: "csvbench", dependencies: ["CSVFormat", "GzipStream"]),
    ]
)
MANIFEST
cat > "$work/Sources/csvbench/main.swift" <<'SWIFT'
import CSVFormat
import Glibc
import GzipStream

// csvbench ROWS MODE: MODE "csv" formats only; "gzip" also compresses (level 6, all cores) into a byte count.
let rows = Int(CommandLine.arguments[1])!
let mode = CommandLine.arguments[2]
func seconds(_ clock: clockid_t = CLOCK_MONOTONIC) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
// Cell texts as SQLite would hand them out: prepared once, passed as pointers.
let texts: [[UInt8]] = [
    "3f2a9c1e-7b4d-4e8a-9c2f-1d5e6a7b8c9d", "exec_done", "2026-11-24 23:30:36.489918",
    "simulate", "nid001234", "task failed: ValueError(\"bad input, retry\")", "=cmd|' /C calc'!A0",
].map { Array($0.utf8) }
// Inside a function: top-level variables in main.swift are globals, whose access checks would dominate.
func run() throws {
    var compressed = 0
    let gzip: GzipWriter? = mode == "gzip" ? try GzipWriter { compressed += $0.count } : nil
    var writer = CSVWriter()
    var total = 0
    let start = seconds(), startCPU = seconds(CLOCK_PROCESS_CPUTIME_ID)
    for row in 0..<rows {
        texts[0].withUnsafeBufferPointer { writer.appendText($0) }
        writer.appendInteger(Int64(row))
        writer.appendInteger(Int64(row & 3))
        texts[1].withUnsafeBufferPointer { writer.appendText($0) }
        texts[2].withUnsafeBufferPointer { writer.appendText($0) }
        texts[3].withUnsafeBufferPointer { writer.appendText($0) }
        texts[4].withUnsafeBufferPointer { writer.appendText($0) }
        writer.appendDouble(Double(row % 10_000) / 100)
        if row % 5 == 0 {  // one row in five has a cell that needs quoting, one in ten a formula-like cell
            texts[row % 10 == 0 ? 6 : 5].withUnsafeBufferPointer { writer.appendText($0) }
        } else {
            writer.appendNull()
        }
        writer.endRow()
        if writer.count >= 1 << 16 {
            total += writer.count
            if let gzip { try writer.drain { try gzip.write($0) } } else { writer.drain { _ in } }
        }
    }
    total += writer.count
    if let gzip { try writer.drain { try gzip.write($0) }; try gzip.finish() }
    let elapsed = seconds() - start, cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - startCPU
    print(
        "\(rows) rows, \(total) CSV bytes, \(mode): wall \(Int(elapsed * 1e9 / Double(rows))) ns/row "
            + "(\(Int(Double(total) / 1e6 / elapsed)) MB/s of CSV), CPU \(Int(cpu * 1e9 / Double(rows))) ns/row "
            + "(\(Int(Double(total) / 1e6 / cpu)) MB/s per CPU second)"
            + (gzip != nil ? ", \(compressed) bytes gzipped" : ""))
}
try run()
SWIFT
(cd "$work" && swift build -c release >/dev/null)
bin="$(cd "$work" && swift build -c release --show-bin-path)/csvbench"
"$bin" "$rows" csv
"$bin" "$rows" gzip
for n in 100000 1000000; do
    printf '%s rows under valgrind: ' "$n"
    valgrind "$bin" "$n" csv 2>&1 | grep -o 'total heap usage: [0-9,]* allocs'
done
