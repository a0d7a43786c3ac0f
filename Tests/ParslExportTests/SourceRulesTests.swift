import CParslSQLite
import Dispatch
import Foundation
import Testing

@testable import ParslExport

/// One value rule for every reader: the table batches (CSV, Parquet), the trace's rows and the metrics' rows read
/// the same odd cell as the same value.
@Suite("Value rules")
struct ValueRuleTests {
    /// (SQL literal, the value every reader must give)
    static let integers: [(String, Int64?)] = [("7", 7), ("3.0", 3), ("3.5", nil), ("'42'", 42), ("'x'", nil), ("NULL", nil)]
    static let booleans: [(String, Bool?)] = [("1", true), ("0", false), ("2", nil), ("'true'", true), ("'F'", false), ("1.0", nil)]
    static let numbers: [(String, Double?)] = [("2.5", 2.5), ("4", 4), ("'1.25'", 1.25), ("'n/a'", nil)]
    /// 2026-11-24 12:00:00 in the export's clock (no zone): an offset is applied, a naive reading is kept.
    static let noon = Timestamp.parse("2026-11-24 12:00:00.000000")!.wallClockMicros
    static let timestamps: [(String, Int64?)] = [
        ("'2026-11-24 12:00:00'", noon), ("'2026-11-24 14:00:00+02:00'", noon), ("'2026-11-24T12:00:00Z'", noon),
        ("'2026-11-24 07:00:00-05:00'", noon), ("'yesterday'", nil), ("1764000000", nil),
    ]

    /// A database with one table `odd(i, b, f, t)` holding the cells of the lists above, row by row.
    private func database() throws -> (String, String) {
        let directory = temporaryDirectory()
        let path = directory + "/odd.db"
        var sql = "CREATE TABLE odd(i, b, f, t);"
        let rows = [Self.integers.count, Self.booleans.count, Self.numbers.count, Self.timestamps.count].max()!
        for row in 0..<rows {
            func cell<T>(_ list: [(String, T)]) -> String { row < list.count ? list[row].0 : "NULL" }
            sql += "INSERT INTO odd VALUES (\(cell(Self.integers)), \(cell(Self.booleans)), \(cell(Self.numbers)), \(cell(Self.timestamps)));"
        }
        try execute(path, sql)
        return (directory, path)
    }

    private struct Cells: Equatable {
        var integers: [Int64?] = []
        var booleans: [Bool?] = []
        var numbers: [Double?] = []
        var timestamps: [Int64?] = []
    }

    /// The cells as the table reader puts them into a batch.
    private func tableReader(_ path: String, warnings: ValueWarnings) throws -> Cells {
        let connection = try SQLiteConnection(path: path)
        let types: [LogicalType] = [.int64, .bool, .float64, .timestamp]
        let names = ["i", "b", "f", "t"]
        let schema = TableSchema(
            name: "odd", columns: zip(names, types).map { ColumnSchema(name: $0, type: $1, nullable: true) })
        let reader = try TableReader(
            connection: connection, schema: schema,
            plans: zip(names, types).map { ColumnPlan(expression: $0, type: $1, normalise: nil) },
            from: "odd", rowidExpression: "rowid", runColumn: nil, options: ReadOptions(), warnings: warnings)
        var cells = Cells()
        try reader.read(upTo: .max) { batch in
            for row in 0..<batch.rowCount {
                cells.integers.append(batch.columns[0].int64(at: row))
                cells.booleans.append(batch.columns[1].bool(at: row))
                cells.numbers.append(batch.columns[2].double(at: row))
                cells.timestamps.append(batch.columns[3].int64(at: row))
            }
        }
        return cells
    }

    /// The cells as `read` gives them from each row of `SELECT i, b, f, t FROM odd`.
    private func rows(_ path: String, _ read: (SQLiteStatement, inout Cells) -> Void) throws -> Cells {
        let connection = try SQLiteConnection(path: path)
        let statement = try connection.prepare("SELECT i, b, f, t FROM odd ORDER BY rowid")
        defer { statement.reset() }
        var cells = Cells()
        while try statement.step() { read(statement, &cells) }
        return cells
    }

