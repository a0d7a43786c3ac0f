import CParslSQLite

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An error from SQLite, with the statement that failed when there was one.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public let sql: String?

    /// SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock.
    public var isBusy: Bool { code & 0xff == SQLITE_BUSY || code & 0xff == SQLITE_LOCKED }
    /// The file is not a database, or is damaged.
    public var isCorrupt: Bool { code & 0xff == SQLITE_NOTADB || code & 0xff == SQLITE_CORRUPT }

    public var description: String {
        if let sql { return "SQLite error \(code): \(message) (while executing `\(sql)`)" }
        return "SQLite error \(code): \(message)"
    }
}

/// A read-only SQLite connection. Not thread-safe: confine each connection to one thread at a time.
public final class SQLiteConnection {
    let handle: OpaquePointer
    /// Connections of one process share SQLite's file lock, so while any of them is reading the lock stays held,
    /// even between the batches of each. Connections given the same gate take turns, one read transaction at a
    /// time, so the lock is released between them and a writer waiting to commit gets in. Set it only where a
    /// writer may be at work: it costs the readers their overlap.
    var readGate: ReadGate?
    private var holdsReadGate = false
    /// Where statements prepared here are noted, in tests and measurements (see `TablePasses`).
    var passes: TablePasses?
    /// Time spent waiting for `readGate`, so that a read timing itself can leave out the other connection's turn.
    private(set) var readGateWaitMicros: Int64 = 0

    /// Opens `path` read-only through a `file:` URI (`mode=ro`, and `immutable=1` when asked), so the source is
    /// never modified; `busyTimeoutMilliseconds` bounds how long a read waits for a writer's lock.
    public init(path: String, immutable: Bool = false, busyTimeoutMilliseconds: Int32 = 5_000) throws {
        var uri = "file:" + Self.percentEncodedPath(path) + "?mode=ro"
        if immutable { uri += "&immutable=1" }
        handle = try Self.open(uri, flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    /// Opens, read-write, a temporary file this process has just created for itself (a `StreamedCopy`); never a
    /// monitoring database, which is only ever opened read-only (above).
    init(privateFileAt path: String) throws {
        handle = try Self.open(path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW)
    }

    private static func open(_ name: String, flags: Int32) throws -> OpaquePointer {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(name, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: message, sql: nil)
        }
        sqlite3_extended_result_codes(db, 1)
        return db
    }

    deinit { sqlite3_close_v2(handle) }

    /// Escapes the bytes that would end the path part of a URI or start an escape.
    static func percentEncodedPath(_ path: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in path.utf8 {
            if byte == UInt8(ascii: "%") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc, sql: sql) }
        passes?.record(sql, on: handle)
        return SQLiteStatement(statement: statement, connection: self, sql: sql)
    }

    public func execute(_ sql: String) throws {
        enterReadGate()
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        leaveReadGateIfIdle()
        guard rc == SQLITE_OK else { throw error(rc, sql: sql) }
    }

    /// Takes the gate before a statement may start a read transaction on the database file.
    func enterReadGate() {
        guard let readGate, !holdsReadGate, sqlite3_txn_state(handle, "main") == SQLITE_TXN_NONE else { return }
        let started = monotonicMicros()
        readGate.lock()
        readGateWaitMicros += monotonicMicros() - started
        holdsReadGate = true
    }

    /// Gives the gate back once no read transaction is open (statements of the temporary schema open none).
    func leaveReadGateIfIdle() {
        guard holdsReadGate, sqlite3_txn_state(handle, "main") == SQLITE_TXN_NONE else { return }
        holdsReadGate = false
        readGate?.unlock()
    }

    /// Runs `body` inside one read transaction. Keep the body short: in rollback-journal mode a reader's
    /// shared lock makes Parsl's writer wait.
    public func read<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    /// Bytes 24–27 of the database header (SQLite's file change counter), read through SQLite's own descriptor:
    /// opening and closing the file anew would drop every lock this process holds on it (POSIX locks belong to
    /// the process, and any close releases them), in the middle of a read transaction.
    func fileChangeCounter() -> UInt32? {
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard sqlite3_file_control(handle, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK, let file,
            let read = file.pointee.pMethods?.pointee.xRead
        else { return nil }
        var bytes = [UInt8](repeating: 0, count: 4)
        guard read(file, &bytes, 4, 24) == SQLITE_OK else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    func error(_ rc: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }
}

/// A prepared statement. Column accessors are valid only for the current row.
public final class SQLiteStatement {
    let statement: OpaquePointer
    /// Strong: a statement may outlive the code that opened its connection, and its `deinit` still needs it.
    let connection: SQLiteConnection
    public let sql: String

    init(statement: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.statement = statement
        self.connection = connection
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(statement)
        connection.leaveReadGateIfIdle()
    }

    public func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        connection.leaveReadGateIfIdle()
    }

    public func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(statement, index, value) }

    public func bind(_ index: Int32, _ value: String) {
        sqlite3_bind_text(statement, index, value, -1, cparslsqlite_transient())
    }

