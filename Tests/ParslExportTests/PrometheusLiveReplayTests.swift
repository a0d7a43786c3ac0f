import CParslSQLite
import ExpositionFormat
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import ParslExport

/// A writable SQLite file for replays (the library only ever opens databases read-only).
final class ReplayWriter {
    let handle: OpaquePointer

    init(path: String) throws {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let db else {
            throw ReplayError("cannot create \(path)")
        }
        handle = db
        sqlite3_busy_timeout(db, 5_000)
    }

    deinit { sqlite3_close_v2(handle) }

    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &message) == SQLITE_OK else {
            defer { sqlite3_free(message) }
            throw ReplayError("\(sql): \(message.map { String(cString: $0) } ?? "?")")
        }
    }

    /// Text columns of every row of `sql`.
    func rows(_ sql: String) throws -> [[String?]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { throw ReplayError("\(sql)") }
        defer { sqlite3_finalize(statement) }
        var result: [[String?]] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            result.append((0..<sqlite3_column_count(statement)).map { i in
                sqlite3_column_text(statement, i).map { String(cString: $0) }
            })
        }
        return result
    }
}

extension String {
    /// The same body with the replacements counter at `count` (the only line a fresh reader cannot share).
    func replacingReplacements(_ count: Int) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasPrefix("parsl_export_database_replacements_total ") ? "parsl_export_database_replacements_total \(count)" : String($0)
        }.joined(separator: "\n")
    }
}

struct ReplayError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `serve` follows a file while Parsl writes it; `prometheus` reads it once. Both must say the same, at every
/// moment, whatever order Parsl wrote the rows in.
struct PrometheusLiveReplayTests {
    /// One write of the replay: the SQL to run and the time it happened (the fixture's own timestamps).
    struct Step {
        var time: String
        var order: Int
        var sql: String
    }

    /// The fixture's rows as Parsl writes them: the workflow row first (completion filled in last), each task row
    /// before its statuses, each try row with no hostname or block until after its last resource sample (Parsl's
    /// deferred update), status, resource, block and node rows at their timestamps.
    static func parslWriteOrder(_ writer: ReplayWriter) throws -> [Step] {
        var steps: [Step] = []
        for row in try writer.rows("SELECT run_id, time_began FROM src.workflow") {
            steps.append(Step(time: row[1]!, order: 0, sql: """
                INSERT INTO main.workflow SELECT * FROM src.workflow WHERE run_id = '\(row[0]!)';
                UPDATE main.workflow SET time_completed = NULL WHERE run_id = '\(row[0]!)';
                """))
            steps.append(Step(time: "9999", order: 9, sql: """
                UPDATE main.workflow SET time_completed = (SELECT time_completed FROM src.workflow WHERE run_id = '\(row[0]!)')
                  WHERE run_id = '\(row[0]!)';
                """))
        }
        for row in try writer.rows(
            "SELECT t.rowid, (SELECT min(timestamp) FROM src.status s WHERE s.run_id = t.run_id AND s.task_id = t.task_id) FROM src.task t")
        {
            steps.append(Step(time: row[1] ?? "0", order: 1, sql: "INSERT INTO main.task SELECT * FROM src.task WHERE rowid = \(row[0]!);"))
        }
        for row in try writer.rows("""
            SELECT t.rowid, t.run_id, t.task_id, t.try_id,
              (SELECT min(timestamp) FROM src.status s WHERE s.run_id = t.run_id AND s.task_id = t.task_id AND s.try_id = t.try_id),
              (SELECT max(timestamp) FROM src.resource r WHERE r.run_id = t.run_id AND r.task_id = t.task_id AND r.try_id = t.try_id),
              t.task_try_time_returned
            FROM src.try t
            """)
        {
            let key = "run_id = '\(row[1]!)' AND task_id = \(row[2]!) AND try_id = \(row[3]!)"
            steps.append(Step(time: row[4] ?? "0", order: 2, sql: """
                INSERT INTO main.try SELECT * FROM src.try WHERE rowid = \(row[0]!);
                UPDATE main.try SET hostname = NULL, block_id = NULL WHERE \(key);
                """))
            steps.append(Step(time: row[5] ?? row[6] ?? row[4] ?? "0", order: 8, sql: """
                UPDATE main.try SET (hostname, block_id) = (SELECT hostname, block_id FROM src.try WHERE \(key)) WHERE \(key);
                """))
        }
        for table in ["status", "resource", "block", "node"] {
            for row in try writer.rows("SELECT rowid, timestamp FROM src.\(table)") {
                steps.append(Step(time: row[1] ?? "0", order: 3, sql: "INSERT INTO main.\(table) SELECT * FROM src.\(table) WHERE rowid = \(row[0]!);"))
            }
        }
        // Stable: rows of one time keep the order of their kind, then the fixture's own order.
        return steps.enumerated().sorted { ($0.element.time, $0.element.order, $0.offset) < ($1.element.time, $1.element.order, $1.offset) }
            .map(\.element)
    }