    @Test("the table batches, the trace's rows and the metrics' rows read each odd cell alike")
    func everyReaderAgrees() throws {
        let (directory, path) = try database()
        defer { removeTree(directory) }
        let count = [Self.integers.count, Self.booleans.count, Self.numbers.count, Self.timestamps.count].max()!
        func padded<T>(_ list: [(String, T?)]) -> [T?] { list.map(\.1) + Array(repeating: nil, count: count - list.count) }
        let expected = Cells(
            integers: padded(Self.integers), booleans: padded(Self.booleans), numbers: padded(Self.numbers),
            timestamps: padded(Self.timestamps))

        let tableWarnings = ValueWarnings()
        #expect(try tableReader(path, warnings: tableWarnings) == expected)
        let traceWarnings = ValueWarnings()
        let trace = try rows(path) { statement, cells in
            let row = TraceRow(statement: statement, warnings: traceWarnings, zone: nil)
            cells.integers.append(row.int(0, warn: ("odd", "i")))
            cells.booleans.append(row.bool(1))
            cells.numbers.append(row.double(2, warn: ("odd", "f")))
            cells.timestamps.append(row.time(3, warn: ("odd", "t")))
        }
        // The trace takes an integer in a time column as a time SQL already converted (`parsl_us`); its queries
        // only hand it those, so compare the text cells.
        var traceExpected = expected
        traceExpected.timestamps[Self.timestamps.count - 1] = 1_764_000_000
        #expect(trace == traceExpected)
        let metricsWarnings = ValueWarnings()
        let metrics = try rows(path) { statement, cells in
            // The metrics collector's reader: problems go to its table and the statement's column names.
            let row = SourceRow(statement: statement, warnings: metricsWarnings, zone: nil, table: "odd")
            cells.integers.append(row.integer(0))
            cells.booleans.append(row.boolean(1))
            cells.numbers.append(row.double(2))
            cells.timestamps.append(row.timestamp(3))
        }
        #expect(metrics == expected)
        // The same problems are reported, once per odd cell, by the table reader and the metrics' reader.
        #expect(tableWarnings.total > 0)
        #expect(tableWarnings.total == metricsWarnings.total)
    }

    @Test("a timestamp with an offset is the same instant with or without --timezone")
    func offsetsAreApplied() throws {
        let zone = try TimeZoneConversion(identifier: "Europe/Paris")
        let withOffset = try #require(Timestamp.parse("2026-11-24 14:00:00+02:00"))
        #expect(withOffset.micros(in: nil) == Self.noon)
        #expect(withOffset.micros(in: zone) == Self.noon)
        let naive = try #require(Timestamp.parse("2026-11-24 13:00:00"))
        #expect(naive.micros(in: zone) == Self.noon)
        #expect(naive.micros(in: nil) == Self.noon + 3_600_000_000)
    }
}

/// A try's final state, whether it ran, its queue wait and run time: one definition.
@Suite("Try lifecycle")
struct TryLifecycleTests {
    @Test func durationsAreNeverNegative() {
        #expect(TryLifecycle.queueWait(launched: 10, running: 25) == 15)
        #expect(TryLifecycle.queueWait(launched: 30, running: 25) == 0)
        #expect(TryLifecycle.queueWait(launched: nil, running: 25) == nil)
        #expect(TryLifecycle.runTime(running: 25, returned: 100) == 75)
        #expect(TryLifecycle.runTime(running: 25, returned: nil) == nil)
        #expect(TryLifecycle.ran(running: 1) && !TryLifecycle.ran(running: nil))
    }

    /// The SQL rank and the Swift rank say the same of every state Parsl writes.
    @Test func sqlAndSwiftRankAlike() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/states.db"
        let states = [
            "pending", "launched", "running", "running_ended", "exec_done", "memo_done", "failed", "dep_fail", "done",
            "fail_retryable", "joining", "unsched",
        ]
        try execute(path, "CREATE TABLE status(task_status_name);" + states.map { "INSERT INTO status VALUES ('\($0)');" }.joined())
        let connection = try SQLiteConnection(path: path)
        let statement = try connection.prepare("SELECT s.task_status_name, \(TryLifecycle.finalStateRankSQL) FROM status AS s")
        defer { statement.reset() }
        var seen = 0
        while try statement.step() {
            let state = try #require(statement.string(0))
            #expect(Int(statement.int64(1)) == TryLifecycle.finalStateRank(state), "\(state)")
            seen += 1
        }
        #expect(seen == states.count)
    }
}