    /// Advances to the next row; false when done.
    public func step() throws -> Bool {
        connection.enterReadGate()
        let readWasOpen = connection.passes != nil && sqlite3_txn_state(connection.handle, "main") != SQLITE_TXN_NONE
        let rc = sqlite3_step(statement)
        if let passes = connection.passes, !readWasOpen,
            sqlite3_txn_state(connection.handle, "main") != SQLITE_TXN_NONE
        {
            passes.noteReadOpened(by: sql)
        }
        // A row of a statement that reads only temporary tables leaves no read transaction open: give the gate back.
        connection.leaveReadGateIfIdle()
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, sql: sql)
        }
    }

    public var columnCount: Int32 { sqlite3_column_count(statement) }

    public func columnName(_ index: Int32) -> String { String(cString: sqlite3_column_name(statement, index)) }

    public func storageClass(_ index: Int32) -> StorageClass {
        StorageClass(rawValue: sqlite3_column_type(statement, index)) ?? .null
    }

    public func isNull(_ index: Int32) -> Bool { sqlite3_column_type(statement, index) == SQLITE_NULL }
    public func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(statement, index) }
    public func double(_ index: Int32) -> Double { sqlite3_column_double(statement, index) }

    /// The column's text bytes, without copying; valid until the next step.
    public func withText<T>(_ index: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        let pointer = sqlite3_column_text(statement, index)
        let count = Int(sqlite3_column_bytes(statement, index))
        return try body(UnsafeBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }

    public func string(_ index: Int32) -> String? {
        if isNull(index) { return nil }
        return withText(index) { String(decoding: $0, as: UTF8.self) }
    }

    /// The column's value in the current row, for reading it with one call into SQLite's statement API instead of
    /// one per accessor (each `sqlite3_column_*` call checks the statement and its error state again).
    func cell(_ index: Int32) -> SQLiteCell { SQLiteCell(value: sqlite3_column_value(statement, index)) }
}

/// One value of the current row, valid until the statement steps or resets. It is SQLite's unprotected value, which
/// is safe to read here because a connection is confined to one thread at a time.
struct SQLiteCell {
    let value: OpaquePointer?

    var storageClass: StorageClass {
        // A switch the compiler inlines: `StorageClass(rawValue:)` is a call per cell.
        switch sqlite3_value_type(value) {
        case SQLITE_INTEGER: .integer
        case SQLITE_FLOAT: .float
        case SQLITE_TEXT: .text
        case SQLITE_BLOB: .blob
        default: .null
        }
    }
    var int64: Int64 { sqlite3_value_int64(value) }
    var double: Double { sqlite3_value_double(value) }

    /// The value's text bytes (converted to text when it is not), without copying.
    func withText<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        let pointer = sqlite3_value_text(value)
        let count = Int(sqlite3_value_bytes(value))
        return try body(UnsafeBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }

    var string: String? {
        storageClass == .null ? nil : withText { String(decoding: $0, as: UTF8.self) }
    }
}

/// SQLite's storage classes (the type of a value, not of its column).
public enum StorageClass: Int32, Sendable {
    case integer = 1
    case float = 2
    case text = 3
    case blob = 4
    case null = 5
}

/// The arguments of one call of an SQL function written in Swift; valid during the call only.
public struct SQLiteArguments {
    let values: UnsafeMutablePointer<OpaquePointer?>?
    public let count: Int

    public func storageClass(_ index: Int) -> StorageClass {
        StorageClass(rawValue: sqlite3_value_type(values![index])) ?? .null
    }

    public func int64(_ index: Int) -> Int64 { sqlite3_value_int64(values![index]) }

    /// The argument's text bytes (the value converted to text when it is not).
    public func withText<T>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        let pointer = sqlite3_value_text(values![index])
        let count = Int(sqlite3_value_bytes(values![index]))
        return try body(UnsafeBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }
}

private final class SQLiteFunctionBody {
    let body: (SQLiteArguments) -> Int64?
    init(_ body: @escaping (SQLiteArguments) -> Int64?) { self.body = body }
}

extension SQLiteConnection {
    /// Registers a deterministic SQL function computed by `body`, which returns an integer or nil for NULL.
    /// `arguments` is its arity, or -1 for any. The function lives as long as the connection.
    public func createFunction(
        _ name: String,
        arguments: Int32,
        _ body: @escaping (SQLiteArguments) -> Int64?
    ) throws {
        let box = Unmanaged.passRetained(SQLiteFunctionBody(body)).toOpaque()
        let call: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = {
            context, count, values in
            let function = Unmanaged<SQLiteFunctionBody>.fromOpaque(sqlite3_user_data(context)!).takeUnretainedValue()
            if let value = function.body(SQLiteArguments(values: values, count: Int(count))) {
                sqlite3_result_int64(context, value)
            } else {
                sqlite3_result_null(context)
            }
        }
        let destroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { pointer in
            if let pointer { Unmanaged<SQLiteFunctionBody>.fromOpaque(pointer).release() }
        }
        let rc = sqlite3_create_function_v2(
            handle, name, arguments, SQLITE_UTF8 | SQLITE_DETERMINISTIC, box, call, nil, nil, destroy)
        guard rc == SQLITE_OK else { throw error(rc, sql: nil) }
    }
}

/// A lock that connections hold across each read transaction (see `SQLiteConnection.readGate`), granted in the
/// order asked: a plain mutex lets the connection that just gave it up take it again at once, batch after batch,
/// while the other waits.
///
/// `@unchecked Sendable`: the pthread mutex is the synchronisation. Not `Locked`: the gate is held from one call
/// (a statement's first step) to another (its reset), not around a closure.
final class ReadGate: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let turn: UnsafeMutablePointer<pthread_cond_t>
    private var nextTicket: UInt64 = 0
    private var serving: UInt64 = 0

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        turn = .allocate(capacity: 1)
        pthread_cond_init(turn, nil)
    }

    deinit {
        pthread_cond_destroy(turn)
        turn.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() {
        pthread_mutex_lock(mutex)
        let ticket = nextTicket
        nextTicket += 1
        while serving != ticket { pthread_cond_wait(turn, mutex) }
        pthread_mutex_unlock(mutex)
    }

    func unlock() {
        pthread_mutex_lock(mutex)
        serving += 1
        pthread_cond_broadcast(turn)
        pthread_mutex_unlock(mutex)
    }
}
