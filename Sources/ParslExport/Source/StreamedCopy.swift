import CParslSQLite
import Dispatch

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A private SQLite copy of some columns of the snapshot's tables, filled from the pipeline's batches, for a sink
/// whose ordered and grouped reads (the trace's) would otherwise read the monitoring database again: under `all`
/// the database is then read once, and every output sees each row in the one state the pipeline read.
///
/// Values are copied as the value rules made them: timestamps as microseconds in the export's clock (integers, so
/// no query parses or converts them again), booleans as 0/1, text as read; but a run id, repeated on every row,
/// as a small integer that stands for it in every table (`runKeys`). Rows keep their table order (their
/// rowids are renumbered from 1). The file is a registered temporary file beside the output, removed on finish,
/// abort or interrupt; it is written with no journal (nothing in it needs to survive a crash) and each table is
/// indexed on the keys the reads look rows up by, as the monitoring database's primary keys are.
///
/// The copy is written on a thread of its own, a few batches behind the pipeline, so that the pipeline's reading
/// does not wait for it; only that thread touches the file until `snapshot` has waited for it to finish.
final class StreamedCopy: @unchecked Sendable {
    // @unchecked: everything below `indexes` and `source` belongs to the writing thread until `finished` is
    // signalled, and to the caller of `snapshot` or `remove` after; `work` and `failure` are locked.
    /// The columns to copy, by table; only those the source has are copied.
    let columns: [String: [String]]
    private let source: SourceSchema
    private let path: String
    private var writer: SQLiteConnection?
    private var insert: (table: String, statement: SQLiteStatement, batchColumns: [Int], runColumn: Int?)?
    /// The integer standing for each run id, numbered as first met.
    private var runKeys: [[UInt8]: Int64] = [:]
    private var lastRun: (id: [UInt8], key: Int64)?
    /// Rows copied per table that has ended.
    private var copied: [String: Int64] = [:]
    private var rows: Int64 = 0
    /// Tables whose batches lacked a column to copy: the copy cannot answer for them.
    private var incomplete: Set<String> = []
    private var removed = false

    private enum Work {
        case begin(TableSchema)
        case batch(RecordBatch)
        case end(TableSchema)
        case finish(cancel: Bool)
    }
    private let work = Locked<[Work]>([])
    private let failure = Locked<ExportError?>(nil)
    /// Batches in the queue at most: memory stays a few batches whatever the tables' size.
    private let room = DispatchSemaphore(value: 2)
    private let queued = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var writing = true

    /// The columns each table is indexed on as it fills (what the reads join or look rows up by).
    let indexes: [String: [String]]

    /// Creates the copy's file in `directory`.
    init(directory: String, columns: [String: [String]], indexes: [String: [String]], source: SourceSchema) throws {
        self.columns = columns
        self.indexes = indexes
        self.source = source
        let (path, descriptor) = TemporaryFiles.shared.createFile(in: directory)
        guard descriptor >= 0 else {
            throw ExportError(
                .outputFailed, "\(directory): cannot create a temporary file (\(String(cString: strerror(-descriptor))))")
        }
        close(descriptor)
        self.path = path
        do {
            let writer = try SQLiteConnection(privateFileAt: path)
            // Nothing here must survive a crash: no journal, no syncs, no other process. A small cache: the
            // copy spills to its file, so memory stays flat whatever its size.
            try writer.execute(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE; "
                    + "PRAGMA cache_size = -512; PRAGMA temp_store = FILE; BEGIN")
            self.writer = writer
        } catch let error as SQLiteError {
            writing = false
            remove()
            throw Self.describe(error, path: path)
        }
        startDedicatedThread { [self] in write() }
    }

    /// Starts copying `table`, whose batches have `schema`.
    func begin(_ schema: TableSchema) throws { try enqueue(.begin(schema)) }

    /// Copies a batch of the table begun last.
    func append(_ batch: RecordBatch) throws { try enqueue(.batch(batch)) }

    /// Ends the table begun last.
    func end(_ schema: TableSchema) throws { try enqueue(.end(schema)) }