/// Time zones from the TZif files, with nothing process-wide.
@Suite("Time zone rules")
struct TimeZoneRuleTests {
    private func utc(_ wallClock: String, _ conversion: TimeZoneConversion) throws -> String {
        let parsed = try #require(Timestamp.parse(wallClock))
        return Timestamp.format(conversion.utcMicros(fromWallClock: parsed.wallClockMicros))
    }

    @Test("years past the file's last transition follow its POSIX rule; the southern hemisphere too")
    func footerRules() throws {
        let paris = try TimeZoneConversion(identifier: "Europe/Paris")
        #expect(try utc("2045-07-01 12:00:00.000000", paris) == "2045-07-01 10:00:00.000000")
        #expect(try utc("2045-12-01 12:00:00.000000", paris) == "2045-12-01 11:00:00.000000")
        let sydney = try TimeZoneConversion(identifier: "Australia/Sydney")
        #expect(try utc("2026-01-15 12:00:00.000000", sydney) == "2026-01-15 01:00:00.000000")
        #expect(try utc("2026-07-15 12:00:00.000000", sydney) == "2026-07-15 02:00:00.000000")
        #expect(try utc("2046-01-15 12:00:00.000000", sydney) == "2046-01-15 01:00:00.000000")
    }

    @Test("a POSIX rule on its own: the changes of 2026 in Paris")
    func posixRule() throws {
        let rule = try #require(PosixZoneRule("CET-1CEST,M3.5.0,M10.5.0/3"))
        let springChange = Timestamp.parse("2026-03-29 01:00:00")!.wallClockMicros / 1_000_000
        let autumnChange = Timestamp.parse("2026-10-25 01:00:00")!.wallClockMicros / 1_000_000
        #expect(rule.offset(atUTC: springChange - 1) == 3600)
        #expect(rule.offset(atUTC: springChange) == 7200)
        #expect(rule.offset(atUTC: autumnChange - 1) == 7200)
        #expect(rule.offset(atUTC: autumnChange) == 3600)
        #expect(PosixZoneRule("<+0330>-3:30")?.offset(atUTC: 0) == 12_600)
        #expect(PosixZoneRule("nonsense,") == nil)
    }

    @Test("a skipped hour moves forward")
    func skippedHour() throws {
        let paris = try TimeZoneConversion(identifier: "Europe/Paris")
        // 02:30 never happened on 2026-03-29; read with the winter offset it is 01:30 UTC (03:30 CEST).
        #expect(try utc("2026-03-29 02:30:00.000000", paris) == "2026-03-29 01:30:00.000000")
    }

