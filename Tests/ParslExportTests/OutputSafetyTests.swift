import Testing

@testable import ParslExport

#if canImport(Glibc)
    import Glibc
#endif

/// Every file under `directory`: relative path → inode and bytes (a file put back keeps its inode).
private func contents(of directory: String, under prefix: String = "") throws -> [String: (inode: UInt64, bytes: [UInt8])] {
    var found: [String: (inode: UInt64, bytes: [UInt8])] = [:]
    for name in (try? listDirectory(directory)) ?? [] {
        let path = directory + "/" + name
        var info = stat()
        guard lstat(path, &info) == 0 else { continue }
        if info.st_mode & S_IFMT == S_IFDIR {
            found.merge(try contents(of: path, under: prefix + name + "/")) { $1 }
        } else {
            found[prefix + name] = (UInt64(info.st_ino), try readFile(path))
        }
    }
    return found
}

/// Every format into `directory`, as `all` writes them.
private func exportEverything(_ database: String, into directory: String, runs: [String] = []) throws {
    let tables = Set(try MappingCatalog.embedded().tableNames)
    let sinks: [any ExportSink] = [
        CSVSink(options: CSVSink.Options(directory: directory + "/csv"), tables: tables),
        ParquetSink(options: ParquetSink.Options(directory: directory + "/parquet"), tables: tables),
        TraceSink(options: TraceSink.Options(output: directory + "/trace", outputIsDirectory: true, maxEvents: 0)),
        PrometheusSink(path: directory + "/parsl.prom", options: PrometheusOptions()),
    ]
    let request = ExportRequest(databasePath: database, runPrefixes: runs, parallelTables: false)
    _ = try ExportPipeline(request: request).run(into: MultiplexSink(sinks))
}

// Serialized: the tests share the process's temporary-file registry and its test hook.
@Suite("Outputs are never lost", .serialized)
struct OutputSafetyTests {
    @Test("a rename that fails at commit puts back every file the export had already replaced")
    func failedCommitKeepsThePreviousExport() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        try exportEverything(Fixtures.htex2026, into: directory)
        let before = try contents(of: directory)
        #expect(before.count >= 17)

        // The Parquet sink commits after the CSV one: its try file failing comes after eight CSV files were
        // renamed over the previous ones.
        // The whole path: other suites export at the same time, into directories of their own.
        TemporaryFiles.shared.renameFailsForTesting.withLock { $0 = directory + "/parquet/try.parquet" }
        defer { TemporaryFiles.shared.renameFailsForTesting.withLock { $0 = nil } }
        let error = #expect(throws: ExportError.self) { try exportEverything(Fixtures.htex2026, into: directory) }
        #expect(error?.code == .outputFailed)
        #expect(error?.message.contains("try.parquet") == true)

