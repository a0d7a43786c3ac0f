import CParslSQLite
@testable import ParslExport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every kind of bad input gets an `ExportError` with its documented code, naming the file; never a crash.
@Suite("Bad input")
struct BadInputTests {
    func export(_ path: String, busyTimeout: Int32 = 5_000) throws {
        let sink = MemorySink(demand: SinkDemand(tables: ["task", "status", "try_summary"]))
        _ = try ExportPipeline(request: ExportRequest(databasePath: path, busyTimeoutMilliseconds: busyTimeout)).run(into: sink)
    }

    func expectFailure(_ path: String, _ code: ExportError.Code, busyTimeout: Int32 = 5_000) {
        do {
            try export(path, busyTimeout: busyTimeout)
            Issue.record("\(path) was accepted")
        } catch let error as ExportError {
            #expect(error.code == code, "\(error.message)")
            #expect(error.message.hasPrefix(path), "\(error.message)")
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }

    @Test func missingPath() {
        expectFailure(temporaryDirectory() + "/nope.db", .inputMissing)
    }

    @Test func directory() {
        expectFailure(temporaryDirectory(), .inputMissing)
    }

    @Test func emptyFile() throws {
        let path = temporaryDirectory() + "/empty.db"
        try writeFile(path, [])
        expectFailure(path, .inputInvalid)
    }

    @Test func notSQLite() throws {
        let path = temporaryDirectory() + "/random.db"
        var generator = SystemRandomNumberGenerator()
        try writeFile(path, (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) })
        expectFailure(path, .inputInvalid)
    }

    @Test("a real database truncated at several offsets", arguments: [100, 4096, 50_000, 300_000, 600_000])
    func truncated(length: Int) throws {
        let path = temporaryDirectory() + "/truncated.db"
        let bytes = try readFile(Fixtures.htex2026)
        try writeFile(path, Array(bytes.prefix(length)))
        do {
            try export(path)
            // A cut that only loses pages no query reaches still reads; that must then be a full, clean read.
        } catch let error as ExportError {
            #expect(error.code == .inputInvalid, "\(error.message)")
            #expect(error.message.hasPrefix(path))
        }
    }

    /// The run list is read before any table is exported (for `--run`, `--latest`, and whether a run is still being
    /// written); damage there is an error about the file too.
    @Test func damagedWorkflowTable() throws {
        let path = temporaryDirectory() + "/damaged-workflow.db"
        var bytes = try readFile(Fixtures.htex2026)
        let connection = try SQLiteConnection(path: Fixtures.htex2026)
        let root = try connection.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'workflow'")
        #expect(try root.step())
        let pageSize = 4096  // the fixture's, as its header says
        #expect(bytes[16] == 0x10 && bytes[17] == 0)
        let page = (Int(root.int64(0)) - 1) * pageSize
        bytes.replaceSubrange(page..<page + 8, with: [0x0d] + [UInt8](repeating: 0xff, count: 7))
        try writeFile(path, bytes)
        let database = try MonitoringDatabase(path: path, catalog: MappingCatalog.embedded())
        do {
            _ = try database.runs()
            Issue.record("a damaged workflow table was read")
        } catch let error as ExportError {
            #expect(error.code == .inputInvalid, "\(error.message)")
            #expect(error.message.hasPrefix(path), "\(error.message)")
        }
        expectFailure(path, .inputInvalid)
    }

    /// Text from the database reaches the terminal in errors, warnings and `inspect`: control characters, line
    /// separators and bidirectional overrides in it are escaped, so it can neither break the line nor drive the
    /// terminal.
    @Test func textFromTheDatabaseIsPrintable() throws {
        let hostile = "a\u{1b}]0;title\u{7}b\u{9b}2Jc\u{2028}d\u{202e}e\u{85}f\ng\u{7f}"
        func isSafe(_ text: String) -> Bool { !text.unicodeScalars.contains { needsEscape($0) } }
        #expect(isSafe(ExportError(.inputInvalid, hostile).message))
        #expect(ExportError(.inputInvalid, hostile).message == #"a\u{1b}]0;title\u{7}b\u{9b}2Jc\u{2028}d\u{202e}e\u{85}f\ng\u{7f}"#)
        #expect(quoted(hostile).hasPrefix(#""a\u{1b}]0;"#))
        #expect(isSafe(quoted(hostile)))
        #expect(printable("plain é 漢字 🙂") == "plain é 漢字 🙂")

        let path = temporaryDirectory() + "/hostile-names.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        try execute(path, "UPDATE workflow SET workflow_name = '\(hostile)', run_id = run_id || char(27) || '[31m'")
        let report = try Inspection.inspect(ExportRequest(databasePath: path)).report()
        #expect(report.split(separator: "\n").allSatisfy { isSafe(String($0)) })
        #expect(report.contains(#"a\u{1b}]0;title"#))
    }