    @Test("two exports with different zones in one process, at the same time, each convert with its own")
    func concurrentExportsKeepTheirZones() throws {
        let fixtureBegan = try #require(Oracle.text(Fixtures.htex2026, "SELECT time_began FROM workflow"))
        let began = try #require(Timestamp.parse(fixtureBegan)?.wallClockMicros, "the fixture's run start")
        let zones: [(String, Int64)] = [("Europe/Paris", 3600), ("America/Chicago", -6 * 3600)]
        let results = Locked<[String: [Int64?]]>([:])
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let (zone, _) = zones[index % 2]
            do {
                let sink = RunStartSink()
                _ = try ExportPipeline(
                    request: ExportRequest(databasePath: Fixtures.htex2026, tables: ["workflow"], timeZone: zone)
                ).run(into: sink)
                results.withLock { $0[zone, default: []].append(sink.began) }
            } catch {
                failures.withLock { $0.append("\(zone): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        for (zone, offset) in zones {
            let seen = results.withLock { $0[zone] ?? [] }
            #expect(seen.count == 4)
            #expect(seen.allSatisfy { $0 == began - offset * 1_000_000 }, "\(zone): \(seen)")
        }
    }
}

/// Collects the workflow table's `time_began`.
private final class RunStartSink: ExportSink {
    let demand = SinkDemand(tables: ["workflow"])
    var began: Int64?

    func consume(_ event: ExportEvent) throws {
        guard case .batch(let batch) = event, batch.schema.name == "workflow" else { return }
        began = batch.column("time_began")?.int64(at: 0)
    }

    func finish() throws -> [String] { [] }
}

/// What every sink is handed about how the database is read.
@Suite("Export settings reach every reader")
struct ExportSettingsTests {
    @Test("--immutable, --busy-timeout, --batch-size and the runs reach the metrics reader through the export")
    func metricsReaderGetsTheExportsSettings() throws {
        let sink = ContextSink()
        _ = try ExportPipeline(
            request: ExportRequest(
                databasePath: Fixtures.htex2026, immutable: true, latestRun: true, tables: ["workflow"],
                timeZone: "Europe/Paris", batchSize: 77, busyTimeoutMilliseconds: 1234)
        ).run(into: sink)
        let context = try #require(sink.context)
        let configuration = MetricsCollector.Configuration(context: context)
        #expect(configuration.path == Fixtures.htex2026)
        #expect(configuration.immutable)
        #expect(configuration.batchSize == 77)
        #expect(configuration.busyTimeoutMilliseconds == 1234)
        #expect(configuration.timeZone == "Europe/Paris")
        #expect(configuration.runIDs == Set(context.runs.map(\.runID)))
        #expect(configuration.runIDs?.count == 1)
        #expect(configuration.warnings === context.warnings)
    }

    @Test("each export has a read gate of its own")
    func readGatesArePerExport() throws {
        let database = try ExportPipeline(request: ExportRequest(databasePath: Fixtures.htex2026)).openDatabase()
        let a = DatabaseSnapshot(database: database, tables: [:], options: ReadOptions(), warnings: ValueWarnings())
        let b = DatabaseSnapshot(database: database, tables: [:], options: ReadOptions(), warnings: ValueWarnings())
        #expect(a.readGate !== b.readGate)
    }
}

private final class ContextSink: ExportSink {
    let demand = SinkDemand(tables: ["workflow"])
    var context: ExportContext?

    func consume(_ event: ExportEvent) throws {
        if case .start(let context) = event { self.context = context }
    }

    func finish() throws -> [String] { [] }
}

/// The trace sees each try once, in one state, however the writer changes it during the export.
@Suite("Trace reads a snapshot of the tries")
struct TraceSnapshotTests {
    @Test("a try that starts running between the trace's two layout passes is still laid out")
    func aTryChangingStateBetweenPassesIsKept() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/live.db"
        try writeFile(path, Array(try #require(FileManager.default.contents(atPath: Fixtures.htex2026))))
        // One try as Parsl first writes it: launched, not yet running.
        try execute(
            path,
            "UPDATE try SET task_try_time_running = NULL, task_try_time_returned = NULL, hostname = NULL, block_id = NULL WHERE task_id = 5 AND try_id = 0"
        )
        let database = try ExportPipeline(request: ExportRequest(databasePath: path)).openDatabase()
        let runID = try #require(try database.runs().first?.runID)
        let snapshot = DatabaseSnapshot(
            database: database, tables: try database.snapshots(tables: [], runIDs: nil, highWaterOnly: ["try", "status"]),
            options: ReadOptions(), warnings: ValueWarnings())
        let source = try TraceSource(snapshot: snapshot, runID: runID, stageSortedReads: true)
        var laidOut: [[Int64]] = []
        try source.ranRows { row in laidOut.append([row.task, row.attempt]) }
        // The worker reports it running, the deferred update names its host, while the export goes on.
        try execute(
            path,
            "UPDATE try SET task_try_time_running = task_try_time_launched, hostname = 'vm', block_id = '0' WHERE task_id = 5 AND try_id = 0"
        )
        try source.notRunRows { row in laidOut.append([row.task, row.attempt]) }
        let tries = Oracle.scalar(path, "SELECT count(*) FROM try")
        #expect(laidOut.count == Int(tries))
        #expect(laidOut.filter { $0 == [5, 0] }.count == 1)
        var sliced = 0
        try source.tryRows { row in
            if row.task == 5 && row.attempt == 0 {
                sliced += 1
                #expect(row.site.host.isNull)
            }
        }
        #expect(sliced == 1, "the slice pass reads the try as the layout did (no host yet)")
    }
}