    private func enqueue(_ item: Work) throws {
        room.wait()
        if let error = failure.withLock({ $0 }) {
            room.signal()
            throw error
        }
        work.withLock { $0.append(item) }
        queued.signal()
    }

    /// The writing thread: takes the queue in order until `finish`; after a failure it only drains it.
    private func write() {
        while true {
            queued.wait()
            let item = work.withLock { $0.removeFirst() }
            room.signal()
            if case .finish(let cancel) = item {
                if !cancel, failure.withLock({ $0 }) == nil {
                    do { try guarded { try writer?.execute("COMMIT") } } catch { record(error) }
                }
                finished.signal()
                return
            }
            guard failure.withLock({ $0 }) == nil else { continue }
            do {
                switch item {
                case .begin(let schema): try start(schema)
                case .batch(let batch): try copy(batch)
                case .end(let schema): seal(schema)
                case .finish: break
                }
            } catch {
                record(error)
            }
        }
    }

    private func record(_ error: any Error) {
        let described = error as? ExportError ?? ExportError(.outputFailed, "\(path): \(error)")
        failure.withLock { if $0 == nil { $0 = described } }
    }

    /// Waits for the writing thread to end (at once, with `cancel`).
    private func finishWriting(cancel: Bool) {
        guard writing else { return }
        writing = false
        room.wait()
        work.withLock { $0.append(.finish(cancel: cancel)) }
        queued.signal()
        finished.wait()
    }

    deinit { remove() }

    /// The columns of `table` that the copy holds: those asked for that the source has.
    private func copiedColumns(of table: String) -> [SourceColumn] {
        let names = Set(columns[table] ?? [])
        return (source.tables[table] ?? []).filter { names.contains($0.name) }
    }

    private func start(_ schema: TableSchema) throws {
        let kept = copiedColumns(of: schema.name)
        guard let writer, columns[schema.name] != nil, !kept.isEmpty else { return }
        let positions = kept.map { schema.index(of: $0.name) }
        guard positions.allSatisfy({ $0 != nil }) else {
            incomplete.insert(schema.name)
            return
        }
        let names = kept.map { quoteIdentifier($0.name) }.joined(separator: ", ")
        let slots = Array(repeating: "?", count: kept.count).joined(separator: ", ")
        try guarded {
            try writer.execute("CREATE TABLE \(quoteIdentifier(schema.name)) (\(names))")
            // Indexed as it fills: rows come in about the order of their task ids, so each entry lands near the
            // index's end, in pages already cached. Built after the fill, the index would be an external sort in
            // the small cache, many merge passes over temporary files at a million tasks.
            let keys = (indexes[schema.name] ?? []).filter { key in kept.contains { $0.name == key } }
            if !keys.isEmpty {
                try writer.execute(
                    "CREATE INDEX \(quoteIdentifier("copy_\(schema.name)")) ON \(quoteIdentifier(schema.name)) "
                        + "(\(keys.map(quoteIdentifier).joined(separator: ", ")))")
            }
            insert = (
                schema.name,
                try writer.prepare("INSERT INTO \(quoteIdentifier(schema.name)) (\(names)) VALUES (\(slots))"),
                positions.map { $0! },
                kept.firstIndex { $0.name == "run_id" }
            )
        }
        rows = 0
    }