    @Test func sqliteWithoutParslTables() throws {
        let path = temporaryDirectory() + "/other.db"
        try execute(path, "CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        expectFailure(path, .inputInvalid)
    }

    @Test func lockedByAWriter() throws {
        let path = temporaryDirectory() + "/locked.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        var db: OpaquePointer?
        sqlite3_open(path, &db)
        defer { sqlite3_close(db) }
        #expect(sqlite3_exec(db, "BEGIN EXCLUSIVE; INSERT INTO workflow(run_id, time_began, host, user, rundir, tasks_failed_count, tasks_completed_count) VALUES ('x', '2026-01-01 00:00:00.000000', 'h', 'u', 'r', 0, 0);", nil, nil, nil) == SQLITE_OK)
        expectFailure(path, .inputLocked, busyTimeout: 50)
        sqlite3_exec(db, "ROLLBACK", nil, nil, nil)
    }

    @Test("a missing Parsl table reads as empty, not as an error")
    func missingTables() throws {
        let path = temporaryDirectory() + "/partial.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        try execute(path, "DROP TABLE try; DROP TABLE resource; DROP TABLE block;")
        let sink = MemorySink(demand: SinkDemand(tables: ["task", "try", "resource", "try_summary"]))
        _ = try ExportPipeline(request: ExportRequest(databasePath: path)).run(into: sink)
        #expect(sink.rowCount(of: "task") == 257)
        #expect(sink.rowCount(of: "try") == 0)
        #expect(sink.rowCount(of: "try_summary") == 0)
    }

    @Test("values that do not fit their type become NULL and are counted, the export goes on")
    func badValues() throws {
        let path = temporaryDirectory() + "/values.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        try execute(
            path,
            """
            UPDATE status SET timestamp = 'yesterday' WHERE rowid IN (1, 2, 3);
            UPDATE task SET task_fail_count = 'many' WHERE task_id = 5;
            UPDATE task SET task_func_name = CAST(x'61ff62' AS TEXT) WHERE task_id = 6;
            """
        )
        let request = ExportRequest(databasePath: path)
        let sink = MemorySink(demand: SinkDemand(tables: ["task", "status"]))
        let summary = try ExportPipeline(request: request).run(into: sink)
        let byColumn = Dictionary(grouping: summary.warnings.all, by: { "\($0.table).\($0.column)" })
        #expect(byColumn["status.timestamp"]?.first?.count == 3)
        #expect(byColumn["status.timestamp"]?.first?.firstExample == "yesterday")
        #expect(byColumn["task.task_fail_count"]?.first?.count == 1)
        #expect(byColumn["task.task_func_name"]?.first?.count == 1)
        #expect(sink.rowCount(of: "status") == 1391)
        let before = try readFile(Fixtures.htex2026).count
        #expect(before > 0)
    }
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw TestFailure("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let file = fopen(path, "wb") else { throw TestFailure("cannot create \(path)") }
    defer { fclose(file) }
    if !bytes.isEmpty { fwrite(bytes, 1, bytes.count, file) }
}

func execute(_ path: String, _ sql: String) throws {
    var db: OpaquePointer?
    sqlite3_open(path, &db)
    defer { sqlite3_close(db) }
    var message: UnsafeMutablePointer<CChar>?
    guard sqlite3_exec(db, sql, nil, nil, &message) == SQLITE_OK else {
        throw TestFailure(message.map { String(cString: $0) } ?? "sqlite error")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("Bad values in Parquet")
struct ParquetBadValueTests {
    @Test("a NOT NULL column holding an unreadable value is written as nullable, and the export completes")
    func relaxesTheColumn() throws {
        let path = temporaryDirectory() + "/values.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        try execute(path, "UPDATE task SET task_fail_count = 'many' WHERE task_id = 5;")
        let out = temporaryDirectory() + "/parquet"
        let sink = ParquetSink(options: ParquetSink.Options(directory: out), tables: ["task", "workflow"])
        let summary = try ExportPipeline(request: ExportRequest(databasePath: path, batchSize: 50)).run(into: sink)
        #expect(summary.files.sorted() == [out + "/task.parquet", out + "/workflow.parquet"])
        let bytes = try readFile(out + "/task.parquet")
        #expect(Array(bytes.suffix(4)) == Array("PAR1".utf8))
        #expect(summary.warnings.total == 1)
        #expect(try listDirectory(out).sorted() == ["task.parquet", "workflow.parquet"])
    }
}
