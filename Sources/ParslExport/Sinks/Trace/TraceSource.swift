/// The trace's reads of the monitoring database: one query per pass, each in the order its pass needs, so that
/// nothing has to be held for a whole run. Every query keeps to the export's snapshot (`rowid <= high water`) and
/// to one run. Times come out of SQL already converted by `parsl_us` (microseconds, or NULL when a value does not
/// parse), so SQLite can sort by them.
struct TraceSource {
    let database: MonitoringDatabase
    let snapshot: DatabaseSnapshot
    let runID: String

    private var schema: SourceSchema { database.schema }
    private var warnings: ValueWarnings { snapshot.warnings }

    init(snapshot: DatabaseSnapshot, runID: String) throws {
        self.database = snapshot.database
        self.snapshot = snapshot
        self.runID = runID
        try Self.registerFunctions(on: database, zone: snapshot.options.timeZone, warnings: snapshot.warnings)
    }

    /// `parsl_us(text)`: a Parsl timestamp as microseconds in the export's clock, NULL when it does not parse (as
    /// the table reader reads it). `parsl_us_checked(text, 'table.column')` also records a warning for a value that
    /// does not parse; each column is read through it by exactly one query, so each bad value counts once.
    /// `parsl_least(...)` / `parsl_greatest(...)`: the smallest / largest non-NULL integer argument.
    private static func registerFunctions(on database: MonitoringDatabase, zone: TimeZoneConversion?, warnings: ValueWarnings)
        throws
    {
        func micros(_ arguments: SQLiteArguments) -> Int64? {
            guard arguments.storageClass(0) == .text else { return nil }
            return arguments.withText(0) { Timestamp.parse($0) }?.micros(in: zone)
        }
        try database.guarded {
            let connection = database.connection
            try connection.createFunction("parsl_us", arguments: 1, micros)
            try connection.createFunction("parsl_us_checked", arguments: 2) { arguments in
                if let value = micros(arguments) { return value }
                if arguments.storageClass(0) != .null {
                    let name = arguments.withText(1) { String(decoding: $0, as: UTF8.self) }
                    let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
                    warnings.record(
                        table: parts.first ?? name,
                        column: parts.count > 1 ? parts[1] : "",
                        problem: "timestamps that do not parse",
                        example: arguments.withText(0) { String(decoding: $0, as: UTF8.self) }
                    )
                }
                return nil
            }
            try connection.createFunction("parsl_least", arguments: -1) { arguments in
                var best: Int64?
                for index in 0..<arguments.count where arguments.storageClass(index) == .integer {
                    let value = arguments.int64(index)
                    if best == nil || value < best! { best = value }
                }
                return best
            }
            try connection.createFunction("parsl_greatest", arguments: -1) { arguments in
                var best: Int64?
                for index in 0..<arguments.count where arguments.storageClass(index) == .integer {
                    let value = arguments.int64(index)
                    if best == nil || value > best! { best = value }
                }
                return best
            }
        }
    }

    // MARK: - SQL pieces

    func has(_ table: String) -> Bool { schema.tables[table] != nil }
    func has(_ table: String, _ column: String) -> Bool { schema.has(table, column) }

    /// `alias.column`, or NULL where this schema era lacks the column.
    private func column(_ table: String, _ name: String, _ alias: String) -> String {
        has(table, name) ? "\(alias).\(quoteIdentifier(name))" : "NULL"
    }

    /// The run and snapshot filter of `table` (aliased `alias`), with the run bound as ?1.
    private func scope(_ table: String, _ alias: String) -> String {
        var sql = "\(alias).rowid <= \(snapshot.highWater(table))"
        if has(table, "run_id") { sql += " AND \(alias).run_id = ?1" }
        return sql
    }

    private var hasStatusTry: Bool { has("status", "try_id") }

    /// The status that decides a try's final state: terminal states first, then the latest (as try_summary).
    private func finalStateSubquery() -> String {
        guard has("status") else { return "NULL" }
        return "(SELECT s.task_status_name FROM status AS s WHERE s.task_id = t.task_id AND \(scope("status", "s"))"
            + (has("status", "run_id") && has("try", "run_id") ? " AND s.run_id = t.run_id" : "")
            + (hasStatusTry ? " AND s.try_id = t.try_id" : "")
            + " ORDER BY \(TrySummary.finalStateRank) DESC, s.timestamp DESC, s.rowid DESC LIMIT 1)"
    }

    // MARK: - Running queries