    private func copy(_ batch: RecordBatch) throws {
        guard let insert, insert.table == batch.schema.name else { return }
        let statement = insert.statement.statement
        let stepFailure: Int32? = try batch.withBorrowedColumns { lent in
            let used = insert.batchColumns.map { lent[$0] }
            for row in 0..<batch.rowCount {
                for (offset, column) in used.enumerated() {
                    let slot = Int32(offset + 1)
                    if column.isNull[row] {
                        sqlite3_bind_null(statement, slot)
                        continue
                    }
                    if offset == insert.runColumn, case .text(let bytes, let offsets) = column.values {
                        sqlite3_bind_int64(statement, slot, runKey(bytes, from: Int(offsets[row]), to: Int(offsets[row + 1])))
                        continue
                    }
                    switch column.values {
                    case .int64(let values), .timestamp(let values): sqlite3_bind_int64(statement, slot, values[row])
                    case .float64(let values): sqlite3_bind_double(statement, slot, values[row])
                    case .bool(let values): sqlite3_bind_int64(statement, slot, values[row] ? 1 : 0)
                    case .text(let bytes, let offsets):
                        let start = Int(offsets[row])
                        let count = Int32(offsets[row + 1]) - Int32(start)
                        // The batch outlives the step: SQLite may read the bytes in place (SQLITE_STATIC, nil).
                        // Empty text has no bytes to point at; SQLite copies it (none) instead.
                        if count == 0 {
                            sqlite3_bind_text(statement, slot, "", 0, cparslsqlite_transient())
                        } else {
                            sqlite3_bind_text(statement, slot, UnsafeRawPointer(bytes.baseAddress! + start)
                                .assumingMemoryBound(to: CChar.self), count, nil)
                        }
                    }
                }
                let result = sqlite3_step(statement)
                sqlite3_reset(statement)
                guard result == SQLITE_DONE else { return result }
            }
            return nil
        }
        if let stepFailure {
            throw Self.describe(insert.statement.connection.error(stepFailure, sql: insert.statement.sql), path: path)
        }
        rows += Int64(batch.rowCount)
    }

    private func runKey(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int64 {
        let id = UnsafeBufferPointer(rebasing: bytes[start..<end])
        // Rows of one run come together: the run of the row before is the likely one.
        if let last = lastRun, last.id.elementsEqual(id) { return last.key }
        let bytes = Array(id)
        let key = runKeys[bytes] ?? Int64(runKeys.count + 1)
        runKeys[bytes] = key
        lastRun = (bytes, key)
        return key
    }

    private func seal(_ schema: TableSchema) {
        guard let current = insert, current.table == schema.name else { return }
        insert = nil
        copied[schema.name] = rows
    }

    /// Ends the fill and opens the copy read-only as a snapshot of its own, with the export's `warnings` and read
    /// options, its times already in the export's clock; nil when it does not hold every table of `tables` that
    /// the source has, whole. A failure to write it is thrown here, if not already by a batch.
    func snapshot(holding tables: Set<String>, catalog: MappingCatalog, options: ReadOptions, warnings: ValueWarnings)
        throws -> DatabaseSnapshot?
    {
        finishWriting(cancel: false)
        if let error = failure.withLock({ $0 }) { throw error }
        guard writer != nil else { preconditionFailure("a streamed copy is opened once") }
        insert = nil
        writer = nil
        let whole = tables.allSatisfy { table in
            source.tables[table] == nil || copiedColumns(of: table).isEmpty
                || (copied[table] != nil && !incomplete.contains(table))
        }
        guard whole else { return nil }
        var schema = SourceSchema(tables: [:], tableSQL: [:])
        var tables: [String: MonitoringDatabase.TableSnapshot] = [:]
        for (table, count) in copied {
            schema.tables[table] = copiedColumns(of: table)
            tables[table] = MonitoringDatabase.TableSnapshot(highWater: count, rows: count)
        }
        let database = try MonitoringDatabase(
            streamedCopyAt: path, schema: schema,
            // Ids that are not UTF-8 are read with replacement characters everywhere, so two could meet here.
            runKeys: Dictionary(
                runKeys.map { (String(decoding: $0.key, as: UTF8.self), $0.value) }, uniquingKeysWith: min),
            catalog: catalog)
        var copyOptions = options
        copyOptions.timeZone = nil
        return DatabaseSnapshot(database: database, tables: tables, options: copyOptions, warnings: warnings)
    }

    /// Deletes the file (connections still open keep reading it until they close).
    func remove() {
        guard !removed else { return }
        removed = true
        finishWriting(cancel: true)
        insert = nil
        writer = nil
        unlink(path)
        TemporaryFiles.shared.unregister(path)
    }

    private func guarded<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            throw Self.describe(error, path: path)
        }
    }

    /// A failure to write the copy is one of the output's directory (a full disk, most likely).
    private static func describe(_ error: SQLiteError, path: String) -> ExportError {
        ExportError(.outputFailed, "\(path): cannot write a temporary copy of the tables (\(error.message))")
    }
}
