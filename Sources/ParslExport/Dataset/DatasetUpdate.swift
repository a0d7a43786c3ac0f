#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Brings a Hive-partitioned Parquet dataset up to date with Parsl monitoring databases: each run of each database
/// becomes `ROOT/<table>/run_id=<run id>/part-0.parquet` for the seven tables and try_summary.
///
/// Incremental: a database whose identity (inode, size, mtime, SQLite change counter, WAL) is unchanged since the
/// last update is not opened; in a changed one, finished runs already exported are skipped, new runs are added and
/// unfinished ones are exported again (Parsl updates task and try rows in place, so only a re-read can tell what
/// changed). Atomic per run: a run's partitions are written in `ROOT/_parsl_export_staging-<pid>/` and each table's
/// `run_id=` directory is swapped in whole. Duplicate rule: a run id belongs to the first database it was exported
/// from (earlier updates first, then the order of the arguments); the same run id in another database is reported
/// with both paths and skipped.
public struct DatasetUpdate {
    public struct Options: Sendable {
        public var root: String
        public var databases: [String]
        public var parquet: ParquetSink.Options
        public var mappingsDirectory: String?
        public var timeZone: String?
        public var batchSize: Int
        public var busyTimeoutMilliseconds: Int32
        /// Wait for another update of the same ROOT instead of failing.
        public var waitForLock: Bool

        public init(
            root: String, databases: [String], parquet: ParquetSink.Options, mappingsDirectory: String? = nil,
            timeZone: String? = nil, batchSize: Int = 8192, busyTimeoutMilliseconds: Int32 = 5_000,
            waitForLock: Bool = false
        ) {
            self.root = root
            self.databases = databases
            self.parquet = parquet
            self.mappingsDirectory = mappingsDirectory
            self.timeZone = timeZone
            self.batchSize = batchSize
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
            self.waitForLock = waitForLock
        }
    }

    /// What the update is doing, for a progress display.
    public enum Step: Sendable {
        case waitingForLock
        case database(index: Int, count: Int, path: String)
        case run(runID: String, index: Int, count: Int)
        case rows(table: String, rows: Int)
    }

    public struct Summary: Sendable {
        public var added: [String] = []
        public var updated: [String] = []
        public var skipped = 0
        /// Databases not opened because they had not changed.
        public var unchangedDatabases = 0
        /// `(run id, this database, the database it was exported from)`.
        public var duplicates: [(runID: String, path: String, owner: String)] = []
        public var filesWritten = 0
        public var warnings: [String] = []

        public var line: String {
            var text = "\(added.count) runs added, \(updated.count) updated, \(skipped) skipped"
            if !duplicates.isEmpty { text += " (\(duplicates.count) duplicate run ids)" }
            return text + "; \(filesWritten) files written"
        }
    }

    public let options: Options
    private let staging: String

    public init(options: Options) {
        self.options = options
        staging = options.root + "/" + DatasetLayout.stagingPrefix + String(getpid())
    }

    /// Deletes this process's staging directory: for an interrupt handler, the rest of ROOT being untouched.
    public func removeStaging() { DatasetFiles.removeTree(staging) }

    public func run(progress: ((Step) -> Void)? = nil) throws -> Summary {
        let rootExisted = access(options.root, F_OK) == 0
        do {
            return try update(progress: progress)
        } catch {
            // A first update that fails leaves no dataset behind: its new ROOT holds nothing but the lock file.
            if !rootExisted && DatasetFiles.entries(of: options.root) == [DatasetLayout.lockName] {
                unlink(options.root + "/" + DatasetLayout.lockName)
                rmdir(options.root)
            }
            throw error
        }
    }

    private func update(progress: ((Step) -> Void)?) throws -> Summary {
        let root = options.root
        try OutputDirectory.create(root)
        let lock = try DatasetFiles.lock(root: root, wait: options.waitForLock) { progress?(.waitingForLock) }
        defer { DatasetFiles.unlock(lock) }
        // Staging left by an update that was killed: nobody else can be using it while we hold the lock.
        for name in DatasetFiles.entries(of: root) where name.hasPrefix(DatasetLayout.stagingPrefix) {
            DatasetFiles.removeTree(root + "/" + name)
        }
        defer { DatasetFiles.removeTree(staging) }

        let catalog = try ExportPipeline.catalog(mappingsDirectory: options.mappingsDirectory)
        let manifestPath = root + "/" + DatasetLayout.manifestName
        let loaded = try DatasetManifest.load(path: manifestPath)
        var manifest = loaded ?? DatasetManifest(mappingVersion: catalog.version, timeZone: options.timeZone)
        guard manifest.timeZone == options.timeZone else {
            throw ExportError(
                .usage,
                "\(manifestPath): the dataset's timestamps are \(manifest.timeZone.map { "UTC converted from \($0)" } ?? "naive"); run with \(manifest.timeZone.map { "--timezone \($0)" } ?? "no --timezone") to keep every run alike")
        }
        let schema = DatasetSchema(catalog: catalog)
        var summary = Summary()
        let paths = Self.distinct(options.databases)
        for (index, path) in paths.enumerated() {
            progress?(.database(index: index + 1, count: paths.count, path: path))
            try update(
                database: path, manifest: &manifest, manifestPath: manifestPath, schema: schema, summary: &summary,
                progress: progress)
        }
        // Rewritten only when something changed: an update that found nothing new touches only _SUCCESS.
        if manifest != loaded { try manifest.save(path: manifestPath) }
        let success = try AtomicFile(path: root + "/" + DatasetLayout.successName)
        try success.commit()
        DatasetFiles.syncDirectory(root)
        return summary
    }

