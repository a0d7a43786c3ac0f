import CParslZlib
import GzipStream
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Helpers shared by the gzip tests: a seeded generator, test inputs, an independent inflate, files and commands.

/// The kinds of input the round trips use: incompressible, highly repetitive, and CSV text like the exporter's.
enum GzipTestInput: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case random
    case repetitive
    case csvLike

    var testDescription: String { self.rawValue }

    func bytes(count: Int, seed: UInt64 = 42) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        switch self {
        case .random:
            return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case .repetitive:
            let pattern = Array("abcabcabd0123456789-".utf8)
            return (0..<count).map { pattern[$0 % pattern.count] }
        case .csvLike:
            var out: [UInt8] = []
            out.reserveCapacity(count + 200)
            while out.count < count {
                out.append(contentsOf: csvLikeLine(using: &rng))
            }
            return Array(out.prefix(count))
        }
    }
}

/// One row shaped like Parsl monitoring data: UUID run id, small ints, timestamps, host and app names.
func csvLikeLine(using rng: inout SplitMix64) -> [UInt8] {
    let hex = Array("0123456789abcdef".utf8)
    var line: [UInt8] = []
    // A handful of run ids, as a real database has few runs and many tasks.
    var runRng = SplitMix64(seed: UInt64.random(in: 0..<4, using: &rng))
    for (index, group) in [8, 4, 4, 4, 12].enumerated() {
        if index > 0 { line.append(0x2D) }
        for _ in 0..<group { line.append(hex[Int(runRng.next() % 16)]) }
    }
    let apps = ["simulate", "analyze_chunk", "merge_results", "fetch_input", "train_model"]
    let hosts = ["nid001234", "nid001235", "login01.cluster.example.org", "worker-17"]
    let states = ["exec_done", "running", "launched", "pending", "failed", "memo_done"]
    let task = Int.random(in: 0..<100_000, using: &rng)
    let second = Int.random(in: 0..<60, using: &rng)
    let minute = Int.random(in: 0..<60, using: &rng)
    let micros = Int.random(in: 0..<1_000_000, using: &rng)
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    var fraction = String(micros)
    fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
    let fields = [
        String(task), String(Int.random(in: 0..<3, using: &rng)),
        states[Int.random(in: 0..<states.count, using: &rng)],
        "2026-11-24 23:\(two(minute)):\(two(second)).\(fraction)",
        apps[Int.random(in: 0..<apps.count, using: &rng)],
        hosts[Int.random(in: 0..<hosts.count, using: &rng)],
        String(Int.random(in: 0..<64, using: &rng)),
        String(Double(Int.random(in: 0..<100_000, using: &rng)) / 100),
    ]
    line.append(0x2C)
    line.append(contentsOf: fields.joined(separator: ",").utf8)
    line.append(contentsOf: [0x0D, 0x0A])
    return line
}

/// Compresses `input` with a ``GzipWriter``, feeding it in uneven chunks, and returns the whole member.
func gzipWithWriter(
    _ input: [UInt8],
    level: Int32 = 6,
    threads: Int,
    blockSize: Int = 128 << 10,
    chunkSeed: UInt64 = 7
) throws -> [UInt8] {
    var out: [UInt8] = []
    let writer = try GzipWriter(level: level, threads: threads, blockSize: blockSize) { out.append(contentsOf: $0) }
    var rng = SplitMix64(seed: chunkSeed)
    var offset = 0
    try input.withUnsafeBytes { all in
        while offset < all.count {
            // Chunks from 1 byte to past a block, so block edges fall inside and between writes.
            let count = min(all.count - offset, Int.random(in: 1...(blockSize + 1000), using: &rng))
            try writer.write(UnsafeRawBufferPointer(rebasing: all[offset..<offset + count]))
            offset += count
        }
    }
    try writer.finish()
    return out
}

struct InflateFailure: Error, CustomStringConvertible {
    var description: String
}

/// Decompresses exactly one gzip member with zlib (windowBits 31: gzip wrapper, which checks CRC-32 and ISIZE).
/// Fails if the member is corrupt, truncated, or followed by anything.
func gunzipOneMember(_ data: [UInt8]) throws -> [UInt8] {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    guard cparslzlib_inflateInit2(stream, 31) == Z_OK else { throw InflateFailure(description: "inflateInit2") }
    defer { inflateEnd(stream) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var data = data
    var rc: Int32 = Z_OK
    try data.withUnsafeMutableBufferPointer { input in
        stream.pointee.next_in = input.baseAddress
        stream.pointee.avail_in = uInt(input.count)
        repeat {
            let produced: Int = chunk.withUnsafeMutableBufferPointer { buffer in
                stream.pointee.next_out = buffer.baseAddress
                stream.pointee.avail_out = uInt(buffer.count)
                rc = inflate(stream, Z_NO_FLUSH)
                return buffer.count - Int(stream.pointee.avail_out)
            }
            out.append(contentsOf: chunk[0..<produced])
            guard rc == Z_OK || rc == Z_STREAM_END else {
                throw InflateFailure(description: "inflate returned \(rc) after \(out.count) bytes")
            }
            if rc == Z_OK && stream.pointee.avail_in == 0 && produced == 0 {
                throw InflateFailure(description: "truncated member after \(out.count) bytes")
            }
        } while rc != Z_STREAM_END
        guard stream.pointee.avail_in == 0 else {
            throw InflateFailure(description: "\(stream.pointee.avail_in) bytes after the end of the member")
        }
    }
    return out
}

// MARK: - Files and commands

/// Scratch files and shell commands for the gzip and CSV tests, in a namespace so that they cannot clash with the
/// helpers of other suites in this test target.
enum ScratchFiles {
    /// A fresh directory under $TMPDIR (or /tmp); remove it with ``remove(_:)``.
    static func makeDirectory(_ prefix: String) throws -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) != nil }) else {
            throw InflateFailure(description: "mkdtemp failed under \(base)")
        }
        // mkdtemp filled in the XXXXXX in place; drop the terminating NUL.
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func remove(_ path: String) {
        _ = self.shell("rm -rf '\(path)'")
    }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        guard let file = fopen(path, "wb") else { throw InflateFailure(description: "cannot create \(path)") }
        defer { fclose(file) }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        guard written == bytes.count else { throw InflateFailure(description: "short write to \(path)") }
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else { throw InflateFailure(description: "cannot open \(path)") }
        defer { fclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Runs `command` with /bin/sh and returns its exit status (-1 if it did not exit normally).
    static func shell(_ command: String) -> Int32 {
        let status = system(command)
        // WIFEXITED / WEXITSTATUS are macros: decode the wait status by hand.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : -1
    }
}
