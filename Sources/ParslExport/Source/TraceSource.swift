/// The trace's reads of the monitoring database: one query per pass, each in the order its pass needs, so that
/// nothing has to be held for a whole run. Every query keeps to the export's snapshot (`rowid <= high water`) and
/// to one run. Times come out of SQL already converted by `parsl_us` (microseconds, or NULL when a value does not
/// parse), so SQLite can sort by them. Each pass hands its rows decoded, as the typed rows of `TraceRows.swift`.
struct TraceSource {
    let connection: SQLiteConnection
    let schema: SourceSchema
    let path: String
    let snapshot: DatabaseSnapshot
    let runID: String
    /// Whether time-sorted queries sort a staged copy (see `eachSorted`).
    let stagesSorts: Bool
    /// Where the passes read tries: a copy of the run's try rows taken once (see `stageTries`), or the table itself
    /// on a connection that has no copy.
    let tries: String
    private let statements = StatementCache()

    private final class StatementCache {
        var finalState: SQLiteStatement?
        var lookups: SQLiteConnection?
        var readObserver: (any BatchReadObserver)?
    }

    /// Told when each batch of a pass in rowid order starts and ends its read of the database, so that whatever its
    /// rows make that could block (writing out) waits until the lock is given back.
    var batchReadObserver: (any BatchReadObserver)? {
        get { statements.readObserver }
        nonmutating set { statements.readObserver = newValue }
    }

    private var finalStateStatement: SQLiteStatement? {
        get { statements.finalState }
        nonmutating set { statements.finalState = newValue }
    }

    private var warnings: ValueWarnings { snapshot.warnings }

    /// Reads through the export's own connection; `stageSortedReads` nil decides from the database.
    init(snapshot: DatabaseSnapshot, runID: String, stageSortedReads: Bool? = nil) throws {
        let connection = snapshot.database.connection
        // A streamed copy is the export's own and holds each try in one state already: nothing to stage.
        let copy = snapshot.database.isStreamedCopy
        try self.init(
            connection: connection,
            snapshot: snapshot,
            runID: runID,
            stagesSorts: copy ? false : stageSortedReads ?? snapshot.database.overlappingReadsMayStallAWriter(),
            tries: copy ? "\"try\"" : Self.stagedTries
        )
        if !copy { try stageTries() }
    }

    /// The columns the passes read, by table: what a `StreamedCopy` must hold for them to read it instead.
    static let columnsRead: [String: [String]] = [
        "try": [
            "task_id", "try_id", "run_id", "task_executor", "block_id", "hostname", "task_try_time_launched",
            "task_try_time_running", "task_try_time_returned", "task_fail_history",
        ],
        "task": ["task_id", "run_id", "task_func_name", "task_depends"],
        "status": ["task_id", "try_id", "run_id", "task_status_name", "timestamp"],
        "resource": [
            "task_id", "try_id", "run_id", "timestamp", "psutil_process_pid", "psutil_process_memory_resident",
            "psutil_process_time_user", "psutil_process_time_system",
        ],
        "block": ["run_id", "executor_label", "block_id", "status", "job_id", "timestamp"],
        "node": ["run_id", "block_id", "uid", "worker_count", "active", "timestamp", "reg_time", "hostname"],
    ]

    /// What the passes look rows up by, as the monitoring database's primary keys let them: a copy indexes these.
    static let lookupKeys: [String: [String]] = [
        "try": ["task_id", "try_id", "run_id"],
        "task": ["task_id", "run_id"],
        "status": ["task_id", "try_id", "run_id"],
    ]

    private init(
        connection: SQLiteConnection, snapshot: DatabaseSnapshot, runID: String, stagesSorts: Bool, tries: String
    ) throws {
        self.connection = connection
        schema = snapshot.database.schema
        path = snapshot.database.path
        self.snapshot = snapshot
        self.runID = runID
        self.stagesSorts = stagesSorts
        self.tries = tries
        // The two threads' connections take turns reading while a writer may be at work (see `readGate`).
        if stagesSorts { connection.readGate = snapshot.readGate }
        try guarded {
            try Self.registerFunctions(
                on: connection, zone: snapshot.options.timeZone, warnings: snapshot.warnings,
                converted: snapshot.database.isStreamedCopy)
            if snapshot.database.isStreamedCopy { try connection.execute("PRAGMA cache_size = -512") }
        }
    }

