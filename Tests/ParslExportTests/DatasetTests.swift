#if canImport(Glibc)
import Glibc
#endif
import CParslSQLite
import Foundation
import ParslExport
import Testing

@Suite("Dataset")
struct DatasetTests {
    static let tables = ["block", "node", "resource", "status", "task", "try", "try_summary", "workflow"]

    @Test("partition values are escaped as Hive escapes them, and decode back")
    func hiveEscaping() {
        // Expected strings written from Hive's FileUtils.escapePathName character list.
        #expect(DatasetLayout.escapePartitionValue("1e437788-0aa0-4ea1-b699-5597f67ef52f") == "1e437788-0aa0-4ea1-b699-5597f67ef52f")
        #expect(DatasetLayout.escapePartitionValue("a/b") == "a%2Fb")
        #expect(DatasetLayout.escapePartitionValue("x=1:%?") == "x%3D1%3A%25%3F")
        #expect(DatasetLayout.escapePartitionValue("run 7 é") == "run 7 é")
        #expect(DatasetLayout.escapePartitionValue("tab\there") == "tab%09here")
        #expect(DatasetLayout.escapePartitionValue("#'*\\{[]^\"") == "%23%27%2A%5C%7B%5B%5D%5E%22")
        #expect(DatasetLayout.escapePartitionValue("") == "__HIVE_DEFAULT_PARTITION__")
        for value in ["a/b", "x=1:%?", "run 7 é", "tab\there", "", "%41"] {
            #expect(DatasetLayout.unescapePartitionValue(DatasetLayout.escapePartitionValue(value)) == value)
        }
    }

    @Test("task keys: Parsl's hashsum where recorded, else the rank among the app's tasks")
    func taskKeys() {
        let keys = TaskKeys(tasks: [
            (id: 3, app: "sim", hashsum: nil), (id: 0, app: "sim", hashsum: nil), (id: 1, app: "fit", hashsum: "abc"),
            (id: 2, app: "fit", hashsum: ""), (id: 4, app: nil, hashsum: nil),
        ])
        #expect(keys.key(for: 0) == "app:sim#0")
        #expect(keys.key(for: 3) == "app:sim#1")
        #expect(keys.key(for: 1) == "hashsum:abc")
        #expect(keys.key(for: 2) == "app:fit#1")
        #expect(keys.key(for: 4) == "app:#0")
        #expect(keys.key(for: 9) == nil)
    }

    @Test("one run per partition for every table, with the manifest, _SUCCESS and no staging left")
    func layout() throws {
        let root = temporaryDirectory() + "/dataset"
        defer { removeTree(String(root.dropLast("/dataset".count))) }
        let summary = try DatasetUpdate(options: options(root, [Fixtures.htex2026, Fixtures.threads2026])).run()
        #expect(summary.added.count == 2)
        #expect(summary.updated.isEmpty && summary.skipped == 0)
        let entries = Set(try listDirectory(root))
        #expect(entries == Set(Self.tables + ["_SUCCESS", "_parsl_export_manifest.json", "_parsl_export.lock"]))
        for table in Self.tables {
            let partitions = try listDirectory(root + "/" + table).sorted()
            #expect(partitions == summary.added.map { "run_id=" + $0 }.sorted())
            for partition in partitions {
                #expect(try listDirectory(root + "/" + table + "/" + partition) == ["part-0.parquet"])
            }
        }
        let manifest = try #require(try DatasetManifest.load(path: root + "/_parsl_export_manifest.json"))
        let run = try #require(manifest.runs[summary.added[0]])
        let source = run.source
        let tasks = Oracle.scalar(source, "SELECT count(*) FROM task WHERE run_id = '\(summary.added[0])'")
        #expect(run.rows["task"] == Int(tasks))
        #expect(run.finished && !run.replacing)
    }

    @Test("an unchanged database is not opened again; the same run id in another database is reported and skipped")
    func incrementalAndDuplicates() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let root = directory + "/dataset"
        let copy = directory + "/copy.db"
        try FileManager.default.copyItem(atPath: Fixtures.threads2026, toPath: copy)
        _ = try DatasetUpdate(options: options(root, [Fixtures.threads2026])).run()
        let before = try String(contentsOfFile: root + "/_parsl_export_manifest.json", encoding: .utf8)