    static func body(_ collector: MetricsCollector, readTime: Int64) throws -> String {
        var status = collector.status
        status.readTime = readTime
        status.scrapeSeconds = 0
        return String(decoding: try collector.aggregator.render(.prometheusText, status: status), as: UTF8.self)
    }

    @Test func serveEqualsPrometheusAtEveryMomentOfAParslWriteOrderReplay() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/monitoring.db"
        let writer = try ReplayWriter(path: path)
        try writer.execute("ATTACH DATABASE '\(Fixtures.htex2026)' AS src")
        for row in try writer.rows("SELECT sql FROM src.sqlite_master WHERE type = 'table' AND sql IS NOT NULL ORDER BY rowid") {
            try writer.execute(row[0]!)
        }
        let steps = try Self.parslWriteOrder(writer)
        #expect(steps.count > 1_000)

        let configuration = MetricsCollector.Configuration(path: path)
        let live = try MetricsCollector(configuration: configuration, options: PrometheusOptions())
        var awaitedHosts = 0
        var checkpoints = 0
        var sawCurrentMemory = false
        var sawManagers = false
        let perCommit = 40
        for start in stride(from: 0, to: steps.count, by: perCommit) {
            let commit = steps[start..<min(start + perCommit, steps.count)]
            try writer.execute("BEGIN; " + commit.map(\.sql).joined(separator: "\n") + " COMMIT;")
            try live.poll()
            awaitedHosts = max(awaitedHosts, live.aggregator.workerProcesses.samplesAwaitingHost)
            // Every fifth commit, and at the end: the live reader equals a one-shot read of the file as it is,
            // "now" being the time of the last row written (so the current-process gauges are exercised).
            guard (start / perCommit) % 5 == 0 || start + perCommit >= steps.count else { continue }
            let now = Timestamp.parse(commit.last!.time)?.wallClockMicros ?? Int64.max / 2
            let once = try MetricsCollector(configuration: configuration, options: PrometheusOptions())
            try once.poll(final: true)
            let liveBody = try Self.body(live, readTime: now)
            let onceBody = try Self.body(once, readTime: now)
            #expect(liveBody == onceBody, "after \(start + commit.count) of \(steps.count) writes")
            let current = PrometheusMetricsTests.parse(Array(liveBody.utf8))
            sawCurrentMemory = sawCurrentMemory || PrometheusMetricsTests.sum(current, "parsl_resource_resident_memory_bytes") > 0
            sawManagers = sawManagers || PrometheusMetricsTests.sum(current, "parsl_node_managers") > 0
            if liveBody != onceBody { break }
            checkpoints += 1
        }
        #expect(checkpoints > 10)
        // While the run was going there were current workers and managers; after it, none.
        #expect(sawCurrentMemory && sawManagers)
        // The replay did write samples before their try's hostname.
        #expect(awaitedHosts > 0)
        let samples = PrometheusMetricsTests.parse(Array(try Self.body(live, readTime: 0).utf8))
        #expect(samples["parsl_export_resource_samples_awaiting_host"] == 0)
        // Every CPU second is on a real host: none under host="".
        #expect(!samples.keys.contains { $0.hasPrefix("parsl_resource") && $0.contains("host=\"\"") })
        let cpu = PrometheusMetricsTests.sum(samples, "parsl_resource_cpu_seconds_total")
        // SQLite's own answer: per (run, host, pid), the largest user+system time; summed.
        let expectedCPU = try writer.rows("""
            SELECT sum(m) FROM (SELECT max(r.psutil_process_time_user + r.psutil_process_time_system) AS m
              FROM src.resource r JOIN src.try t USING (run_id, task_id, try_id)
              GROUP BY r.run_id, t.hostname, r.psutil_process_pid)
            """)[0][0].flatMap(Double.init) ?? -1
        #expect(abs(cpu - expectedCPU) < 1e-6 * max(1, expectedCPU), "\(cpu) vs \(expectedCPU)")
        #expect(PrometheusMetricsTests.sum(samples, "parsl_resource_resident_memory_bytes") == 0)
        #expect(PrometheusMetricsTests.sum(samples, "parsl_node_managers") == 0)
        #expect(PrometheusMetricsTests.sum(samples, "parsl_workers_connected") == 0)
        #expect(samples.keys.contains { $0.hasPrefix("parsl_blocks{run_id=") && $0.hasSuffix("status=\"PENDING\"}") })
        #expect(samples.filter { $0.key.hasPrefix("parsl_blocks{") && $0.key.contains("PENDING") }.values.allSatisfy { $0 == 0 })
    }

    /// A file overwritten in place (same inode) by another database is noticed and read anew.
    @Test func aDatabaseOverwrittenInPlaceIsReadAnew() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/monitoring.db"
        // The other database: the same rows under another run id, so no table's rowids go back and the file
        // does not shrink; only SQLite's header and the first run id tell the two apart.
        let first = try readFile(Fixtures.htex2026)
        let otherPath = directory + "/other.db"
        try writeInPlace(otherPath, first)
        do {
            let other = try ReplayWriter(path: otherPath)
            for table in ["workflow", "task", "try", "status", "resource", "block", "node"] {
                try other.execute("UPDATE \(table) SET run_id = 'another-run'")
            }
        }
        let second = try readFile(otherPath)
        #expect(second.count >= first.count)
        try writeInPlace(path, first)
        var inode = stat()
        stat(path, &inode)
        let collector = try MetricsCollector(configuration: .init(path: path), options: PrometheusOptions())
        try collector.poll()
        let firstRuns = try Self.runIDs(Fixtures.htex2026)
        #expect(collector.aggregator.runStates.map(\.runID) == firstRuns)
        try writeInPlace(path, second)
        var after = stat()
        stat(path, &after)
        #expect(after.st_ino == inode.st_ino)
        try collector.poll()
        #expect(collector.status.databaseReplacements == 1)
        let secondRuns = ["another-run"]
        #expect(collector.aggregator.runStates.map(\.runID) == secondRuns)
        let once = try MetricsCollector(configuration: .init(path: path), options: PrometheusOptions())
        try once.poll(final: true)
        let followed = try Self.body(collector, readTime: 0)
        let fresh = try Self.body(once, readTime: 0).replacingReplacements(1)
        #expect(followed == fresh)
    }

    static func runIDs(_ path: String) throws -> [String] {
        let writer = try ReplayWriter(path: path)
        return try writer.rows("SELECT run_id FROM workflow ORDER BY rowid").map { $0[0]! }
    }

    func writeInPlace(_ path: String, _ bytes: [UInt8]) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw ReplayError("cannot open \(path)") }
        defer { close(descriptor) }
        guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ReplayError("short write to \(path)")
        }
    }

    /// `--latest` moves to a run that appears after the file was opened.
    @Test func latestFollowsARunThatAppears() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/monitoring.db"
        let writer = try ReplayWriter(path: path)
        try writer.execute("ATTACH DATABASE '\(Fixtures.htex2026)' AS src")
        let tables = try writer.rows("SELECT name, sql FROM src.sqlite_master WHERE type = 'table' AND sql IS NOT NULL")
        for row in tables { try writer.execute(row[1]!) }
        func appendRun(_ id: String, began: String) throws {
            var sql = "BEGIN;"
            for row in tables {
                let table = row[0]!
                sql += "CREATE TEMP TABLE copy AS SELECT * FROM src.\(table); UPDATE copy SET run_id = '\(id)';"
                if table == "workflow" { sql += "UPDATE copy SET time_began = '\(began)';" }
                if table == "node" { sql += "UPDATE copy SET id = id + (SELECT coalesce(max(id), 0) FROM main.node);" }
                sql += "INSERT INTO main.\(table) SELECT * FROM copy; DROP TABLE copy;"
            }
            try writer.execute(sql + "COMMIT;")
        }
        try appendRun("run-one", began: "2030-01-01 00:00:00")
        var configuration = MetricsCollector.Configuration(path: path)
        configuration.latestRun = true
        let collector = try MetricsCollector(configuration: configuration, options: PrometheusOptions())
        try collector.poll()
        #expect(collector.aggregator.runStates.map(\.runID) == ["run-one"])
        try appendRun("run-two", began: "2030-01-02 00:00:00")
        try collector.poll()
        #expect(collector.aggregator.runStates.map(\.runID) == ["run-two"])
        let tasks = PrometheusMetricsTests.sum(PrometheusMetricsTests.parse(Array(try Self.body(collector, readTime: 0).utf8)), "parsl_tasks")
        #expect(tasks == Double(Oracle.scalar(Fixtures.htex2026, "SELECT count(*) FROM task")))
    }
}
