import ParquetFormat
import ParslExport

/// Deterministic inputs shaped like Parsl monitoring rows.
enum Fixtures {
    /// A small xorshift generator: same inputs on every run.
    struct Random {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let functions = ["simulate", "preprocess", "analyze", "fetch_input", "convert_bash", "reduce_results"]
    static let hosts = ["node-0017.cluster.example.org", "node-0042.cluster.example.org", "login01"]
    static let texts = [
        "/scratch/parsl/campaign/data/run-000/out.h5",
        "ValueError('bad input, retrying')",
        "exec_done",
        "say \"hello\", world",
        "-5 degrees",
        "launched",
    ]

    /// Microseconds from 2026-10-26 onwards, one task every ~3 ms.
    static func micros(count: Int) -> [Int64] {
        var random = Random()
        var now: Int64 = 1_792_972_800_000_000
        return (0..<count).map { _ in
            now += Int64(random.below(6_000))
            return now
        }
    }

    /// `count` timestamps of 26 bytes each, back to back, as SQLite hands them out.
    static func timestampText(count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count * 26)
        for value in micros(count: count) { Timestamp.format(value, into: &out) }
        return out
    }

    /// Four text cells per row (function, host, free text, timestamp), concatenated, with their ranges.
    struct Cells {
        static let perRow = 4
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        func range(row: Int, cell: Int) -> Range<Int> {
            let i = row * Self.perRow + cell
            return offsets[i]..<offsets[i + 1]
        }
        func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
            try bytes.withUnsafeBufferPointer(body)
        }
    }

    static func textCells(count: Int) -> Cells {
        var random = Random()
        var cells = Cells()
        for stamp in micros(count: count) {
            for source in [functions, hosts, texts] {
                cells.bytes.append(contentsOf: source[random.below(source.count)].utf8)
                cells.offsets.append(cells.bytes.count)
            }
            Timestamp.format(stamp, into: &cells.bytes)
            cells.offsets.append(cells.bytes.count)
        }
        return cells
    }

    /// CSV text of task-like rows, at least `minimumBytes` long.
    static func csvBytes(minimumBytes: Int) -> [UInt8] {
        var random = Random()
        var out: [UInt8] = []
        var task = 0
        var stamps = micros(count: 1).first!
        while out.count < minimumBytes {
            task += 1
            stamps += Int64(random.below(6_000))
            out.append(contentsOf: "\(task),\(functions[random.below(functions.count)]),".utf8)
            out.append(contentsOf: "\(hosts[random.below(hosts.count)]),".utf8)
            Timestamp.format(stamps, into: &out)
            out.append(contentsOf: ",\(Double(random.below(100_000)) / 1000),htex_local,\(random.below(3))\r\n".utf8)
        }
        return out
    }

    static let parquetColumns = [
        ParquetColumnSpec(name: "task_id", kind: .int64, required: true),
        ParquetColumnSpec(name: "task_func_name", kind: .string, dictionary: true),
        ParquetColumnSpec(name: "hostname", kind: .string, dictionary: true),
        ParquetColumnSpec(name: "task_stdout", kind: .string),
        ParquetColumnSpec(name: "task_time_invoked", kind: .timestampMicros(utcAdjusted: true)),
        ParquetColumnSpec(name: "resource_monitoring_interval", kind: .double),
    ]

    static func parquetBatch(rows: Int) -> ParquetBatch {
        var random = Random()
        func strings(_ make: (Int) -> String) -> ParquetColumnData {
            var bytes: [UInt8] = []
            var offsets: [Int32] = [0]
            for i in 0..<rows {
                bytes.append(contentsOf: make(i).utf8)
                offsets.append(Int32(bytes.count))
            }
            return .byteArray(bytes: bytes, offsets: offsets, isNull: nil)
        }
        let times = micros(count: rows)
        let nulls = (0..<rows).map { _ in random.below(20) == 0 }
        return ParquetBatch(
            rowCount: rows,
            columns: [
                .int64((0..<rows).map(Int64.init), isNull: nil),
                strings { _ in functions[random.below(functions.count)] },
                strings { _ in hosts[random.below(hosts.count)] },
                strings { "/scratch/parsl/campaign/runinfo/000/task_logs/0000/task_\($0).stdout" },
                .int64(times, isNull: nulls),
                .double((0..<rows).map { _ in Double(random.below(100_000)) / 1000 }, isNull: nil),
            ]
        )
    }
}
