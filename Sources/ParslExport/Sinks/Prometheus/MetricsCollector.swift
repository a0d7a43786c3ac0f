#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a monitoring database into a ``MetricsAggregator`` incrementally: each ``poll(final:)`` takes the tables'
/// last rowids in one short read transaction, then reads only the rows past the previous poll's marks, in batches
/// that are each one short SELECT (its own read transaction), so Parsl's writer waits milliseconds at most.
///
/// Parsl inserts into status, task, block, node and resource and never deletes, so rowid high-water marks see
/// every row once; the workflow table (a few rows, updated in place at completion) is re-read whole each poll.
/// Not thread-safe: use it from one thread.
public final class MetricsCollector {
    public struct Configuration: Sendable {
        public var path: String
        public var immutable = false
        public var runPrefixes: [String] = []
        public var latestRun = false
        /// Exact run ids to keep (in addition to the prefixes); nil keeps every run.
        public var runIDs: Set<String>? = nil
        public var timeZone: String? = nil
        public var batchSize = 8192
        public var busyTimeoutMilliseconds: Int32 = 1_000
        /// Where values that cannot be read are counted (the export's, so they are reported like every sink's).
        public var warnings: ValueWarnings? = nil
        /// The file an export opened: reading another one under its name (renamed over) is an error. Nil follows
        /// whatever file the path names, reading a new one from the start (`serve`).
        var sourceIdentity: FileIdentity? = nil

        public init(path: String) { self.path = path }

        /// The reading settings of an export request: the one place they are copied from.
        public init(request: ExportRequest) {
            path = request.databasePath
            immutable = request.immutable
            runPrefixes = request.runPrefixes
            latestRun = request.latestRun
            timeZone = request.timeZone
            batchSize = request.batchSize
            busyTimeoutMilliseconds = request.busyTimeoutMilliseconds
        }

        /// Reads what an export reads: its database with its settings, its runs, its clock, its warnings.
        public init(context: ExportContext) {
            if let request = context.request { self.init(request: request) } else { self.init(path: context.databasePath) }
            path = context.databasePath
            runPrefixes = []
            latestRun = false
            runIDs = Set(context.runs.map(\.runID))
            timeZone = context.timeZone
            warnings = context.warnings
            sourceIdentity = context.sourceIdentity
        }
    }

    public let configuration: Configuration
    public private(set) var aggregator: MetricsAggregator
    public private(set) var status = ExporterStatus()
    /// The values read from the file before it was replaced, kept until the new one has been read once.
    private var lastGood: (aggregator: MetricsAggregator, rowsRead: [String: Int])?
    private let options: PrometheusOptions

    private var database: MonitoringDatabase?
    private var identity: FileIdentity?
    private var lastSize: Int64 = 0
    private var marks: [String: Int64] = [:]
    private var selectedRuns: Set<String>?
    private var fingerprint: DatabaseFingerprint?
    private var statements: [String: SQLiteStatement] = [:]
    private let zone: TimeZoneConversion?
    /// The table being read, for warnings.
    private var currentTable = ""

    public init(configuration: Configuration, options: PrometheusOptions) throws {
        self.configuration = configuration
        aggregator = MetricsAggregator(options: options)
        self.options = options
        // Epoch-second metrics need a zone for naive timestamps: the host's unless the export names one.
        zone = try PrometheusOptions.naiveTimestampZone(given: configuration.timeZone).map { try TimeZoneConversion(identifier: $0) }
        status.initialReadDone = false
    }

    /// What to show: the values read, or, while a file that replaced the one read cannot be read, the last good
    /// values of the one before (`status.databaseUp` is then false).
    public var published: (aggregator: MetricsAggregator, status: ExporterStatus) {
        guard let lastGood else { return (aggregator, status) }
        var shown = status
        shown.rowsRead = lastGood.rowsRead
        shown.initialReadDone = true
        return (lastGood.aggregator, shown)
    }