    /// Each path once, by its real path (the manifest keys sources by it), in the order given.
    static func distinct(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        var result: [String] = []
        for path in paths {
            let real = realPath(path)
            if seen.insert(real).inserted { result.append(real) }
        }
        return result
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private func update(
        database path: String, manifest: inout DatasetManifest, manifestPath: String, schema: DatasetSchema,
        summary: inout Summary, progress: ((Step) -> Void)?
    ) throws {
        let identity = DatabaseIdentity.of(path: path)
        let known = manifest.sources[path]
        let interrupted = known?.runIDs.contains { manifest.runs[$0]?.replacing == true } ?? false
        if let known, let identity, known.identity == identity, !interrupted {
            summary.skipped += known.runIDs.count
            summary.unchangedDatabases += 1
            return
        }
        let request = ExportRequest(
            databasePath: path, mappingsDirectory: options.mappingsDirectory, timeZone: options.timeZone,
            batchSize: options.batchSize, busyTimeoutMilliseconds: options.busyTimeoutMilliseconds)
        let database = try ExportPipeline(request: request).openDatabase()
        let runs = try database.runs()

        var toExport: [WorkflowRun] = []
        for run in runs {
            if let entry = manifest.runs[run.runID] {
                if entry.source != path {
                    summary.duplicates.append((run.runID, path, entry.source))
                    summary.skipped += 1
                } else if entry.finished && !entry.replacing {
                    summary.skipped += 1
                } else {
                    toExport.append(run)
                }
            } else {
                toExport.append(run)
            }
        }

        // Stage every run of this database, then swap them in together.
        var staged: [(run: WorkflowRun, rows: [String: Int], tree: String)] = []
        for (index, run) in toExport.enumerated() {
            progress?(.run(runID: run.runID, index: index + 1, count: toExport.count))
            let tree = staging + "/run-\(index)"
            let rows = try stage(
                run: run, database: database, request: request, schema: schema, tree: tree, progress: progress)
            staged.append((run, rows, tree))
        }

        let now = Date.now.formatted(.iso8601)
        for (run, rows, _) in staged {
            let isNew = manifest.runs[run.runID] == nil
            if isNew { summary.added.append(run.runID) } else { summary.updated.append(run.runID) }
            manifest.runs[run.runID] = DatasetManifest.Run(
                source: path, workflowName: run.workflowName, finished: !run.isUnfinished, replacing: true,
                rows: rows, exportedAt: now)
        }
        if !staged.isEmpty { try manifest.save(path: manifestPath) }
        for (run, _, tree) in staged {
            try swapIn(runID: run.runID, tree: tree)
            summary.filesWritten += schema.tables.count
            manifest.runs[run.runID]?.replacing = false
        }
        let owned = runs.map(\.runID).filter { manifest.runs[$0]?.source == path }
        if let identity {
            manifest.sources[path] = DatasetManifest.Source(
                identity: identity, firstRunID: runs.first?.runID, runIDs: owned)
        }
        try manifest.save(path: manifestPath)
    }

    /// Exports one run through the Parquet sink into `tree/flat/<table>.parquet`, then arranges the files as
    /// `tree/<table>/run_id=<id>/part-0.parquet`. Returns the rows read per table.
    private func stage(
        run: WorkflowRun, database: MonitoringDatabase, request: ExportRequest, schema: DatasetSchema, tree: String,
        progress: ((Step) -> Void)?
    ) throws -> [String: Int] {
        let flat = tree + "/flat"
        var parquet = options.parquet
        parquet.directory = flat
        let tables = Set(schema.tables.keys)
        let sink = DatasetSchemaSink(
            inner: ParquetSink(options: parquet, tables: tables), schema: schema,
            taskKeys: try TaskKeys.read(from: database, runID: run.runID))
        var runRequest = request
        // A full run id is its own unique prefix: run ids are UUIDs of one length.
        runRequest.runPrefixes = [run.runID]
        let result = try ExportPipeline(request: runRequest).run(into: sink) { table, rows in
            progress?(.rows(table: table, rows: rows))
        }
        let partition = DatasetLayout.partitionDirectory(runID: run.runID)
        for table in tables.sorted() {
            let directory = tree + "/" + table
            try DatasetFiles.makeDirectory(directory)
            try DatasetFiles.makeDirectory(directory + "/" + partition)
            try DatasetFiles.rename(flat + "/" + table + ".parquet", directory + "/" + partition + "/" + DatasetLayout.partFileName)
        }
        var rows = result.rowsRead
        for table in tables where rows[table] == nil { rows[table] = 0 }
        return rows
    }

    /// Swaps each table's staged `run_id=` directory into ROOT, then deletes what it replaced.
    private func swapIn(runID: String, tree: String) throws {
        let partition = DatasetLayout.partitionDirectory(runID: runID)
        for table in DatasetFiles.entries(of: tree).sorted() where table != "flat" {
            let tableDirectory = options.root + "/" + table
            try DatasetFiles.makeDirectory(tableDirectory)
            let staged = tree + "/" + table + "/" + partition
            try DatasetFiles.swapIntoPlace(staged: staged, target: tableDirectory + "/" + partition)
            DatasetFiles.syncDirectory(tableDirectory)
        }
        DatasetFiles.removeTree(tree)
    }
}