    /// The same reads through a connection of its own, for another thread. It reads the try table itself (the
    /// staged copy is the first connection's): only for what a sample's try adds to it, never for which tries exist.
    func onNewConnection() throws -> TraceSource {
        try TraceSource(
            connection: snapshot.database.openConnection(), snapshot: snapshot, runID: runID, stagesSorts: stagesSorts,
            tries: "\"try\"")
    }

    private static let stagedTries = "temp.parsl_trace_try"

    /// Copies the run's try rows of the snapshot into a temporary table, each row read once, in rowid ranges (each
    /// a short read transaction). Parsl updates a try in place as it runs (running time, then block and host, then
    /// returned time); passes that read the table itself at different moments could see one try in two states, or
    /// in neither of the two passes that split tries by whether they ran. The copy keeps each try's rowid.
    private func stageTries() throws {
        guard has("try") else { return }
        let columns = (schema.tables["try"] ?? []).map { quoteIdentifier($0.name) }
        let list = columns.joined(separator: ", ")
        try guarded {
            try connection.execute("DROP TABLE IF EXISTS \(tries)")
            try connection.execute("CREATE TEMP TABLE parsl_trace_try AS SELECT \(list) FROM \"try\" LIMIT 0")
            let run = has("try", "run_id") ? " AND run_id = ?1" : ""
            try copyInRanges(
                "INSERT INTO \(tries) (rowid, \(list)) SELECT rowid, \(list) FROM \"try\" WHERE rowid > ?2 AND rowid <= ?3\(run)",
                table: "try")
        }
    }

    /// Runs `insert` (with the run as ?1 and a rowid range of `table` as ?2 < rowid <= ?3) over the snapshot's
    /// rows of `table`, one range at a time: each is a read transaction of its own, sized by time to stay as short
    /// as a pipeline batch (a range of resource rows joined to their tries costs far more than one of node rows).
    private func copyInRanges(_ insert: String, table: String) throws {
        let statement = try connection.prepare(insert)
        defer { statement.reset() }
        try snapshot.database.inRowidRanges(
            from: try firstRowid(table) - 1, to: snapshot.highWater(table), on: connection, startingWidth: 1_024
        ) { from, to in
            statement.reset()
            bindRun(statement)  // ignored by SQLite where the statement has no ?1
            statement.bind(2, from)
            statement.bind(3, to)
            _ = try statement.step()
        }
    }

    /// Binds the run as ?1: its id, or in a streamed copy the integer that stands for it there.
    private func bindRun(_ statement: SQLiteStatement) {
        if let keys = snapshot.database.streamedRunKeys {
            statement.bind(1, keys[runID] ?? -1)
        } else {
            statement.bind(1, runID)
        }
    }