    /// Runs `sql` with the run bound as ?1, calling `body` for each row.
    func each(_ sql: String, _ body: (TraceRow) throws -> Void) throws {
        try database.guarded {
            let statement = try database.connection.prepare(sql)
            defer { statement.reset() }
            statement.bind(1, runID)
            let row = TraceRow(statement: statement, warnings: warnings)
            while try statement.step() { try body(row) }
        }
    }

    // MARK: - Queries of the passes

    /// Earliest and latest timestamp of the run in every table; also where each timestamp column is checked.
    func extent() throws -> (first: Int64, last: Int64)? {
        var parts: [(table: String, expression: String)] = []
        func checked(_ table: String, _ name: String) -> String {
            has(table, name) ? "parsl_us_checked(\(quoteIdentifier(name)), '\(table).\(name)')" : "NULL"
        }
        if has("try") {
            let times = ["task_try_time_launched", "task_try_time_running", "task_try_time_returned"]
                .map { checked("try", $0) }.joined(separator: ", ")
            parts.append(("try", times))
        }
        for table in ["status", "resource", "block"] where has(table) { parts.append((table, checked(table, "timestamp"))) }
        if has("node") {
            parts.append(("node", "coalesce(\(checked("node", "timestamp")), parsl_us(\(column("node", "reg_time", "x"))))"))
        }
        var first = Int64.max
        var last = Int64.min
        for (table, expression) in parts {
            let sql =
                "SELECT min(parsl_least(\(expression))), max(parsl_greatest(\(expression))) FROM \(quoteIdentifier(table)) AS x WHERE \(scope(table, "x"))"
            try each(sql) { row in
                if let value = row.int(0) { first = min(first, value) }
                if let value = row.int(1) { last = max(last, value) }
            }
        }
        return first <= last ? (first, last) : nil
    }

    /// Range of task ids, largest try id and number of tries: the geometry of the slot table.
    func tryGeometry() throws -> (firstTask: Int64, lastTask: Int64, lastTry: Int64, count: Int64) {
        var geometry: (Int64, Int64, Int64, Int64) = (0, -1, -1, 0)
        guard has("try") else { return geometry }
        try each("SELECT min(task_id), max(task_id), max(try_id), count(*) FROM \"try\" AS t WHERE \(scope("try", "t"))") { row in
            geometry = (row.int(0) ?? 0, row.int(1) ?? -1, row.int(2) ?? -1, row.int(3) ?? 0)
        }
        return geometry
    }

    /// Tries in the order of their first moment (the layout pass): ids, where they ran, times, worker pid, the
    /// final state where the span depends on it, and the status range of tries that never ran.
    /// Columns: task, try, executor, block, host, launched, running, returned, worker pid, state, status min, max.
    func layoutRows(_ body: (TraceRow) throws -> Void) throws {
        guard has("try") else { return }
        let running = "parsl_us(\(column("try", "task_try_time_running", "t")))"
        let returned = "parsl_us(\(column("try", "task_try_time_returned", "t")))"
        var workerPID = "NULL"
        if has("resource", "try_id") && has("resource", "psutil_process_pid") {
            workerPID =
                "(SELECT max(r.psutil_process_pid) FROM resource AS r WHERE r.try_id = t.try_id AND r.task_id = t.task_id"
                + (has("resource", "run_id") ? " AND r.run_id = t.run_id" : "") + ")"
        }
        var statusRange = ("NULL", "NULL")
        if hasStatusTry {
            let match =
                "FROM status AS s WHERE s.task_id = t.task_id AND s.try_id = t.try_id AND \(scope("status", "s"))"
                + (has("status", "run_id") && has("try", "run_id") ? " AND s.run_id = t.run_id" : "")
            statusRange = (
                "CASE WHEN \(running) IS NULL THEN (SELECT min(parsl_us(s.timestamp)) \(match)) END",
                "CASE WHEN \(running) IS NULL THEN (SELECT max(parsl_us(s.timestamp)) \(match)) END"
            )
        }
        let inner = """
            SELECT t.task_id AS task, t.try_id AS attempt, \(column("try", "task_executor", "t")),
                \(column("try", "block_id", "t")), \(column("try", "hostname", "t")),
                parsl_us(\(column("try", "task_try_time_launched", "t"))) AS launched, \(running) AS running,
                \(returned) AS returned, \(workerPID),
                CASE WHEN \(returned) IS NULL OR \(running) IS NULL THEN \(finalStateSubquery()) END,
                \(statusRange.0) AS smin, \(statusRange.1)
            FROM "try" AS t WHERE \(scope("try", "t"))
            """
        let sql = """
            SELECT * FROM (\(inner)) WHERE parsl_least(launched, running, returned, smin) IS NOT NULL
            ORDER BY parsl_least(launched, running, returned, smin), task, attempt
            """
        try each(sql, body)
    }

