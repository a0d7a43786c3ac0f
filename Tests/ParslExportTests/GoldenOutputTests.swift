import Foundation
import Testing

@testable import ParslExport

/// Byte-level golden files of the CSV tables, the Prometheus textfile and the trace JSON of a small real database
/// (Parsl 2026.10.26, thread pool). Regenerate with PARSL_EXPORT_UPDATE_GOLDEN=1 after an intended change; such a
/// run fails, so it cannot stand in for a comparison.
@Suite("Golden outputs", .serialized)
struct GoldenOutputTests {
    static let database = Fixtures.threads2026
    static let goldenDirectory: String = {
        var path = #filePath
        for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fixtures/golden/parsl-2026.10.26-threads"
    }()

    /// Compares `actual` with the golden file `name`, or rewrites it in update mode (and fails).
    private func compare(_ actual: [UInt8], golden name: String) throws {
        let path = Self.goldenDirectory + "/" + name
        if ProcessInfo.processInfo.environment["PARSL_EXPORT_UPDATE_GOLDEN"] != nil {
            mkdir(Self.goldenDirectory, 0o755)
            mkdir(String(path[..<path.lastIndex(of: "/")!]), 0o755)
            try Data(actual).write(to: URL(fileURLWithPath: path))
            Issue.record("rewrote \(path); run again without PARSL_EXPORT_UPDATE_GOLDEN")
            return
        }
        let expected = Array(try #require(FileManager.default.contents(atPath: path), "no golden file \(path)"))
        if expected != actual {
            let firstDifference =
                zip(expected.indices, zip(expected, actual)).first { $0.1.0 != $0.1.1 }?.0 ?? min(expected.count, actual.count)
            Issue.record(
                "\(name) differs from \(path) at byte \(firstDifference) (\(actual.count) bytes, golden \(expected.count)); regenerate with PARSL_EXPORT_UPDATE_GOLDEN=1 if intended"
            )
        }
    }

    private func read(_ path: String) throws -> [UInt8] {
        Array(try #require(FileManager.default.contents(atPath: path), "no output \(path)"))
    }

    @Test("every CSV table, byte for byte")
    func csvTables() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let tables = Set(try MappingCatalog.embedded().tableNames)
        let sink = CSVSink(options: .init(directory: directory, gzip: false), tables: tables)
        _ = try ExportPipeline(request: ExportRequest(databasePath: Self.database, parallelTables: false)).run(into: sink)
        let names = try listDirectory(directory).sorted()
        #expect(names.count == tables.count, "\(names)")
        for name in names { try compare(try read(directory + "/" + name), golden: "csv/" + name) }
    }

    @Test("the Prometheus textfile, byte for byte but for the read time and the newest row's age")
    func prometheusText() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let sink = PrometheusSink(path: directory + "/parsl.prom", options: PrometheusOptions())
        // UTC named, so epoch seconds do not depend on the zone of the machine running the test.
        _ = try ExportPipeline(request: ExportRequest(databasePath: Self.database, tables: [], timeZone: "UTC")).run(into: sink)
        let text = String(decoding: try read(directory + "/parsl.prom"), as: UTF8.self)
        // The values that change from run to run: how long the read took, and how old the newest row is by now.
        let varying = ["parsl_export_scrape_duration_seconds ", "parsl_export_newest_row_age_seconds "]
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let steady = lines.filter { line in !varying.contains { line.hasPrefix($0) } }
        #expect(lines.count - steady.count == varying.count, "each varying line is where it was")
        try compare(Array(steady.joined(separator: "\n").utf8), golden: "parsl.prom")
    }

    @Test("the trace JSON, byte for byte")
    func traceJSON() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/trace.json"
        let sink = TraceSink(options: TraceSink.Options(output: path, outputIsDirectory: false))
        _ = try ExportPipeline(request: ExportRequest(databasePath: Self.database, latestRun: true)).run(into: sink)
        try compare(try read(path), golden: "trace.json")
    }
}