        let after = try contents(of: directory)
        #expect(after.keys.sorted() == before.keys.sorted())
        for (name, file) in before {
            #expect(after[name]?.inode == file.inode && after[name]?.bytes == file.bytes, "\(name) is not the previous file")
        }
    }

    @Test("a failed commit into an empty directory leaves nothing")
    func failedFirstCommitLeavesNothing() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        TemporaryFiles.shared.renameFailsForTesting.withLock { $0 = directory + "/parsl.prom" }
        defer { TemporaryFiles.shared.renameFailsForTesting.withLock { $0 = nil } }
        #expect(throws: ExportError.self) { try exportEverything(Fixtures.htex2026, into: directory) }
        // No file at all (the empty directories it made are the CLI's to remove, after the failure).
        #expect(try contents(of: directory).isEmpty)
    }

    @Test("temporary files are made exclusively, with unpredictable names that say which process made them")
    func temporaryNames() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let first = try AtomicFile(path: directory + "/out.prom")
        let second = try AtomicFile(path: directory + "/out.prom")
        defer {
            first.discard()
            second.discard()
        }
        #expect(first.temporaryPath != second.temporaryPath)
        let name = String(first.temporaryPath.split(separator: "/").last!)
        #expect(name.hasPrefix(".parsl-export-\(getpid())@"))
        #expect(name.hasSuffix(".tmp"))
        // Created with O_EXCL | O_NOFOLLOW: a link planted under the next name is never written through.
        #expect(TemporaryFiles.shared.createFile(in: "/nonexistent-directory").1 < 0)
    }

    @Test("an export removes the temporary files a killed process of this host left, and no one else's")
    func staleTemporaryFilesAreRemoved() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        // A pid that is not running: a child that has exited and been reaped.
        let child = fork()
        if child == 0 { _exit(0) }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        let host = TemporaryFiles.owner.split(separator: "@", maxSplits: 1)[1]
        let stale = directory + "/.parsl-export-\(child)@\(host)-1234abcd.tmp"
        let live = directory + "/.parsl-export-1@\(host)-1234abcd.tmp"  // pid 1 is always running
        let elsewhere = directory + "/.parsl-export-\(child)@another-host-1234abcd.tmp"
        let unrelated = directory + "/.parsl-export-notes.txt"
        for path in [stale, live, elsewhere, unrelated] { try writeFile(path, [0x78]) }
        let file = try AtomicFile(path: directory + "/parsl.prom")
        try file.write(Array("up 1\n".utf8))
        try file.commit()
        #expect(access(stale, F_OK) != 0)
        for path in [live, elsewhere, unrelated] { #expect(access(path, F_OK) == 0, "\(path) removed") }
    }

    @Test("a symbolic link, FIFO or directory as the output is refused, not renamed over")
    func nonRegularTargetsAreRefused() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let target = directory + "/target"
        try writeFile(target, Array("keep".utf8))
        symlink(target, directory + "/link.prom")
        mkfifo(directory + "/fifo.prom", 0o600)
        mkdir(directory + "/dir.prom", 0o755)
        for name in ["link.prom", "fifo.prom", "dir.prom"] {
            let error = #expect(throws: ExportError.self) { _ = try AtomicFile(path: directory + "/" + name) }
            #expect(error?.code == .outputFailed)
        }
        #expect(try readFile(target) == Array("keep".utf8))
    }

    @Test("the source database and its companion files are never an output, whatever name reaches them")
    func sourceIsProtected() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let database = directory + "/monitoring.db"
        try writeFile(database, Array("db".utf8))
        try writeFile(database + "-wal", Array("wal".utf8))
        link(database, directory + "/hardlink.prom")
        symlink(directory, directory + "/via")
        ProtectedFiles.shared.protect(database: database)
        for path in [database, database + "-wal", database + "-journal", directory + "/hardlink.prom", directory + "/via/monitoring.db"] {
            let error = #expect(throws: ExportError.self) { _ = try AtomicFile(path: path) }
            #expect(error?.code == .usage, "\(path)")
        }
        #expect(try readFile(database) == Array("db".utf8))
    }

    @Test("a database renamed over during an export makes the next connection fail, not read the other file")
    func replacedSourceIsNoticed() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/monitoring.db"
        let copy = directory + "/other.db"
        let bytes = try readFile(Fixtures.htex2026)
        for target in [path, copy] { try writeFile(target, bytes) }
        let database = try MonitoringDatabase(path: path, catalog: try MappingCatalog.embedded())
        _ = try database.openConnection()
        rename(copy, path)
        let error = #expect(throws: ExportError.self) { _ = try database.openConnection() }
        #expect(error?.code == .inputLocked)
        #expect(error?.message.contains("replaced") == true)
    }

    @Test("the row count that checks a read is complete stops at the snapshot and agrees with SQLite")
    func countUpToHighWater() throws {
        let database = try MonitoringDatabase(path: Fixtures.htex2026, catalog: try MappingCatalog.embedded())
        let last = Oracle.scalar(Fixtures.htex2026, "SELECT max(rowid) FROM status")
        for highWater in [last, last / 2, 1] {
            let expected = Oracle.scalar(Fixtures.htex2026, "SELECT count(*) FROM status WHERE rowid <= \(highWater)")
            #expect(try database.rowCount(of: "status", upTo: highWater, runIDs: nil) == expected)
        }
        let run = try database.runs()[0].runID
        let ofRun = Oracle.scalar(Fixtures.htex2026, "SELECT count(*) FROM status WHERE run_id = '\(run)'")
        #expect(try database.rowCount(of: "status", upTo: last, runIDs: [run]) == ofRun)
    }
}