    /// Runs `body`, turning SQLite errors into errors about the database file.
    func guarded<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            throw MonitoringDatabase.describe(error, path: path)
        }
    }

    /// `parsl_us(text)`: a Parsl timestamp as microseconds in the export's clock, NULL when it does not parse (as
    /// the table reader reads it). `parsl_us_checked(text, 'table.column')` also records a warning for a value that
    /// does not parse; each column is read through it by exactly one query, so each bad value counts once.
    /// `parsl_try_start(...)`: the earliest of its arguments that parse (a try's sort key).
    /// With `converted` (a streamed copy), times are already microseconds in the export's clock, stored as integers.
    private static func registerFunctions(
        on connection: SQLiteConnection, zone: TimeZoneConversion?, warnings: ValueWarnings, converted: Bool
    ) throws {
        func micros(_ arguments: SQLiteArguments, _ index: Int = 0) -> Int64? {
            if converted { return arguments.storageClass(index) == .integer ? arguments.int64(index) : nil }
            guard arguments.storageClass(index) == .text else { return nil }
            return arguments.withText(index) { Timestamp.parse($0) }?.micros(in: zone)
        }
        try connection.createFunction("parsl_us", arguments: 1) { micros($0) }
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
        try connection.createFunction("parsl_try_start", arguments: -1) { arguments in
            var best: Int64?
            for index in 0..<arguments.count {
                guard let value = micros(arguments, index) else { continue }
                if best == nil || value < best! { best = value }
            }
            return best
        }
    }

    // MARK: - SQL pieces

    func has(_ table: String) -> Bool { schema.tables[table] != nil }
    func has(_ table: String, _ column: String) -> Bool { schema.has(table, column) }

    /// `alias.column`, or NULL where this schema era lacks the column.
    private func column(_ table: String, _ name: String, _ alias: String) -> String {
        has(table, name) ? "\(alias).\(quoteIdentifier(name))" : "NULL"
    }

    /// `parsl_us_checked` of a column, which reports values that do not parse; NULL where the era lacks it.
    private func checked(_ table: String, _ name: String, _ alias: String) -> String {
        has(table, name) ? "parsl_us_checked(\(alias).\(quoteIdentifier(name)), '\(table).\(name)')" : "NULL"
    }

    /// The run and snapshot filter of `table` (aliased `alias`), with the run bound as ?1 (or `run`).
    /// The bound is written `+rowid` so that SQLite never takes it for the end of a rowid search: given it and a
    /// batch's own range, it would walk from the range's start to the snapshot's end for every batch.
    private func scope(_ table: String, _ alias: String, run: String = "?1") -> String {
        var sql = "+\(alias).rowid <= \(snapshot.highWater(table))"
        if has(table, "run_id") { sql += " AND \(alias).run_id = \(run)" }
        return sql
    }

    private var hasStatusTry: Bool { has("status", "try_id") }

    // MARK: - Running queries

    /// Runs `sql` with the run bound as ?1 (and `rowids` as ?2, ?3 when given), calling `body` for each row.
    func each(_ sql: String, rowids: (after: Int64, upTo: Int64)? = nil, _ body: (TraceRow) throws -> Void) throws {
        try guarded {
            let statement = try connection.prepare(sql)
            defer { statement.reset() }
            bindRun(statement)
            if let rowids {
                statement.bind(2, rowids.after)
                statement.bind(3, rowids.upTo)
            }
            let row = TraceRow(statement: statement, warnings: warnings, zone: snapshot.options.timeZone)
            while try statement.step() { try body(row) }
        }
    }

    /// The rowid range filter of a staged query's driving table (`?2 < rowid <= ?3`).
    private func rowidRange(_ alias: String) -> String { "\(alias).rowid > ?2 AND \(alias).rowid <= ?3" }

    /// Rows of `inner`, a SELECT over `table` whose filter includes `rowidRange`, in the order `outer(source)`
    /// gives: `outer` selects from `source` with its own WHERE and ORDER BY.
    ///
    /// SQLite holds the read lock until a sort has read every row it sorts, and in a rollback-journal database a
    /// read lock keeps Parsl's writer from committing: 0.1–0.3 s per sort at 100k tasks, seconds at a million.
    /// So, where a writer may be at work (`stagesSorts`), the rows are first copied into a temporary table in
    /// rowid ranges, each copy a read transaction of its own as short as a pipeline batch, and sorted there, where
    /// no lock on the database is held. That costs about as much again as the sort (a temporary file).
    func eachSorted(table: String, inner: String, outer: (String) -> String, _ body: (TraceRow) throws -> Void) throws {
        guard stagesSorts else {
            try each(outer("(\(inner))"), rowids: (Int64.min, Int64.max), body)
            return
        }
        let stage = "temp.parsl_trace_stage"
        try guarded {
            try connection.execute("DROP TABLE IF EXISTS \(stage)")
            let create = try connection.prepare("CREATE TABLE \(stage) AS SELECT * FROM (\(inner)) LIMIT 0")
            bindRun(create)
            create.bind(2, Int64(0))
            create.bind(3, Int64(0))
            _ = try create.step()
            create.reset()
            try copyInRanges("INSERT INTO \(stage) SELECT * FROM (\(inner))", table: table)
        }
        defer { try? connection.execute("DROP TABLE IF EXISTS \(stage)") }
        try each(outer(stage), body)
    }

    /// Runs `sql` in batches of rows in rowid order, so that each read transaction is short, as the pipeline's
    /// own reads are: `sql` reads `table` with `rowid > ?2 AND rowid <= ?4` and ends with `ORDER BY rowid LIMIT
    /// ?3`; its last column is the rowid. A batch ends after `ReadOptions.lockBudgetMicros`, and ?4 closes a
    /// window of rowids sized by time, so that a filter that passes few rows cannot make one batch walk the whole
    /// table. The statement is reset between batches, which releases the lock.
    func eachByRowid(_ sql: String, table: String, _ body: (TraceRow) throws -> Void) throws {
        let batch: Int64 = 4096
        let highWater = snapshot.highWater(table)
        try guarded {
            let statement = try connection.prepare(sql)
            defer { statement.reset() }
            let row = TraceRow(statement: statement, warnings: warnings, zone: snapshot.options.timeZone)
            let rowid = statement.columnCount - 1
            var after = try firstRowid(table) - 1
            var width: Int64 = 16_384
            while after < highWater {
                let end = highWater - after > width ? after + width : highWater
                statement.reset()
                bindRun(statement)
                statement.bind(2, after)
                statement.bind(3, batch)
                statement.bind(4, end)
                var rows: Int64 = 0
                var stoppedEarly = false
                // Waiting for the other connection's turn at the read gate holds no lock: it does not count.
                let started = monotonicMicros() - connection.readGateWaitMicros
                func elapsed() -> Int64 { max(monotonicMicros() - connection.readGateWaitMicros - started, 1) }
                batchReadObserver?.batchReadStarted()
                while try statement.step() {
                    after = statement.int64(rowid)
                    rows += 1
                    try body(row)
                    if rows & 63 == 0, elapsed() > ReadOptions.lockBudgetMicros {
                        stoppedEarly = true
                        break
                    }
                }
                let lockHeld = elapsed()
                statement.reset()
                try batchReadObserver?.batchReadEnded()
                if rows == batch || stoppedEarly { continue }
                after = end
                width = max(1_024, min(width * 2, width * (ReadOptions.lockBudgetMicros / 2) / lockHeld))
            }
        }
    }

    /// The first rowid of `table` (one b-tree descent), or 1 when it is empty.
    private func firstRowid(_ table: String) throws -> Int64 {
        let first = try connection.prepare("SELECT min(rowid) FROM \(quoteIdentifier(table))")
        defer { first.reset() }
        return try first.step() && !first.isNull(0) ? first.int64(0) : 1
    }

    // MARK: - Queries of the passes

    /// Earliest and latest timestamp of the run in every table, each value parsed. The writer only needs this
    /// up front for an unfinished run (open tries end at the last timestamp) or when its first guess of the
    /// origin proves wrong; otherwise its passes see every timestamp anyway.
    func extent() throws -> (first: Int64, last: Int64)? {
        let columns: [(table: String, column: String)] = [
            ("try", "task_try_time_launched"), ("try", "task_try_time_running"), ("try", "task_try_time_returned"),
            ("status", "timestamp"), ("resource", "timestamp"), ("block", "timestamp"), ("node", "timestamp"),
            ("node", "reg_time"),
        ].filter { has($0.table, $0.column) }
        var first = Int64.max
        var last = Int64.min
        for (table, name) in columns {
            // Node rows fall back to reg_time only where timestamp is missing (as the node pass reads them).
            let only = table == "node" && name == "reg_time" && has("node", "timestamp") ? " AND parsl_us(x.timestamp) IS NULL" : ""
            let sql = """
                SELECT \(quoteIdentifier(name)), x.rowid FROM \(table == "try" ? tries : quoteIdentifier(table)) AS x
                WHERE \(scope(table, "x"))\(only) AND x.rowid > ?2 AND x.rowid <= ?4 ORDER BY x.rowid LIMIT ?3
                """
            try eachByRowid(sql, table: table) { row in
                guard let value = row.time(0) else { return }
                first = min(first, value)
                last = max(last, value)
            }
        }
        return first <= last ? (first, last) : nil
    }

    /// Range of task ids, largest try id and (at most) the number of tries: the geometry of the slot table.
    /// Read from the primary key (try_id, task_id, run_id), so without a scan: the range of task ids of each try
    /// number, over every run (runs number their tasks alike).
    func tryGeometry() throws -> (firstTask: Int64, lastTask: Int64, lastTry: Int64, count: Int64) {
        var geometry: (Int64, Int64, Int64, Int64) = (0, -1, -1, 0)
        guard has("try") else { return geometry }
        // One aggregate per statement: SQLite answers a lone min() or max() from the index's ends.
        func scalar(_ sql: String) throws -> Int64? {
            var value: Int64?
            try each(sql) { value = $0.int(0) }
            return value
        }
        geometry.2 = try scalar("SELECT max(try_id) FROM \"try\"") ?? -1
        geometry.3 = try (scalar("SELECT max(rowid) FROM \"try\"") ?? 0) - (scalar("SELECT min(rowid) FROM \"try\"") ?? 1) + 1
        guard geometry.2 >= 0, geometry.2 < 4096 else {
            // Odd try ids: one scan of the run's tries.
            try each("SELECT min(task_id), max(task_id), max(try_id), count(*) FROM \"try\" AS t WHERE \(scope("try", "t"))") { row in
                geometry = (row.int(0) ?? 0, row.int(1) ?? -1, row.int(2) ?? -1, row.int(3) ?? 0)
            }
            return geometry
        }
        var first = Int64.max
        var last = Int64.min
        for attempt in 0...geometry.2 {
            // Integers sort before text in SQLite: skip text ids (a damaged row) rather than take one for the end.
            let ids = "FROM \"try\" WHERE try_id = \(attempt) AND typeof(task_id) = 'integer'"
            if let low = try scalar("SELECT min(task_id) \(ids)") { first = min(first, low) }
            if let high = try scalar("SELECT max(task_id) \(ids)") { last = max(last, high) }
        }
        return first <= last ? (first, last, geometry.2, geometry.3) : (0, -1, -1, 0)
    }

    /// Tries in the order of their first moment, for the layout pass. Columns: task, try, executor, block,
    /// host, launched, running, returned (timestamp text).
    ///
    /// The order is by the earliest of the three times (`parsl_try_start`), which is a try's start when it ran;
    /// tries that never ran start at their first status row as well, so `notRunRows` gives them in their own
    /// order (they have a process of their own, so the two sequences do not interleave).
    func ranRows(_ body: (RanTry) throws -> Void) throws {
        guard has("try") else { return }
        let times = ["task_try_time_launched", "task_try_time_running", "task_try_time_returned"]
            .map { column("try", $0, "t") }
        let inner = """
            SELECT t.task_id AS l_task, t.try_id AS l_try, \(column("try", "task_executor", "t")) AS executor,
                \(column("try", "block_id", "t")) AS block, \(column("try", "hostname", "t")) AS host,
                \(times[0]) AS launched, \(times[1]) AS running, \(times[2]) AS returned,
                parsl_try_start(\(times.joined(separator: ", "))) AS start
            FROM \(tries) AS t WHERE \(scope("try", "t")) AND \(times[1]) IS NOT NULL
            LIMIT -1 OFFSET 0
            """
        // The staged copy is a temporary table: sorting it holds no lock on the database.
        try each("""
            SELECT l_task, l_try, executor, block, host, launched, running, returned FROM (\(inner))
            WHERE start IS NOT NULL ORDER BY start, l_task, l_try
            """) { row in if let value = RanTry(row) { try body(value) } }
    }

    /// Tries whose running time is missing or does not parse, in the order of their first moment, with the
    /// range of their status rows and their final state. Columns: task, try, executor, block, host, launched,
    /// running, returned (timestamp text), status min, status max, state.
    func notRunRows(_ body: (NotRunTry) throws -> Void) throws {
        guard has("try") else { return }
        let times = ["task_try_time_launched", "task_try_time_running", "task_try_time_returned"]
            .map { column("try", $0, "t") }
        var statusRange = ("NULL", "NULL")
        if hasStatusTry {
            let match =
                "FROM status AS s WHERE s.task_id = l_task AND s.try_id = l_try AND \(scope("status", "s"))"
                + (has("status", "run_id") && has("try", "run_id") ? " AND s.run_id = l_run" : "")
            statusRange = ("(SELECT min(parsl_us(s.timestamp)) \(match))", "(SELECT max(parsl_us(s.timestamp)) \(match))")
        }
        let state = finalStateQuery(task: "l_task", attempt: "l_try", run: "l_run")
        let inner = """
            SELECT *, CASE WHEN smin IS NULL OR (start IS NOT NULL AND start < smin) THEN start ELSE smin END AS key
            FROM (
                SELECT *, \(statusRange.0) AS smin, \(statusRange.1) AS smax, \(state) AS state FROM (
                    SELECT t.task_id AS l_task, t.try_id AS l_try, \(column("try", "run_id", "t")) AS l_run,
                        \(column("try", "task_executor", "t")) AS executor, \(column("try", "block_id", "t")) AS block,
                        \(column("try", "hostname", "t")) AS host,
                        \(times[0]) AS launched, \(times[1]) AS running, \(times[2]) AS returned,
                        parsl_try_start(\(times[0]), \(times[2])) AS start
                    FROM \(tries) AS t WHERE \(scope("try", "t")) AND \(rowidRange("t"))
                        AND (\(times[1]) IS NULL OR parsl_us(\(times[1])) IS NULL)
                    LIMIT -1 OFFSET 0)
                LIMIT -1 OFFSET 0)
            LIMIT -1 OFFSET 0
            """
        try eachSorted(table: "try", inner: inner, outer: { source in
            """
            SELECT l_task, l_try, executor, block, host, launched, running, returned, smin, smax, state
            FROM \(source) WHERE key IS NOT NULL ORDER BY key, l_task, l_try
            """
        }) { row in if let value = NotRunTry(row) { try body(value) } }
    }

    /// The status that decides a try's final state: terminal states first, then the latest (as try_summary).
    private func finalStateQuery(task: String, attempt: String, run: String) -> String {
        guard has("status") else { return "NULL" }
        return TryLifecycle.finalStateSQL(
            task: task, attempt: attempt, run: has("status", "run_id") && has("try", "run_id") ? run : nil,
            statusHasTry: hasStatusTry, filter: scope("status", "s"))
    }

    /// A connection for the lookups a pass makes while it iterates the staged copy: on the pass's own connection a
    /// lookup's read lock would last until the pass's statement ends (SQLite keeps a connection's read transaction
    /// while any of its statements is active), holding Parsl's writer up for the whole pass.
    private func lookupConnection() throws -> SQLiteConnection {
        if let lookups = statements.lookups { return lookups }
        let lookups = try snapshot.database.openConnection()
        lookups.readGate = connection.readGate
        statements.lookups = lookups
        return lookups
    }

    /// The final state of one try (for a try that ran but has no returned time, whose span depends on it).
    func finalState(task: Int64, attempt: Int64) throws -> String? {
        guard has("status") else { return nil }
        var state: String?
        let sql = "SELECT \(finalStateQuery(task: "?2", attempt: "?3", run: "?1"))"
        try guarded {
            let statement = try finalStateStatement ?? lookupConnection().prepare(sql)
            finalStateStatement = statement
            defer { statement.reset() }
            bindRun(statement)
            statement.bind(2, task)
            statement.bind(3, attempt)
            if try statement.step() { state = statement.string(0) }
        }
        return state
    }

    /// Status rows in table order, in batches. Columns: task, try (NULL where the era has none), state, timestamp
    /// text, rowid.
    func statusRows(_ body: (StatusChange) throws -> Void) throws {
        guard has("status") else { return }
        let sql = """
            SELECT s.task_id, \(column("status", "try_id", "s")), s.task_status_name, s.timestamp, s.rowid
            FROM status AS s WHERE \(scope("status", "s")) AND s.rowid > ?2 AND s.rowid <= ?4 ORDER BY s.rowid LIMIT ?3
            """
        let hasTry = hasStatusTry
        try eachByRowid(sql, table: "status") { row in
            if let value = StatusChange(row, hasTry: hasTry) { try body(value) }
        }
    }

    /// Tries in table order with what the slices show. Columns: task, try, app, executor, block, host, (3 unused),
    /// launched, running (timestamp text), fail history, depends, returned (text, read only
    /// to report values that do not parse).
    func tryRows(_ body: (TryDetail) throws -> Void) throws {
        guard has("try") else { return }
        let task = has("task")
        let taskJoin =
            task
            ? " LEFT JOIN task AS k ON k.task_id = t.task_id"
                + (has("task", "run_id") && has("try", "run_id") ? " AND k.run_id = t.run_id" : "") : ""
        let app = task ? column("task", "task_func_name", "k") : "NULL"
        let depends = task ? column("task", "task_depends", "k") : "NULL"
        let sql = """
            SELECT t.task_id, t.try_id, \(app), \(column("try", "task_executor", "t")), \(column("try", "block_id", "t")),
                \(column("try", "hostname", "t")), NULL, NULL, NULL,
                \(column("try", "task_try_time_launched", "t")), \(column("try", "task_try_time_running", "t")),
                \(column("try", "task_fail_history", "t")), \(depends), \(column("try", "task_try_time_returned", "t")),
                t.rowid
            FROM \(tries) AS t\(taskJoin) WHERE \(scope("try", "t")) AND t.rowid > ?2 AND t.rowid <= ?4 ORDER BY t.rowid LIMIT ?3
            """
        try eachByRowid(sql, table: "try") { row in if let value = TryDetail(row) { try body(value) } }
    }

    /// Resource samples in table order, for what each try's samples add up to. Columns: task, try, pid,
    /// resident bytes, user seconds, system seconds.
    func resourceTotals(_ body: (ResourceTotal) throws -> Void) throws {
        guard has("resource", "try_id") else { return }
        let sql = """
            SELECT r.task_id, r.try_id, \(column("resource", "psutil_process_pid", "r")),
                \(column("resource", "psutil_process_memory_resident", "r")),
                \(column("resource", "psutil_process_time_user", "r")), \(column("resource", "psutil_process_time_system", "r")),
                r.rowid
            FROM resource AS r WHERE \(scope("resource", "r")) AND r.rowid > ?2 AND r.rowid <= ?4 ORDER BY r.rowid LIMIT ?3
            """
        try eachByRowid(sql, table: "resource") { row in if let value = ResourceTotal(row) { try body(value) } }
    }

    /// Tasks with dependencies, in table order. Columns: task, depends, rowid.
    func dependencyRows(_ body: (Dependencies) throws -> Void) throws {
        guard has("task", "task_depends") else { return }
        let sql = """
            SELECT k.task_id, k.task_depends, k.rowid FROM task AS k
            WHERE \(scope("task", "k")) AND k.task_depends IS NOT NULL AND k.task_depends != '' AND k.rowid > ?2 AND k.rowid <= ?4
            ORDER BY k.rowid LIMIT ?3
            """
        try eachByRowid(sql, table: "task") { row in if let value = Dependencies(row) { try body(value) } }
    }

    /// Resource samples in time order (ties in table order), with the executor, block and running time of their
    /// try. Columns: pid, time, resident bytes, user seconds, system seconds, executor, block, running (text).
    func resourceRows(_ body: (ResourceSample) throws -> Void) throws {
        guard has("resource", "try_id") else { return }
        let join =
            has("try")
            ? " LEFT JOIN \"try\" AS t ON t.try_id = r.try_id AND t.task_id = r.task_id AND \(scope("try", "t", run: has("resource", "run_id") ? "r.run_id" : "?1"))"
            : ""
        let tryColumn = { (name: String) in has("try") ? column("try", name, "t") : "NULL" }
        let inner = """
            SELECT \(column("resource", "psutil_process_pid", "r")) AS pid,
                parsl_us_checked(r.timestamp, 'resource.timestamp') AS time,
                \(column("resource", "psutil_process_memory_resident", "r")) AS resident,
                \(column("resource", "psutil_process_time_user", "r")) AS user_seconds,
                \(column("resource", "psutil_process_time_system", "r")) AS system_seconds,
                \(tryColumn("task_executor")) AS executor, \(tryColumn("block_id")) AS block,
                \(tryColumn("task_try_time_running")) AS running, r.rowid AS position
            FROM resource AS r\(join) WHERE \(scope("resource", "r")) AND \(rowidRange("r")) LIMIT -1 OFFSET 0
            """
        try eachSorted(table: "resource", inner: inner, outer: { source in
            "SELECT * FROM \(source) WHERE time IS NOT NULL ORDER BY time, position"
        }) { row in if let value = ResourceSample(row) { try body(value) } }
    }

    /// Node snapshots in time order. Columns: block, uid, worker count, active, time.
    func nodeRows(_ body: (NodeSample) throws -> Void) throws {
        guard has("node") else { return }
        let inner = """
            SELECT \(column("node", "block_id", "n")) AS block, \(column("node", "uid", "n")) AS uid,
                \(column("node", "worker_count", "n")) AS workers, \(column("node", "active", "n")) AS active,
                coalesce(\(checked("node", "timestamp", "n")), \(checked("node", "reg_time", "n"))) AS time,
                n.rowid AS position
            FROM node AS n WHERE \(scope("node", "n")) AND \(rowidRange("n")) LIMIT -1 OFFSET 0
            """
        try eachSorted(table: "node", inner: inner, outer: { source in
            "SELECT * FROM \(source) WHERE time IS NOT NULL ORDER BY time, position"
        }) { row in if let value = NodeSample(row) { try body(value) } }
    }

    /// Each block id of the node rows, with the first host they name. Columns: block, host.
    func nodeBlocks(_ body: (NodeBlock) throws -> Void) throws {
        guard has("node") else { return }
        let hosted = has("node", "hostname") ? "n.hostname IS NOT NULL" : "0"
        let time = "coalesce(parsl_us(\(column("node", "timestamp", "n"))), parsl_us(\(column("node", "reg_time", "n"))))"
        let host = has("node", "hostname") ? "n.hostname" : "NULL"
        let inner = """
            SELECT \(column("node", "block_id", "n")) AS block, CASE WHEN \(hosted) THEN n.rowid END AS hosted_row,
                CASE WHEN \(hosted) THEN \(host) END AS host
            FROM node AS n WHERE \(scope("node", "n")) AND \(rowidRange("n")) AND \(time) IS NOT NULL
            LIMIT -1 OFFSET 0
            """
        // Grouping reads every row before the first result, as a sort does. The host is carried in the copy: a
        // lookup in `node` here would hold the database's lock for the whole grouping. With min(), SQLite takes
        // the bare column `host` from the row with the smallest `hosted_row`.
        try eachSorted(table: "node", inner: inner, outer: { source in
            "SELECT block, host FROM (SELECT block, host, min(hosted_row) FROM \(source) GROUP BY block)"
        }) { try body(NodeBlock($0)) }
    }

    /// Earliest and latest time of the run's block rows.
    func blockTimeRange() throws -> (first: Int64, last: Int64)? {
        guard has("block") else { return nil }
        var range: (Int64, Int64)?
        let sql = """
            SELECT min(time), max(time) FROM (SELECT parsl_us(b.timestamp) AS time FROM block AS b
            WHERE \(scope("block", "b")) LIMIT -1 OFFSET 0)
            """
        try each(sql) { row in
            if let first = row.int(0), let last = row.int(1) { range = (first, last) }
        }
        return range
    }

    /// Each block with lifecycle rows. Columns: executor, block.
    func blockKeys(_ body: (BlockName) throws -> Void) throws {
        guard has("block") else { return }
        let sql = """
            SELECT DISTINCT coalesce(\(column("block", "executor_label", "b")), ''), coalesce(\(column("block", "block_id", "b")), '')
            FROM block AS b WHERE \(scope("block", "b")) AND parsl_us(b.timestamp) IS NOT NULL
            """
        try each(sql) { try body(BlockName($0)) }
    }

    /// Block rows by block, then time. Columns: executor, block, status, job id, time.
    func blockRows(_ body: (BlockChange) throws -> Void) throws {
        guard has("block") else { return }
        let sql = """
            SELECT * FROM (SELECT coalesce(\(column("block", "executor_label", "b")), '') AS executor,
                coalesce(\(column("block", "block_id", "b")), '') AS block, coalesce(\(column("block", "status", "b")), '') AS status,
                \(column("block", "job_id", "b")), \(checked("block", "timestamp", "b")) AS time, b.rowid AS position
            FROM block AS b WHERE \(scope("block", "b")) LIMIT -1 OFFSET 0) WHERE time IS NOT NULL
            ORDER BY executor, block, time, position
            """
        try each(sql) { row in if let value = BlockChange(row) { try body(value) } }
    }
}

/// See `TraceSource.batchReadObserver`.
protocol BatchReadObserver: AnyObject {
    func batchReadStarted()
    func batchReadEnded() throws
}