    /// Status rows in table order. Columns: task, try (NULL where the era has none), state, time, rowid.
    func statusRows(_ body: (TraceRow) throws -> Void) throws {
        guard has("status") else { return }
        let sql = """
            SELECT s.task_id, \(column("status", "try_id", "s")), s.task_status_name, parsl_us(s.timestamp), s.rowid
            FROM status AS s WHERE \(scope("status", "s")) ORDER BY s.rowid
            """
        try each(sql, body)
    }

    /// Tries in table order with what the slices show. Columns: task, try, app, executor, block, host, worker pid,
    /// launched, running, fail history, depends, peak RSS, CPU seconds.
    func tryRows(_ body: (TraceRow) throws -> Void) throws {
        guard has("try") else { return }
        let task = has("task")
        let taskJoin =
            task
            ? " LEFT JOIN task AS k ON k.task_id = t.task_id"
                + (has("task", "run_id") && has("try", "run_id") ? " AND k.run_id = t.run_id" : "") : ""
        let app = task ? column("task", "task_func_name", "k") : "NULL"
        let depends = task ? column("task", "task_depends", "k") : "NULL"
        var resourceJoin = ""
        var aggregates = "NULL, NULL, NULL"
        if has("resource", "try_id") {
            resourceJoin =
                " LEFT JOIN resource AS r ON r.try_id = t.try_id AND r.task_id = t.task_id"
                + (has("resource", "run_id") && has("try", "run_id") ? " AND r.run_id = t.run_id" : "")
            let cpu =
                "r.\(quoteIdentifier("psutil_process_time_user")) + r.\(quoteIdentifier("psutil_process_time_system"))"
            aggregates =
                "max(\(column("resource", "psutil_process_pid", "r"))), "
                + "CAST(max(\(column("resource", "psutil_process_memory_resident", "r"))) AS INTEGER), "
                + (has("resource", "psutil_process_time_user") && has("resource", "psutil_process_time_system")
                    ? "round(max(\(cpu)) - min(\(cpu)), 6)" : "NULL")
        }
        let sql = """
            SELECT t.task_id, t.try_id, \(app), \(column("try", "task_executor", "t")), \(column("try", "block_id", "t")),
                \(column("try", "hostname", "t")), \(aggregates),
                parsl_us(\(column("try", "task_try_time_launched", "t"))),
                parsl_us(\(column("try", "task_try_time_running", "t"))),
                \(column("try", "task_fail_history", "t")), \(depends)
            FROM "try" AS t\(taskJoin)\(resourceJoin) WHERE \(scope("try", "t"))
            GROUP BY t.rowid ORDER BY t.rowid
            """
        try each(sql, body)
    }

    /// Tasks with dependencies, in table order. Columns: task, depends.
    func dependencyRows(_ body: (TraceRow) throws -> Void) throws {
        guard has("task", "task_depends") else { return }
        let sql = """
            SELECT k.task_id, k.task_depends FROM task AS k
            WHERE \(scope("task", "k")) AND k.task_depends IS NOT NULL AND k.task_depends != '' ORDER BY k.rowid
            """
        try each(sql, body)
    }

    /// Resource samples in time order (ties in table order). Columns: task, try, pid, time, resident bytes,
    /// user seconds, system seconds.
    func resourceRows(_ body: (TraceRow) throws -> Void) throws {
        guard has("resource", "try_id") else { return }
        let sql = """
            SELECT * FROM (SELECT r.task_id, r.try_id, \(column("resource", "psutil_process_pid", "r")),
                parsl_us(r.timestamp) AS time, \(column("resource", "psutil_process_memory_resident", "r")),
                \(column("resource", "psutil_process_time_user", "r")), \(column("resource", "psutil_process_time_system", "r")),
                r.rowid AS position
            FROM resource AS r WHERE \(scope("resource", "r"))) WHERE time IS NOT NULL ORDER BY time, position
            """
        try each(sql, body)
    }

