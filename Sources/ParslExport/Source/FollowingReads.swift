/// The reads of a reader that follows a database while Parsl writes it (`serve`'s ``MetricsCollector``): the
/// tables' last rowids, then each table's new rows by rowid range, in batches that are each one short SELECT (its
/// own read transaction), as model values read by the rules every reader applies (`SourceRow`). Parsl inserts
/// into status, task, block, node and resource and never deletes, so rowid marks see every row once; the workflow
/// table (a few rows, updated in place at completion) is read whole. Not thread-safe: use it from one thread.
final class FollowingReads {
    let database: MonitoringDatabase
    /// Naive Parsl times are read in this zone (UTC when nil).
    let zone: TimeZoneConversion?
    let warnings: ValueWarnings?
    private var statements: [String: SQLiteStatement] = [:]

    /// Tables read by rowid range, in the order a poll reads them (a task's row before its tries and statuses).
    /// Parsl updates a try row in place as the try runs: a reader reads the rows of unfinished tries again
    /// (`tryAttempt`).
    static let appendedTables = ["task", "try", "status", "block", "node", "resource"]

    init(database: MonitoringDatabase, zone: TimeZoneConversion?, warnings: ValueWarnings?) {
        self.database = database
        self.zone = zone
        self.warnings = warnings
    }

    private var schema: SourceSchema { database.schema }