    /// Reads what is new. On failure the aggregator keeps its values, `status.databaseUp` turns 0, and the next
    /// poll starts by reopening the file. A file replaced by another (new inode, or smaller) is read from scratch,
    /// or, when the configuration names the file to read (`sourceIdentity`), is an error.
    @discardableResult
    public func poll(final: Bool = false) throws -> Int {
        do {
            let rows = try readNewRows(final: final)
            status.databaseUp = true
            status.initialReadDone = true
            lastGood = nil
            return rows
        } catch {
            status.databaseUp = false
            status.readErrors += 1
            close()
            throw error
        }
    }

    private func close() {
        statements = [:]
        database = nil
    }

    private func readNewRows(final: Bool) throws -> Int {
        var info = stat()
        guard stat(configuration.path, &info) == 0 else {
            throw ExportError(.inputMissing, "\(configuration.path): \(String(cString: strerror(errno)))")
        }
        let current = FileIdentity(info)
        if let expected = configuration.sourceIdentity, current != expected {
            throw FileIdentity.replacedError(configuration.path)
        }
        if let identity, identity != current || Int64(info.st_size) < lastSize {
            // Another file now has this name: start over rather than mix two databases.
            startOver()
        }
        identity = current
        lastSize = Int64(info.st_size)
        if database == nil {
            let opened = try MonitoringDatabase(
                path: configuration.path, immutable: configuration.immutable,
                catalog: ExportPipeline.catalog(mappingsDirectory: nil),
                busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
            // The name may have moved to another file between the stat above and the open.
            guard opened.identity == current else { throw FileIdentity.replacedError(configuration.path) }
            try opened.checkSameFile()
            selectedRuns = try select(opened, final: final)
            database = opened
        } else if configuration.latestRun, let database, let latest = try? select(database, final: final),
            latest != selectedRuns
        {
            // --latest follows the newest run: another one became the latest, so read from the start for it.
            aggregator.reset()
            marks = [:]
            status.rowsRead = [:]
            selectedRuns = latest
        }
        let database = database!
        let rowsRead = try database.guarded { () throws -> Int? in
            let (newMarks, newFingerprint) = try database.connection.read { () throws -> ([String: Int64], DatabaseFingerprint) in
                var result: [String: Int64] = [:]
                for table in ExporterStatus.tables where database.schema.tables[table] != nil {
                    let statement = try statement("SELECT max(rowid) FROM \(quoteIdentifier(table))")
                    defer { statement.reset() }
                    result[table] = try statement.step() && !statement.isNull(0) ? statement.int64(0) : 0
                }
                return (result, try DatabaseFingerprint(prepare: statement))
            }
            defer {
                // Parsl was still creating its tables when the file was opened: reopen to see the new ones.
                if let fingerprint, newFingerprint.schema.count > fingerprint.schema.count { close() }
                fingerprint = newFingerprint
            }
            // Rows vanished (Parsl never deletes) or other content: the file was rewritten in place.
            if newMarks.contains(where: { $0.value < (marks[$0.key] ?? 0) })
                || fingerprint.map(newFingerprint.replaces) == true
            {
                return nil
            }
            var rows = try readWorkflow(database)
            for table in ["task", "status", "block", "node", "resource"] {
                guard let mark = newMarks[table], mark > (marks[table] ?? 0) else { continue }
                rows += try read(table, database, after: marks[table] ?? 0, upTo: mark)
            }
            try resolveAwaitedHosts()
            try aggregator.endPoll(final: final)
            return rows
        }
        guard let rowsRead else {
            startOver()
            return try readNewRows(final: final)
        }
        return rowsRead
    }

    /// Forgets the file: the next read opens it again and reads every row. The values read so far stay on show
    /// (`published`) until that read succeeds.
    private func startOver() {
        close()
        if lastGood == nil, status.initialReadDone { lastGood = (aggregator, status.rowsRead) }
        aggregator = MetricsAggregator(options: options)
        marks = [:]
        fingerprint = nil
        status.rowsRead = [:]
        status.initialReadDone = false
        status.databaseReplacements += 1
    }

    /// The runs to read: `--run` prefixes, `--latest` (while following a file, none until its first run), exact ids.
    private func select(_ database: MonitoringDatabase, final: Bool) throws -> Set<String>? {
        if configuration.latestRun, !final, try database.runs().isEmpty { return [] }
        var selected = try database.selectRuns(prefixes: configuration.runPrefixes, latest: configuration.latestRun)
            .map(Set.init)
        if let exact = configuration.runIDs { selected = selected.map { $0.intersection(exact) } ?? exact }
        return selected
    }

    /// Parsl fills in a try's hostname after writing its first resource samples; look up the tries still waiting.
    private func resolveAwaitedHosts() throws {
        let awaiting = aggregator.triesAwaitingHost
        guard !awaiting.isEmpty else { return }
        let block = database?.schema.has("try", "block_id") == true ? "block_id" : "NULL"
        let s = try statement("SELECT hostname, \(block) FROM try WHERE run_id = ?1 AND task_id = ?2 AND try_id = ?3")
        for (runID, taskID, tryID) in awaiting {
            s.reset()
            s.bind(1, runID)
            s.bind(2, taskID)
            s.bind(3, tryID)
            if try s.step(), let host = s.string(0) {
                aggregator.resolveHost(runID: runID, taskID: taskID, tryID: tryID, host: host, block: s.string(1))
            }
        }
        s.reset()
    }

    private func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] { return cached }
        let prepared = try database!.connection.prepare(sql)
        statements[sql] = prepared
        return prepared
    }

    private func selected(_ runID: String) -> Bool { selectedRuns?.contains(runID) ?? true }

    // MARK: Tables

    private func readWorkflow(_ database: MonitoringDatabase) throws -> Int {
        guard database.schema.tables["workflow"] != nil else { return 0 }
        currentTable = "workflow"
        let schema = database.schema
        func column(_ name: String) -> String { schema.has("workflow", name) ? quoteIdentifier(name) : "NULL" }
        let s = try statement(
            "SELECT run_id, \(column("workflow_name")), \(column("host")), \(column("user")), "
                + "\(column("time_began")), \(column("time_completed")), rowid FROM workflow")
        defer { s.reset() }
        var count = 0
        let seen = marks["workflow"] ?? 0
        while try s.step() {
            // Re-read whole (completion updates rows in place); only rows past the mark count as read.
            if s.int64(6) > seen {
                count += 1
                marks["workflow"] = max(marks["workflow"] ?? 0, s.int64(6))
            }
            guard let runID = s.string(0), selected(runID) else { continue }
            aggregator.add(
                MetricRow.Run(
                    runID: runID, workflowName: s.string(1), host: s.string(2), user: s.string(3),
                    began: time(s, 4), completed: time(s, 5)))
        }
        status.rowsRead["workflow", default: 0] += count
        return count
    }

    private func read(_ table: String, _ database: MonitoringDatabase, after: Int64, upTo mark: Int64) throws -> Int {
        let schema = database.schema
        func column(_ name: String, _ prefix: String = "", in source: String? = nil) -> String {
            schema.has(source ?? table, name) ? prefix + quoteIdentifier(name) : "NULL"
        }
        let select: String
        switch table {
        case "task":
            select = "SELECT rowid, run_id, task_id, \(column("task_func_name")) FROM task"
        case "status":
            select =
                "SELECT rowid, run_id, task_id, task_status_name, \(column("timestamp")), \(column("try_id")) FROM status"
        case "block":
            select =
                "SELECT rowid, run_id, \(column("executor_label")), \(column("block_id")), \(column("status")), "
                + "\(column("timestamp")) FROM block"
        case "node":
            let time = schema.has("node", "timestamp") ? "timestamp" : "reg_time"
            select =
                "SELECT rowid, run_id, \(column("uid")), \(column("hostname")), \(column("block_id")), "
                + "\(column("cpu_count")), \(column("total_memory")), \(column("active")), \(column("worker_count")), "
                + "\(column("last_heartbeat")), \(column(time)) FROM node"
        default:  // resource: the host comes from the try the sample belongs to (see WorkerProcesses)
            let joinable = schema.has("resource", "try_id") && schema.has("try", "hostname")
            let block = joinable && schema.has("try", "block_id") ? "t.block_id" : "NULL"
            select =
                "SELECT r.rowid, r.run_id, " + (joinable ? "t.hostname" : "''") + ", "
                + "\(column("psutil_process_pid", "r.")), \(column("timestamp", "r.")), "
                + "\(column("psutil_process_memory_resident", "r.")), "
                + "\(column("psutil_process_time_user", "r.")) + \(column("psutil_process_time_system", "r.")), "
                + (joinable ? "r.task_id, r.try_id, " : "NULL, NULL, ") + block + " "
                + "FROM resource AS r"
                + (joinable
                    ? " LEFT JOIN try AS t ON t.try_id = r.try_id AND t.task_id = r.task_id AND t.run_id = r.run_id" : "")
        }
        let rowid = table == "resource" ? "r.rowid" : "rowid"
        currentTable = table
        let s = try statement(select + " WHERE \(rowid) > ?1 AND \(rowid) <= ?2 ORDER BY \(rowid) LIMIT ?3")
        var after = after
        var total = 0
        while true {
            s.reset()
            s.bind(1, after)
            s.bind(2, mark)
            s.bind(3, Int64(configuration.batchSize))
            var rows = 0
            var stoppedEarly = false
            // One SELECT, one short implicit read transaction; the lock is dropped at reset, and the batch ends
            // early once it has held the lock as long as a pipeline batch may.
            let started = monotonicMicros()
            while try s.step() {
                rows += 1
                after = s.int64(0)
                if let runID = s.string(1), selected(runID) { try ingest(table, s, runID: runID) }
                if rows & 63 == 0, monotonicMicros() - started > ReadOptions.lockBudgetMicros {
                    stoppedEarly = true
                    break
                }
            }
            s.reset()
            total += rows
            // Advance per batch: if a later batch fails, the next poll resumes here without counting rows twice.
            marks[table] = after
            if rows < configuration.batchSize && !stoppedEarly { break }
        }
        status.rowsRead[table, default: 0] += total
        return total
    }

    private func ingest(_ table: String, _ s: SQLiteStatement, runID: String) throws {
        switch table {
        case "task":
            try aggregator.add(MetricRow.Task(runID: runID, taskID: s.int64(2), app: s.string(3)))
        case "status":
            guard let state = s.string(3) else { return aggregator.skip("status") }
            try aggregator.add(
                MetricRow.Status(
                    runID: runID, taskID: s.int64(2), tryID: s.isNull(5) ? nil : s.int64(5), state: state,
                    time: time(s, 4)))
        case "block":
            aggregator.add(
                MetricRow.Block(
                    runID: runID, executor: s.string(2) ?? "", block: s.string(3) ?? "", status: s.string(4) ?? "",
                    time: time(s, 5)))
        case "node":
            let host = s.string(3) ?? ""
            let block = s.string(4) ?? ""
            aggregator.add(
                MetricRow.Node(
                    runID: runID, manager: s.string(2) ?? (host + "\u{0}" + block), host: host, block: block,
                    cpus: integer(s, 5), memoryBytes: integer(s, 6), active: boolean(s, 7), workers: integer(s, 8),
                    lastHeartbeat: time(s, 9)))
        default:
            aggregator.add(
                MetricRow.Resource(
                    runID: runID, host: s.string(2), pid: integer(s, 3), time: time(s, 4),
                    residentBytes: number(s, 5), cpuSeconds: number(s, 6),
                    taskID: integer(s, 7), tryID: integer(s, 8), block: s.string(9)))
        }
    }

    // MARK: Values

    /// Each value by the rules every reader applies (`ValueRules`), problems counted as the pipeline counts them.
    private func row(_ s: SQLiteStatement) -> SourceRow {
        SourceRow(statement: s, warnings: configuration.warnings, zone: zone, table: currentTable)
    }

    private func integer(_ s: SQLiteStatement, _ i: Int32) -> Int64? { row(s).integer(i) }
    private func number(_ s: SQLiteStatement, _ i: Int32) -> Double? { row(s).double(i) }
    private func boolean(_ s: SQLiteStatement, _ i: Int32) -> Bool? { row(s).boolean(i) }
    private func time(_ s: SQLiteStatement, _ i: Int32) -> Int64? { row(s).timestamp(i) }
}