    /// Node snapshots in time order. Columns: block, uid, worker count, active, time.
    func nodeRows(_ body: (TraceRow) throws -> Void) throws {
        guard has("node") else { return }
        let sql = """
            SELECT * FROM (SELECT \(column("node", "block_id", "n")), \(column("node", "uid", "n")),
                \(column("node", "worker_count", "n")), \(column("node", "active", "n")),
                coalesce(parsl_us(\(column("node", "timestamp", "n"))), parsl_us(\(column("node", "reg_time", "n")))) AS time,
                n.rowid AS position
            FROM node AS n WHERE \(scope("node", "n"))) WHERE time IS NOT NULL ORDER BY time, position
            """
        try each(sql, body)
    }

    /// Each block id of the node rows, with the first host they name. Columns: block, host.
    func nodeBlocks(_ body: (TraceRow) throws -> Void) throws {
        guard has("node") else { return }
        let hosted = has("node", "hostname") ? "n.hostname IS NOT NULL" : "0"
        let time = "coalesce(parsl_us(\(column("node", "timestamp", "n"))), parsl_us(\(column("node", "reg_time", "n"))))"
        let sql = """
            SELECT b.block, (SELECT h.hostname FROM node AS h WHERE h.rowid = b.first) FROM (
                SELECT \(column("node", "block_id", "n")) AS block, min(CASE WHEN \(hosted) THEN n.rowid END) AS first
                FROM node AS n WHERE \(scope("node", "n")) AND \(time) IS NOT NULL GROUP BY 1) AS b
            """
        try each(sql, body)
    }

    /// Block rows by block, then time. Columns: executor, block, status, job id, time.
    func blockRows(_ body: (TraceRow) throws -> Void) throws {
        guard has("block") else { return }
        let sql = """
            SELECT * FROM (SELECT coalesce(\(column("block", "executor_label", "b")), '') AS executor,
                coalesce(\(column("block", "block_id", "b")), '') AS block, coalesce(\(column("block", "status", "b")), '') AS status,
                \(column("block", "job_id", "b")), parsl_us(b.timestamp) AS time, b.rowid AS position
            FROM block AS b WHERE \(scope("block", "b"))) WHERE time IS NOT NULL ORDER BY executor, block, time, position
            """
        try each(sql, body)
    }
}

/// The current row of a trace query, read with the conversions of the table reader.
struct TraceRow {
    let statement: SQLiteStatement
    let warnings: ValueWarnings

    func isNull(_ column: Int32) -> Bool { statement.isNull(column) }

    /// An integer; a whole float is read as one, anything else is NULL. Text that looks like an integer is read
    /// and, like other text, reported when `warn` names the column.
    func int(_ column: Int32, warn: (table: String, column: String)? = nil) -> Int64? {
        switch statement.storageClass(column) {
        case .null: return nil
        case .integer: return statement.int64(column)
        case .float:
            let value = statement.double(column)
            if let exact = Int64(exactly: value) { return exact }
            if let warn { record(warn, "non-integer numbers in an integer column", "\(value)") }
            return nil
        default:
            let parsed = statement.withText(column) { parseInteger($0) }
            if let warn {
                record(
                    warn, parsed == nil ? "values that are not integers" : "integers stored as text (read as numbers)",
                    statement.string(column) ?? "")
            }
            return parsed
        }
    }

    /// A number, or NULL for anything else (text that reads as a number is read, and reported with `warn`).
    func double(_ column: Int32, warn: (table: String, column: String)? = nil) -> Double? {
        switch statement.storageClass(column) {
        case .null: return nil
        case .integer, .float: return statement.double(column)
        default:
            let text = statement.string(column) ?? ""
            let value = Double(text)
            if let warn { record(warn, value == nil ? "values that are not numbers" : "numbers stored as text (read as numbers)", text) }
            return value
        }
    }

    /// Text, with invalid UTF-8 replaced.
    func text(_ column: Int32) -> String? { statement.string(column) }

    func withText<T>(_ column: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T? {
        statement.isNull(column) ? nil : try statement.withText(column, body)
    }

    /// A boolean as Parsl stores it (0/1, or text such as "true").
    func bool(_ column: Int32) -> Bool? {
        switch statement.storageClass(column) {
        case .null: return nil
        case .integer:
            let value = statement.int64(column)
            return value == 0 || value == 1 ? value == 1 : nil
        default: return statement.withText(column, parseBoolean)
        }
    }

    private func record(_ at: (table: String, column: String), _ problem: String, _ example: String) {
        warnings.record(table: at.table, column: at.column, problem: problem, example: example)
    }
}
