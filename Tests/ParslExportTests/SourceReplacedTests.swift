import ExpositionFormat
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import ParslExport

/// A metrics source renamed over by another file while it is being read: `prometheus` fails (it would mix two
/// files), `serve` keeps showing the last good values until the new file can be read.
@Suite struct SourceReplacedTests {
    static func published(_ collector: MetricsCollector) throws -> [String: Double] {
        let (aggregator, shown) = collector.published
        var status = shown
        status.readTime = 0
        status.scrapeSeconds = 0
        return PrometheusMetricsTests.parse(try aggregator.render(.prometheusText, status: status))
    }

    /// Copies `source` next to `path` and renames it over `path`, as a user replacing the file would.
    static func renameOver(_ path: String, with bytes: [UInt8]) throws {
        let staging = path + ".new"
        let descriptor = open(staging, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw ReplayError("cannot create \(staging)") }
        defer { close(descriptor) }
        guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ReplayError("short write to \(staging)")
        }
        guard rename(staging, path) == 0 else { throw ReplayError("cannot rename over \(path)") }
    }

    @Test func serveKeepsTheLastGoodValuesWhileAnUnreadableFileHasTheName() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/monitoring.db"
        let database = try readFile(Fixtures.htex2026)
        try Self.renameOver(path, with: database)
        let collector = try MetricsCollector(configuration: .init(path: path), options: PrometheusOptions())
        try collector.poll()
        let good = try Self.published(collector)
        let tasks = Double(Oracle.scalar(Fixtures.htex2026, "SELECT count(*) FROM task"))
        #expect(PrometheusMetricsTests.sum(good, "parsl_tasks") == tasks)

        try Self.renameOver(path, with: Array("not a database, but long enough to be read as one".utf8))
        #expect(throws: ExportError.self) { try collector.poll() }
        #expect(throws: ExportError.self) { try collector.poll() }
        let kept = try Self.published(collector)
        #expect(kept["parsl_export_database_up"] == 0)
        #expect(kept["parsl_export_initial_read_done"] == 1)
        #expect(PrometheusMetricsTests.sum(kept, "parsl_tasks") == tasks)
        // Every series of the last good read is still there, with its value (the exporter's own health aside).
        let series = good.filter { !$0.key.hasPrefix("parsl_export_") }
        #expect(!series.isEmpty)
        #expect(series.allSatisfy { kept[$0.key] == $0.value })

        // A readable file again: read from the start, the kept values dropped.
        try Self.renameOver(path, with: database)
        try collector.poll()
        let again = try Self.published(collector)
        #expect(again["parsl_export_database_up"] == 1)
        #expect(PrometheusMetricsTests.sum(again, "parsl_tasks") == tasks)
        #expect(again.filter { !$0.key.hasPrefix("parsl_export_") } == series)
    }

    /// The change counter that tells a rewritten file is read through SQLite's own descriptor, inside the read
    /// transaction, and is the header's.
    @Test func theChangeCounterIsTheHeaders() throws {
        let bytes = try readFile(Fixtures.htex2026)
        let header = bytes[24..<28].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let connection = try SQLiteConnection(path: Fixtures.htex2026)
        let counter = try connection.read { connection.fileChangeCounter() }
        #expect(counter == header)
        #expect(header > 0)
    }

    @Test func aCollectorHeldToOneFileFailsWhenItIsRenamedOver() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/monitoring.db"
        let database = try readFile(Fixtures.htex2026)
        try Self.renameOver(path, with: database)
        var configuration = MetricsCollector.Configuration(path: path)
        configuration.sourceIdentity = FileIdentity(path: path)
        // Another file with the same rows under the name before the metrics are read: reading it would mix two
        // files into one export.
        try Self.renameOver(path, with: database)
        let collector = try MetricsCollector(configuration: configuration, options: PrometheusOptions())
        let error = #expect(throws: ExportError.self) { try collector.poll(final: true) }
        #expect(error?.code == .inputLocked)
        #expect(error?.message.contains("replaced") == true)

        // The export's context names the file it opened, which is how `prometheus` and `all` hold their reads to it.
        let summary = try ExportPipeline(request: ExportRequest(databasePath: path)).run(
            into: DiscardingSink(tables: ["workflow"]))
        #expect(summary.context.sourceIdentity == FileIdentity(path: path))
        #expect(MetricsCollector.Configuration(context: summary.context).sourceIdentity == FileIdentity(path: path))
    }
}