        let again = try DatasetUpdate(options: options(root, [Fixtures.threads2026, copy])).run()
        #expect(again.added.isEmpty && again.updated.isEmpty)
        #expect(again.unchangedDatabases == 1)
        #expect(again.duplicates.count == 1)
        #expect(again.duplicates.first?.owner.hasSuffix("parsl-2026.10.26-threads.db") == true)
        #expect(again.duplicates.first?.path.hasSuffix("copy.db") == true)
        #expect(again.skipped == 2)
        let manifest = try #require(try DatasetManifest.load(path: root + "/_parsl_export_manifest.json"))
        #expect(manifest.runs.values.allSatisfy { $0.source.hasSuffix("parsl-2026.10.26-threads.db") })
        #expect(before.contains("parsl-2026.10.26-threads.db"))
    }

    @Test("a held lock fails the second update with a message naming ROOT")
    func lock() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let root = directory + "/dataset"
        mkdir(root, 0o755)
        let descriptor = open(root + "/_parsl_export.lock", O_RDWR | O_CREAT, 0o644)
        defer { close(descriptor) }
        #expect(flock(descriptor, LOCK_EX) == 0)
        let error = #expect(throws: ExportError.self) {
            try DatasetUpdate(options: options(root, [Fixtures.threads2026])).run()
        }
        #expect(error?.code == .outputFailed)
        #expect(error?.message.contains("another parsl-export dataset is updating") == true)
        #expect(try listDirectory(root) == ["_parsl_export.lock"])
    }

    @Test("a failing database leaves the dataset as it was")
    func failureLeavesRootAlone() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let root = directory + "/dataset"
        _ = try DatasetUpdate(options: options(root, [Fixtures.threads2026])).run()
        let before = try treeListing(root)
        let bad = directory + "/bad.db"
        _ = FileManager.default.createFile(atPath: bad, contents: Data("not a database at all".utf8))
        #expect(throws: ExportError.self) {
            try DatasetUpdate(options: options(root, [Fixtures.threads2026, bad])).run()
        }
        #expect(try treeListing(root) == before)
    }

    @Test("an unfinished run that grew is exported again, its partitions replaced whole")
    func unfinishedRunGrows() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let root = directory + "/dataset"
        let database = directory + "/growing.db"
        try FileManager.default.copyItem(atPath: Fixtures.threads2026, toPath: database)
        let fullStatus = Oracle.scalar(database, "SELECT count(*) FROM status")
        try execute(database, "UPDATE workflow SET time_completed = NULL; DELETE FROM status WHERE rowid % 2 = 0")
        let first = try DatasetUpdate(options: options(root, [database])).run()
        #expect(first.added.count == 1)
        let runID = try #require(first.added.first)
        let partition = root + "/status/run_id=" + runID
        let firstInode = inode(partition)

        // Unchanged: the database is not even opened.
        let unchanged = try DatasetUpdate(options: options(root, [database])).run()
        #expect(unchanged.unchangedDatabases == 1 && unchanged.updated.isEmpty)
        #expect(inode(partition) == firstInode)

        try execute(
            database,
            "ATTACH '\(Fixtures.threads2026)' AS full; INSERT OR IGNORE INTO main.status SELECT * FROM full.status; "
                + "UPDATE main.workflow SET time_completed = (SELECT time_completed FROM full.workflow)")
        let grown = try DatasetUpdate(options: options(root, [database])).run()
        #expect(grown.updated == [runID] && grown.added.isEmpty)
        #expect(inode(partition) != firstInode)
        #expect(try listDirectory(partition) == ["part-0.parquet"])
        #expect(try listDirectory(root + "/status") == ["run_id=" + runID])
        let manifest = try #require(try DatasetManifest.load(path: root + "/_parsl_export_manifest.json"))
        #expect(manifest.runs[runID]?.rows["status"] == Int(fullStatus))
        #expect(manifest.runs[runID]?.finished == true)

        // Finished now: a later change to the file does not make it read again.
        try execute(database, "CREATE TABLE unrelated (x)")
        let later = try DatasetUpdate(options: options(root, [database])).run()
        #expect(later.updated.isEmpty && later.skipped == 1 && later.unchangedDatabases == 0)
    }

    private func execute(_ path: String, _ sql: String) throws {
        var db: OpaquePointer?
        #expect(sqlite3_open(path, &db) == SQLITE_OK)
        defer { sqlite3_close_v2(db) }
        #expect(sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK)
    }

    private func inode(_ path: String) -> UInt64 {
        var info = stat()
        stat(path, &info)
        return UInt64(info.st_ino)
    }

    private func options(_ root: String, _ databases: [String]) -> DatasetUpdate.Options {
        DatasetUpdate.Options(root: root, databases: databases, parquet: ParquetSink.Options(directory: root))
    }

    /// Every path under `root` with its size and modification time.
    private func treeListing(_ root: String) throws -> [String: String] {
        var listing: [String: String] = [:]
        for name in try listDirectory(root) {
            let path = root + "/" + name
            var info = stat()
            lstat(path, &info)
            if info.st_mode & S_IFMT == S_IFDIR {
                for (child, value) in try treeListing(path) { listing[name + "/" + child] = value }
            } else {
                listing[name] = "\(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            }
        }
        return listing
    }
}
