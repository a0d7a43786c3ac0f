#!/usr/bin/env bash
# Measures GzipWriter throughput (MB/s of input) at a level on 1 and 2 threads against `gzip -LEVEL`
# on the same CSV-like input, and the output sizes. Not a test: it prints figures. Wall-clock figures
# depend on what else runs on the machine (check `uptime`); CPU seconds much less so.
#
#   scripts/checks/gzip_bench.sh [INPUT_FILE] [LEVEL=6]
#
# Without INPUT_FILE it generates ~80 MB with gen_csv_like.py (its "resource" kind compresses less). It builds a throwaway release package
# in $TMPDIR that links Sources/GzipStream and Sources/CParslZlib from this checkout, so the main
# package is not rebuilt.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${TMPDIR:-/tmp}/gzip-bench"
level="${2:-6}"
mkdir -p "$work/Sources/bench"
ln -sfn "$root/Sources/GzipStream" "$work/Sources/GzipStream"
ln -sfn "$root/Sources/CParslZlib" "$work/Sources/CParslZlib"
cat > "$work/Package.swift" <<'MANIFEST'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "gzip-bench",
    targets: [
        .systemLibrary(name: "CParslZlib", pkgConfig: "zlib"),
        .target(name: "GzipStream", dependencies: ["CParslZlib"]),
        .executableTarget(name: "bench", dependencies: ["GzipStream"]),
    ]
)
MANIFEST
cat > "$work/Sources/bench/main.swift" <<'SWIFT'
import Glibc
import GzipStream

// bench INPUT OUTPUT LEVEL THREADS: stream INPUT in 64 KiB reads (as a CSV buffer would drain) through the
// writer into OUTPUT; print input bytes, output bytes, wall s, CPU s, peak RSS KiB.
let args = CommandLine.arguments
guard let input = fopen(args[1], "rb"), let output = fopen(args[2], "wb") else { fatalError("open") }
func seconds(_ clock: clockid_t) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
func run() throws {
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    var read = 0
    var written = 0
    let wall0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID)
    let writer = try GzipWriter(level: Int32(args[3])!, threads: Int(args[4])!) { buffer in
        written += buffer.count
        guard fwrite(buffer.baseAddress, 1, buffer.count, output) == buffer.count else {
            throw GzipError(code: .zlib, message: "fwrite")
        }
    }
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, input) }
        if n == 0 { break }
        read += n
        try chunk.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
    try writer.finish()
    fclose(output)
    let wall = seconds(CLOCK_MONOTONIC) - wall0, cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    print("\(read) \(written) \(wall) \(cpu) \(usage.ru_maxrss)")
}
try run()
SWIFT
(cd "$work" && swift build -c release >/dev/null)
bench="$(cd "$work" && swift build -c release --show-bin-path)/bench"
in="${1:-$work/input.csv}"
[[ -f "$in" ]] || python3 "$root/scripts/checks/gen_csv_like.py" "$in" 80
printf '| run | MB/s wall | MB/s per CPU s | wall s | CPU s | output bytes | size vs gzip -%s | peak RSS |\n|---|---|---|---|---|---|---|---|\n' "$level"
insize=$(stat -c %s "$in")
for run in 1 2 3; do
    /usr/bin/time -f '%e %U %S %M' -o "$work/time.$run" gzip -"$level" -n -c "$in" > "$work/ref.gz"
    cat "$work/time.$run"
done | sort -k1 -n | sed -n 2p | while read -r wall user sys rss; do
    awk -v s="$insize" -v w="$wall" -v c="$(echo "$user + $sys" | bc)" -v o="$(stat -c %s "$work/ref.gz")" -v l="$level" -v m="$rss" \
        'BEGIN { printf "| gzip -%s, median of 3 | %.1f | %.1f | %.2f | %.2f | %d | 1.0000 | %.1f MB |\n", l, s / 1e6 / w, s / 1e6 / c, w, c, o, m / 1024 }'
done
ref=$(stat -c %s "$work/ref.gz")
for threads in 1 2; do
    for run in 1 2 3; do
        "$bench" "$in" "$work/ours.gz" "$level" "$threads"
    done | sort -k3 -n | sed -n 2p | while read -r size out wall cpu rss; do
        awk -v s="$size" -v o="$out" -v w="$wall" -v c="$cpu" -v r="$ref" -v t="$threads" -v m="$rss" \
            'BEGIN { printf "| GzipWriter %d thread(s), median of 3 | %.1f | %.1f | %.2f | %.2f | %d | %.4f | %.1f MB |\n", t, s / 1e6 / w, s / 1e6 / c, w, c, o, o / r, m / 1024 }'
    done
    gzip -t "$work/ours.gz"
    cmp <(zcat "$work/ours.gz") "$in"
done
