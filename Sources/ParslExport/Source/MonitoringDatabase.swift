#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Parsl monitoring database opened read-only: the one place that knows how Parsl's tables map to the model.
public final class MonitoringDatabase {
    public let path: String
    public let schema: SourceSchema
    public let catalog: MappingCatalog
    let connection: SQLiteConnection
    let immutable: Bool
    let busyTimeoutMilliseconds: Int32
    /// The file opened first: every later connection must be on it (see `openConnection`).
    let identity: FileIdentity?
    /// Where this database's connections note their statements, in tests and measurements.
    var passes: TablePasses? {
        didSet { connection.passes = passes }
    }

    /// Opens and checks the file; every failure is an `ExportError` naming the file and the cause.
    public init(path: String, immutable: Bool = false, catalog: MappingCatalog, busyTimeoutMilliseconds: Int32 = 5_000)
        throws
    {
        self.path = path
        self.catalog = catalog
        self.immutable = immutable
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ExportError(.inputMissing, "\(path): \(String(cString: strerror(errno)))")
        }
        if info.st_mode & S_IFMT == S_IFDIR { throw ExportError(.inputMissing, "\(path): is a directory, not a database file") }
        guard access(path, R_OK) == 0 else { throw ExportError(.inputMissing, "\(path): permission denied") }
        if info.st_size == 0 { throw ExportError(.inputInvalid, "\(path): empty file, not a Parsl monitoring database") }
        identity = FileIdentity(info)
        streamedRunKeys = nil
        do {
            connection = try SQLiteConnection(
                path: path,
                immutable: immutable,
                busyTimeoutMilliseconds: busyTimeoutMilliseconds
            )
            schema = try SourceSchema.read(from: connection)
        } catch let error as SQLiteError {
            throw Self.describe(error, path: path)
        }
        try Self.checkNotTruncated(connection: connection, path: path)
        if schema.era == .notParsl {
            throw ExportError(
                .inputInvalid,
                "\(path): SQLite database without Parsl monitoring tables (expected workflow, task, status, …)"
            )
        }
    }

    /// In a `StreamedCopy` of the export's rows, the integer that stands for each run id in its `run_id` columns;
    /// nil in the monitoring database.
    let streamedRunKeys: [String: Int64]?
    /// Whether this is a `StreamedCopy` rather than the monitoring database: private to the export (no writer, no
    /// lock to share) and holding values the value rules already read.
    var isStreamedCopy: Bool { streamedRunKeys != nil }

    /// Opens a filled `StreamedCopy`, immutable: `schema` is what it holds, the columns copied.
    init(streamedCopyAt path: String, schema: SourceSchema, runKeys: [String: Int64], catalog: MappingCatalog) throws {
        self.path = path
        streamedRunKeys = runKeys
        self.schema = schema
        self.catalog = catalog
        immutable = true
        busyTimeoutMilliseconds = 0
        var info = stat()
        identity = stat(path, &info) == 0 ? FileIdentity(info) : nil
        do {
            connection = try SQLiteConnection(path: path, immutable: true, busyTimeoutMilliseconds: 0)
        } catch let error as SQLiteError {
            throw Self.describe(error, path: path)
        }
    }

    private init(sharing database: MonitoringDatabase, connection: SQLiteConnection) {
        path = database.path
        schema = database.schema
        catalog = database.catalog
        immutable = database.immutable
        busyTimeoutMilliseconds = database.busyTimeoutMilliseconds
        identity = database.identity
        streamedRunKeys = database.streamedRunKeys
        self.connection = connection
        passes = database.passes
        connection.passes = passes
    }

    /// Another read-only connection to the same file, for reading on a second thread.
    func openConnection() throws -> SQLiteConnection {
        let connection = try guarded {
            try SQLiteConnection(path: path, immutable: immutable, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        }
        try checkSameFile()
        connection.passes = passes
        return connection
    }

    /// The same database (schema and mappings already read) on a connection of its own, for another thread.
    func onNewConnection() throws -> MonitoringDatabase {
        MonitoringDatabase(sharing: self, connection: try openConnection())
    }

    /// Whether two connections reading at once could hold up a writer. Connections of one process share SQLite's
    /// file lock, so while either is reading the lock stays held, even between the batches of each. That matters
    /// only in a rollback-journal database (in WAL mode readers do not block commits, and an immutable file has no
    /// writer), and only while some run in it is unfinished: Parsl writes a run's rows until it stamps
    /// `time_completed` (a crashed run lacks it too, and counts, to be safe).
    public func overlappingReadsMayStallAWriter() throws -> Bool {
        if immutable { return false }
        let journalMode = try guarded {
            let statement = try connection.prepare("PRAGMA journal_mode")
            defer { statement.reset() }
            return try statement.step() ? statement.string(0)?.lowercased() : nil
        }
        if journalMode == "wal" { return false }
        return try runs().contains { $0.isUnfinished }
    }

    /// A file shorter than the page count in its header lost its tail: SQLite only notices when a query reaches a
    /// missing page, so check up front. The size is taken inside the read transaction that reads the header, so a
    /// writer cannot grow the file in between. With a write-ahead log the header may lag behind: no check then.
    static func checkNotTruncated(connection: SQLiteConnection, path: String) throws {
        var info = stat()
        if stat(path + "-wal", &info) == 0 && info.st_size > 0 { return }
        do {
            try connection.execute("BEGIN")
            defer { try? connection.execute("COMMIT") }
            let pages = try connection.prepare("PRAGMA page_count")
            let size = try connection.prepare("PRAGMA page_size")
            defer {
                pages.reset()
                size.reset()
            }
            guard try pages.step(), try size.step(), stat(path, &info) == 0 else { return }
            let expected = pages.int64(0) * size.int64(0)
            if Int64(info.st_size) < expected {
                throw ExportError(.inputInvalid, "\(path): database is truncated (\(info.st_size) bytes, its header says \(expected))")
            }
        } catch let error as SQLiteError {
            throw describe(error, path: path)
        }
    }

    /// Turns an SQLite failure into a one-line, user-facing error about this file.
    public static func describe(_ error: SQLiteError, path: String) -> ExportError {
        let primary = error.code & 0xff
        switch primary {
        case 26:  // SQLITE_NOTADB
            return ExportError(.inputInvalid, "\(path): not an SQLite database (\(error.message))")
        case 11:  // SQLITE_CORRUPT
            return ExportError(.inputInvalid, "\(path): database is corrupt or truncated (\(error.message))")
        case 5, 6:  // SQLITE_BUSY, SQLITE_LOCKED
            return ExportError(.inputLocked, "\(path): database is locked by another process (\(error.message)); retry later or raise --busy-timeout")
        case 8:  // SQLITE_READONLY: a hot journal needs a rollback that a read-only reader may not do
            return ExportError(
                .inputInvalid,
                "\(path): a writer was interrupted and left a hot rollback journal; open it once read-write (e.g. sqlite3 \(path) 'PRAGMA quick_check') to recover it (\(error.message))"
            )
        case 14:  // SQLITE_CANTOPEN
            return ExportError(.inputMissing, "\(path): cannot open (\(error.message))")
        default:
            return ExportError(.inputInvalid, "\(path): \(error.message)")
        }
    }

    // MARK: Runs

    /// Tasks of each run (empty where the task table has no run ids).
    func taskCountsByRun() throws -> [String: Int64] {
        var counts: [String: Int64] = [:]
        guard schema.has("task", "run_id") else { return counts }
        // By rowid ranges, each a short read transaction: one GROUP BY over the table would hold the lock for as
        // long as the table is large.
        try guarded {
            let statement = try connection.prepare(
                "SELECT run_id, count(*) FROM task WHERE rowid > ?1 AND rowid <= ?2 GROUP BY run_id")
            let (first, last) = try rowidRange(quoteIdentifier("task"))
            try inRowidRanges(from: first - 1, to: last) { from, to in
                statement.bind(1, from)
                statement.bind(2, to)
                while try statement.step() { counts[statement.string(0) ?? "", default: 0] += statement.int64(1) }
                statement.reset()
            }
        }
        return counts
    }

    /// Every run, oldest first.
    public func runs() throws -> [WorkflowRun] {
        var runs: [WorkflowRun] = []
        let reader = try makeReader(table: "workflow", options: ReadOptions(), warnings: ValueWarnings())
        try guarded {
            try reader.read(upTo: Int64.max) { batch in
                if case .runs(let some) = DomainBatch.derive(from: batch) { runs += some }
            }
        }
        return runs.sorted { ($0.began ?? 0, $0.runID) < ($1.began ?? 0, $1.runID) }
    }

    /// Resolves `--run` values (full ids or unique prefixes) and `--latest`; nil means every run.
    public func selectRuns(prefixes: [String], latest: Bool) throws -> [String]? {
        if prefixes.isEmpty && !latest { return nil }
        let all = try runs()
        var selected: [String] = []
        for prefix in prefixes {
            let matches = all.filter { $0.runID.hasPrefix(prefix) }
            guard !matches.isEmpty else { throw ExportError(.usage, "\(path): no run id starts with '\(prefix)'") }
            guard matches.count == 1 else {
                throw ExportError(.usage, "\(path): run id prefix '\(prefix)' is ambiguous (\(matches.count) runs)")
            }
            selected.append(matches[0].runID)
        }
        if latest {
            guard let last = all.last else { throw ExportError(.usage, "\(path): --latest, but the database has no runs") }
            selected.append(last.runID)
        }
        var seen = Set<String>()
        return selected.filter { seen.insert($0).inserted }
    }

    // MARK: Tables

    /// Where a table stands when the export starts: its last rowid (rows after it were committed later and are
    /// left out) and how many rows it holds up to there.
    public struct TableSnapshot: Sendable {
        public var highWater: Int64
        public var rows: Int64
        /// The rows are counted after the table is read (`rowCount(of:upTo:runIDs:)`), not when the snapshot is
        /// taken: a count at the start would hold the read lock for as long as the table is large.
        var countAfterReading = false
    }

    /// Takes each table's snapshot in one short statement of its own, so no lock is held across tables.
    /// `count(*)` may walk an index rather than the table, which also exposes damage a rowid walk would miss.
    /// Tables in `highWaterOnly` (queried by a sink, not streamed, so no count to compare) get only their last
    /// rowid, which SQLite finds without a scan; their `rows` is -1.
    public func snapshots(tables: [String], runIDs: [String]?, highWaterOnly: Set<String> = []) throws
        -> [String: TableSnapshot]
    {
        try guarded {
            var snapshots: [String: TableSnapshot] = [:]
            let counted = Set(tables.map(Self.sourceTable))
            for table in counted.union(highWaterOnly.map(Self.sourceTable)).sorted() where schema.tables[table] != nil {
                if !counted.contains(table) {
                    let statement = try connection.prepare("SELECT max(rowid) FROM \(quoteIdentifier(table))")
                    _ = try statement.step()
                    snapshots[table] = TableSnapshot(highWater: statement.isNull(0) ? 0 : statement.int64(0), rows: -1)
                    continue
                }
                snapshots[table] = try countedSnapshot(of: table, runIDs: runIDs, on: connection)
            }
            if let trySnapshot = snapshots["try"] { snapshots["try_summary"] = trySnapshot }
            return snapshots
        }
    }

    /// One table's snapshot with its row count, taken in one statement (so the two agree) on `connection`; for a
    /// table the database lacks, an empty one.
    func countedSnapshot(of table: String, runIDs: [String]?, on connection: SQLiteConnection? = nil) throws
        -> TableSnapshot
    {
        let table = Self.sourceTable(table)
        guard schema.tables[table] != nil else { return TableSnapshot(highWater: 0, rows: 0) }
        return try guarded {
            // max(rowid) is one b-tree descent: no lock held for long, whatever the table's size.
            let statement = try (connection ?? self.connection).prepare("SELECT max(rowid) FROM \(quoteIdentifier(table))")
            _ = try statement.step()
            return TableSnapshot(highWater: statement.isNull(0) ? 0 : statement.int64(0), rows: 0, countAfterReading: true)
        }
    }

    /// The table a derived table is read from.
    static func sourceTable(_ table: String) -> String { table == "try_summary" ? "try" : table }

    /// The output schema of a table for this database: mapped columns that exist here or that Parsl still writes,
    /// then columns the mappings do not know, as text.
    public func outputSchema(for table: String) -> TableSchema {
        outputPlan(for: table).schema
    }

    /// Columns the source has but the mappings do not describe.
    public func unknownColumns(of table: String) -> [String] {
        guard let mapping = catalog.mapping(for: table), let source = schema.tables[table] else { return [] }
        return source.map(\.name).filter { mapping.column(named: $0) == nil }
    }

    func outputPlan(for table: String) -> (schema: TableSchema, plans: [ColumnPlan]) {
        if table == "try_summary" { return trySummaryPlan() }
        let mapping = catalog.mapping(for: table)
        let source = schema.tables[table] ?? []
        let sourceByName = Dictionary(source.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var columns: [ColumnSchema] = []
        var plans: [ColumnPlan] = []
        for column in mapping?.columns ?? [] {
            let present = sourceByName[column.name]
            guard present != nil || column.isCurrent else { continue }
            columns.append(
                ColumnSchema(
                    name: column.name,
                    type: column.type,
                    nullable: Self.isNullable(column, present),
                    meaning: column.meaning
                )
            )
            plans.append(ColumnPlan(expression: present.map { quoteIdentifier($0.name) }, type: column.type, normalise: column.normalise))
        }
        for extra in source where mapping?.column(named: extra.name) == nil {
            columns.append(ColumnSchema(name: extra.name, type: .text, nullable: true, meaning: "Not in Mappings/: passed through as text."))
            plans.append(ColumnPlan(expression: quoteIdentifier(extra.name), type: .text, normalise: nil))
        }
        return (TableSchema(name: table, meaning: mapping?.meaning ?? "", columns: columns), plans)
    }

    /// Required only where the source declares NOT NULL and the mapping agrees. (A value that does not parse
    /// becomes NULL; a sink that needs the column required then writes it as optional, see `ParquetSink`.)
    static func isNullable(_ column: TableMapping.Column, _ source: SourceColumn?) -> Bool {
        column.nullable || !(source?.notNull ?? false)
    }

    /// `columns`: read only these of the output schema (nil: all of them).
    func makeReader(table: String, columns: Set<String>? = nil, options: ReadOptions, warnings: ValueWarnings) throws
        -> TableReader
    {
        var (outputSchema, plans) = outputPlan(for: table)
        if let columns {
            let kept = outputSchema.columns.indices.filter { columns.contains(outputSchema.columns[$0].name) }
            outputSchema.columns = kept.map { outputSchema.columns[$0] }
            plans = kept.map { plans[$0] }
        }
        return try guarded {
            if table == "try_summary" {
                return try TableReader(
                    connection: connection, schema: outputSchema, plans: plans, from: trySummarySource,
                    rowidExpression: "t.rowid", runColumn: "t.run_id", groupBy: "t.rowid", options: options,
                    warnings: warnings)
            }
            let hasRun = schema.has(table, "run_id")
            return try TableReader(
                connection: connection, schema: outputSchema, plans: plans, from: quoteIdentifier(table),
                rowidExpression: "rowid", runColumn: hasRun ? "run_id" : nil, options: options, warnings: warnings)
        }
    }

    /// Reads `table` up to `highWater` in batches; a missing table yields nothing. `columns` narrows the batches to
    /// those columns (for a table read only for its domain events); nil reads every column.
    public func read(
        table: String,
        snapshot: TableSnapshot,
        columns: Set<String>? = nil,
        options: ReadOptions,
        warnings: ValueWarnings,
        _ body: (RecordBatch) throws -> Void
    ) throws {
        let sourceTable = Self.sourceTable(table)
        guard schema.tables[sourceTable] != nil else { return }
        let reader = try makeReader(table: table, columns: columns, options: options, warnings: warnings)
        try guarded {
            var rows: Int64 = 0
            let first = options.runIDs == nil ? nil : try firstRowid(of: sourceTable)
            try reader.read(upTo: snapshot.highWater, firstRowid: first) { batch in
                var batch = batch
                rows += Int64(batch.rowCount)
                if table == "try_summary" { TrySummary.fillDurations(&batch) }
                try body(batch)
            }
            // A damaged b-tree page can end a rowid-ordered walk early without SQLite reporting an error.
            let expected =
                snapshot.countAfterReading
                ? try rowCount(of: sourceTable, upTo: snapshot.highWater, runIDs: options.runIDs) : snapshot.rows
            guard rows == expected else {
                throw ExportError(
                    .inputInvalid,
                    "\(path): database is corrupt: table \(sourceTable) holds \(expected) rows but only \(rows) could be read in order"
                )
            }
        }
    }

    /// Runs `body`, turning SQLite errors into errors about this file.
    func guarded<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            throw Self.describe(error, path: path)
        }
    }

    public func rowCount(of table: String) throws -> Int64 {
        guard schema.tables[table] != nil else { return 0 }
        return try rowCount(of: table, upTo: Int64.max, runIDs: nil)
    }
}
