import Testing

@testable import ParslExport

/// Reads split into short read transactions (rowid windows and ranges sized by time) still read every row once.
@Suite struct LockBudgetTests {
    /// The fixture's rows three times over, under three run ids, so that the middle run's rows sit between others.
    static func threeRuns(in directory: String) throws -> (path: String, runs: [String]) {
        let path = directory + "/runs.db"
        let writer = try ReplayWriter(path: path)
        try writer.execute("ATTACH DATABASE '\(Fixtures.htex2026)' AS src")
        let tables = try writer.rows("SELECT name, sql FROM src.sqlite_master WHERE type = 'table' AND sql IS NOT NULL")
        for row in tables { try writer.execute(row[1]!) }
        let runs = ["run-a", "run-b", "run-c"]
        for run in runs {
            var sql = "BEGIN;"
            for row in tables {
                let table = row[0]!
                sql += "CREATE TEMP TABLE copy AS SELECT * FROM src.\(table); UPDATE copy SET run_id = '\(run)';"
                if table == "node" { sql += "UPDATE copy SET id = id + (SELECT coalesce(max(id), 0) FROM main.node);" }
                sql += "INSERT INTO main.\(table) SELECT * FROM copy; DROP TABLE copy;"
            }
            try writer.execute(sql + "COMMIT;")
        }
        return (path, runs)
    }

    @Test func aRunFilteredReadInTheSmallestWindowsReadsEachRowOfTheRunOnce() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let (path, runs) = try Self.threeRuns(in: directory)
        let database = try MonitoringDatabase(path: path, catalog: ExportPipeline.catalog(mappingsDirectory: nil))
        for table in ["status", "try_summary"] {
            let snapshot = try database.countedSnapshot(of: table, runIDs: [runs[1]])
            // A budget of 1 µs: every batch and every window ends as soon as it may, the window at its floor.
            let options = ReadOptions(batchSize: 64, runIDs: [runs[1]], maximumLockMicros: 1)
            var seen: [String: Int] = [:]
            var rows = 0
            try database.read(table: table, snapshot: snapshot, options: options, warnings: ValueWarnings()) { batch in
                rows += batch.rowCount
                let run = batch.column("run_id")!
                for index in 0..<batch.rowCount { seen[run.string(at: index) ?? "", default: 0] += 1 }
            }
            let source = MonitoringDatabase.sourceTable(table)
            let expected = Int(Oracle.scalar(Fixtures.htex2026, "SELECT count(*) FROM \"\(source)\""))
            #expect(rows == expected, "\(table)")
            #expect(seen == [runs[1]: expected], "\(table)")
        }
    }

    @Test func inspectCountsEachRunsTasksInRanges() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let (path, runs) = try Self.threeRuns(in: directory)
        let inspection = try Inspection.inspect(ExportRequest(databasePath: path))
        let tasks = Oracle.scalar(Fixtures.htex2026, "SELECT count(*) FROM task")
        #expect(inspection.runTaskCounts == Dictionary(uniqueKeysWithValues: runs.map { ($0, tasks) }))
    }
}
