// Micro-benchmarks of the per-value work done for every row: timestamp parsing and formatting,
// CSV cells, gzip blocks, Parquet pages and JSON strings. Inputs are deterministic and shaped like monitoring data.
import Benchmark
import CSVFormat
import GzipStream
import ParquetFormat
import ParslExport
import TraceEventFormat

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )

    let rows = 10_000

    // MARK: Timestamps

    let stamps = Fixtures.timestampText(count: rows)
    Benchmark("Timestamp.parse 10k") { benchmark in
        for _ in benchmark.scaledIterations {
            var sum: Int64 = 0
            stamps.withUnsafeBufferPointer { all in
                for i in 0..<rows {
                    let one = UnsafeBufferPointer(rebasing: all[(i * 26)..<(i * 26 + 26)])
                    sum &+= Timestamp.parse(one)?.wallClockMicros ?? 0
                }
            }
            blackHole(sum)
        }
    }

    let micros = Fixtures.micros(count: rows)
    Benchmark("Timestamp.format 10k") { benchmark in
        var out: [UInt8] = []
        out.reserveCapacity(rows * 26)
        for _ in benchmark.scaledIterations {
            out.removeAll(keepingCapacity: true)
            for value in micros { Timestamp.format(value, into: &out) }
            blackHole(out.count)
        }
    }

    // MARK: CSV

    let cells = Fixtures.textCells(count: rows)
    Benchmark("CSVWriter 10k rows x 8 cells") { benchmark in
        var writer = CSVWriter()
        for _ in benchmark.scaledIterations {
            var written = 0
            cells.withUnsafeBufferPointer { bytes in
                for i in 0..<rows {
                    writer.appendInteger(Int64(i))
                    for c in 0..<Fixtures.Cells.perRow {
                        writer.appendText(UnsafeBufferPointer(rebasing: bytes[cells.range(row: i, cell: c)]))
                    }
                    writer.appendDouble(Double(i) * 0.25)
                    writer.appendNull()
                    writer.appendBool(i & 1 == 0)
                    writer.endRow()
                    if writer.count >= 64 << 10 { writer.drain { written += $0.count } }
                }
            }
            writer.drain { written += $0.count }
            blackHole(written)
        }
    }

    // MARK: Gzip

    let csv = Fixtures.csvBytes(minimumBytes: 1 << 20)
    for threads in [1, 2] {
        Benchmark("GzipWriter 1 MiB CSV level 6, \(threads) thread(s)") { benchmark in
            for _ in benchmark.scaledIterations {
                var written = 0
                let gzip = try GzipWriter(level: 6, threads: threads) { written += $0.count }
                try csv.withUnsafeBytes { try gzip.write($0) }
                try gzip.finish()
                blackHole(written)
            }
        }
    }

    // MARK: Parquet

    let batch = Fixtures.parquetBatch(rows: 32_768)
    for (label, compression) in [("snappy", ParquetCompression.snappy), ("none", .none)] {
        Benchmark("ParquetWriter 32k rows x 6 columns, \(label)") { benchmark in
            let options = ParquetWriterOptions(createdBy: "parsl-export benchmarks", compression: compression)
            for _ in benchmark.scaledIterations {
                var written = 0
                let writer = try ParquetWriter(columns: Fixtures.parquetColumns, options: options) {
                    written += $0.count
                }
                try writer.write(batch)
                try writer.close()
                blackHole(written)
            }
        }
    }

    // MARK: JSON

    Benchmark("JSONStringEscaper 10k cells (validating UTF-8)") { benchmark in
        for _ in benchmark.scaledIterations {
            var total = 0
            cells.withUnsafeBufferPointer { bytes in
                for i in 0..<rows {
                    total += JSONStringEscaper.quoted(validatingUTF8: bytes[cells.range(row: i, cell: 2)]).count
                }
            }
            blackHole(total)
        }
    }

    let names = (0..<rows).map { "\(Fixtures.functions[$0 % Fixtures.functions.count]) \($0)" }
    Benchmark("TraceEventWriter 10k complete events with args") { benchmark in
        for _ in benchmark.scaledIterations {
            var written = 0
            let writer = TraceEventWriter { written += $0.count }
            for i in 0..<rows {
                var args = TraceArgs(minimumCapacity: 2)
                args.append("host", .string(Fixtures.hosts[i % Fixtures.hosts.count]))
                args.append("stdout", .string(Fixtures.texts[i % Fixtures.texts.count]))
                try writer.complete(
                    name: names[i], category: "task", timestamp: micros[i], duration: 1_500,
                    pid: 1 + i % 4, tid: 1 + i % 8, args: args)
            }
            try writer.finish()
            blackHole(written)
        }
    }
}