    private func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] { return cached }
        let prepared = try database.connection.prepare(sql)
        statements[sql] = prepared
        return prepared
    }

    /// Runs `body` in one read transaction.
    func read<T>(_ body: () throws -> T) throws -> T { try database.connection.read(body) }

    /// The last rowid of each of `tables` the database has (0 when empty).
    func lastRowids(_ tables: [String]) throws -> [String: Int64] {
        var result: [String: Int64] = [:]
        for table in tables where schema.tables[table] != nil {
            let statement = try statement("SELECT max(rowid) FROM \(quoteIdentifier(table))")
            defer { statement.reset() }
            result[table] = try statement.step() && !statement.isNull(0) ? statement.int64(0) : 0
        }
        return result
    }

    /// What tells this database from another written over it (see `DatabaseFingerprint`).
    func fingerprint() throws -> DatabaseFingerprint {
        try DatabaseFingerprint(prepare: statement)
    }

    /// Every workflow row with its rowid.
    func workflowRows(_ body: (WorkflowRun, Int64) throws -> Void) throws {
        guard schema.tables["workflow"] != nil else { return }
        let s = try statement(
            "SELECT run_id, \(column("workflow", "workflow_name")), \(column("workflow", "host")), "
                + "\(column("workflow", "user")), \(column("workflow", "time_began")), "
                + "\(column("workflow", "time_completed")), rowid FROM workflow")
        defer { s.reset() }
        let row = SourceRow(statement: s, warnings: warnings, zone: zone, table: "workflow")
        while try s.step() {
            let run = WorkflowRun(
                runID: s.string(0) ?? "", workflowName: s.string(1), workflowVersion: nil, began: row.timestamp(4),
                completed: row.timestamp(5), host: s.string(2), user: s.string(3), rundir: nil, tasksFailedCount: nil,
                tasksCompletedCount: nil)
            try body(run, s.int64(6))
        }
    }

    /// One batch of `table`'s rows past `after` up to `upTo` (at most `limit`), as model values of the runs
    /// `keep` accepts. Returns the rows read (every run's) and the last rowid; a batch shorter than `limit` is the
    /// last unless it `stoppedEarly`: it ends once it has held the read lock as long as a pipeline batch may
    /// (`ReadOptions.lockBudgetMicros`), whatever `limit` says. The host of a resource sample is its try's
    /// hostname as it stands now (nil while Parsl has not written it).
    func batch(
        of table: String, after: Int64, upTo: Int64, limit: Int, keep: (String) -> Bool
    ) throws -> (rows: Int, last: Int64, stoppedEarly: Bool, events: DomainBatch) {
        let s = try statement(select(table) + " WHERE \(table == "resource" ? "r.rowid" : "rowid") > ?1 AND "
            + "\(table == "resource" ? "r.rowid" : "rowid") <= ?2 ORDER BY 1 LIMIT ?3")
        defer { s.reset() }
        s.bind(1, after)
        s.bind(2, upTo)
        s.bind(3, Int64(limit))
        let row = SourceRow(statement: s, warnings: warnings, zone: zone, table: table)
        var rows = 0
        var last = after
        var tasks: [TaskRecord] = []
        var tries: [TryAttempt] = []
        var changes: [StatusChange] = []
        var transitions: [BlockTransition] = []
        var nodes: [NodeSnapshot] = []
        var samples: [ResourceSample] = []
        var stoppedEarly = false
        let started = monotonicMicros()
        while try s.step() {
            rows += 1
            last = s.int64(0)
            if rows & 63 == 0, monotonicMicros() - started > ReadOptions.lockBudgetMicros { stoppedEarly = true }
            guard let runID = s.string(1), keep(runID) else {
                if stoppedEarly { break }
                continue
            }
            switch table {
            case "task":
                tasks.append(
                    TaskRecord(
                        runID: runID, taskID: row.integer(2) ?? -1, app: s.string(3), dependsOn: [], memoize: nil,
                        invoked: nil, returned: nil, failCount: nil))
            case "try":
                tries.append(attempt(row, runID: runID))
            case "status":
                changes.append(
                    StatusChange(
                        runID: runID, taskID: row.integer(2) ?? -1, tryID: row.integer(5), state: s.string(3) ?? "",
                        time: row.timestamp(4)))
            case "block":
                transitions.append(
                    BlockTransition(
                        runID: runID, executor: s.string(2) ?? "", blockID: s.string(3) ?? "", jobID: nil,
                        time: row.timestamp(5), status: s.string(4) ?? ""))
            case "node":
                nodes.append(
                    NodeSnapshot(
                        runID: runID, hostname: s.string(3), uid: s.string(2), blockID: s.string(4),
                        cpuCount: row.integer(5), totalMemoryBytes: row.integer(6), active: row.boolean(7),
                        workerCount: row.integer(8), time: row.timestamp(10), lastHeartbeat: row.timestamp(9)))
            default:
                samples.append(
                    ResourceSample(
                        runID: runID, taskID: row.integer(7) ?? -1, tryID: row.integer(8), time: row.timestamp(4),
                        pid: row.integer(3), residentBytes: row.double(5), virtualBytes: nil, cpuUserSeconds: row.double(6),
                        cpuSystemSeconds: row.double(11), hostname: s.string(2), blockID: s.string(9)))
            }
            if stoppedEarly { break }
        }
        let events: DomainBatch =
            switch table {
            case "task": .tasks(tasks)
            case "try": .tryAttempts(tries)
            case "status": .statusChanges(changes)
            case "block": .blockTransitions(transitions)
            case "node": .nodeSnapshots(nodes)
            default: .resourceSamples(samples)
            }
        return (rows, last, stoppedEarly, events)
    }

    /// One try row as it stands now.
    func tryAttempt(runID: String, taskID: Int64, tryID: Int64) throws -> TryAttempt? {
        let s = try statement(select("try") + " WHERE run_id = ?1 AND task_id = ?2 AND try_id = ?3")
        defer { s.reset() }
        s.bind(1, runID)
        s.bind(2, taskID)
        s.bind(3, tryID)
        guard try s.step() else { return nil }
        return attempt(SourceRow(statement: s, warnings: warnings, zone: zone, table: "try"), runID: runID)
    }

    /// A row of `select("try")`.
    private func attempt(_ row: SourceRow, runID: String) -> TryAttempt {
        TryAttempt(
            runID: runID, taskID: row.integer(2) ?? -1, tryID: row.integer(3) ?? -1, executor: row.text(4),
            blockID: row.text(5), hostname: row.text(6), launched: row.timestamp(7), running: row.timestamp(8),
            returned: row.timestamp(9))
    }

    /// The hostname and block of one try, once Parsl has written them.
    func tryHost(runID: String, taskID: Int64, tryID: Int64) throws -> (host: String, block: String?)? {
        let block = schema.has("try", "block_id") ? "block_id" : "NULL"
        let s = try statement("SELECT hostname, \(block) FROM try WHERE run_id = ?1 AND task_id = ?2 AND try_id = ?3")
        defer { s.reset() }
        s.bind(1, runID)
        s.bind(2, taskID)
        s.bind(3, tryID)
        guard try s.step(), let host = s.string(0) else { return nil }
        return (host, s.string(1))
    }

    /// `name` of `table`, or NULL where this schema era lacks it.
    private func column(_ table: String, _ name: String, _ prefix: String = "") -> String {
        schema.has(table, name) ? prefix + quoteIdentifier(name) : "NULL"
    }

    /// The SELECT of `table`'s batches: rowid and run id first.
    private func select(_ table: String) -> String {
        func c(_ name: String) -> String { column(table, name) }
        switch table {
        case "task":
            return "SELECT rowid, run_id, task_id, \(c("task_func_name")) FROM task"
        case "try":
            return "SELECT rowid, run_id, task_id, try_id, \(c("task_executor")), \(c("block_id")), \(c("hostname")), "
                + "\(c("task_try_time_launched")), \(c("task_try_time_running")), \(c("task_try_time_returned")) FROM try"
        case "status":
            return "SELECT rowid, run_id, task_id, task_status_name, \(c("timestamp")), \(c("try_id")) FROM status"
        case "block":
            return "SELECT rowid, run_id, \(c("executor_label")), \(c("block_id")), \(c("status")), \(c("timestamp")) FROM block"
        case "node":
            let time = schema.has("node", "timestamp") ? "timestamp" : "reg_time"
            return "SELECT rowid, run_id, \(c("uid")), \(c("hostname")), \(c("block_id")), \(c("cpu_count")), "
                + "\(c("total_memory")), \(c("active")), \(c("worker_count")), \(c("last_heartbeat")), \(c(time)) FROM node"
        default:  // resource: the host and block are its try's (see WorkerProcesses)
            let joinable = schema.has("resource", "try_id") && schema.has("try", "hostname")
            let block = joinable && schema.has("try", "block_id") ? "t.block_id" : "NULL"
            return "SELECT r.rowid, r.run_id, " + (joinable ? "t.hostname" : "''") + ", "
                + "\(column("resource", "psutil_process_pid", "r.")), \(column("resource", "timestamp", "r.")), "
                + "\(column("resource", "psutil_process_memory_resident", "r.")), "
                + "\(column("resource", "psutil_process_time_user", "r.")), "
                + (joinable ? "r.task_id, r.try_id, " : "NULL, NULL, ") + block + ", NULL, "
                + "\(column("resource", "psutil_process_time_system", "r.")) "
                + "FROM resource AS r"
                + (joinable
                    ? " LEFT JOIN try AS t ON t.try_id = r.try_id AND t.task_id = r.task_id AND t.run_id = r.run_id" : "")
        }
    }
}
