/// The rows the trace's passes read (`TraceSource`), each decoded here by the value rules every reader applies,
/// so that the layout sees named, typed fields. A row whose key does not decode (a task or try id that is not an
/// integer, a time the pass sorts by that is missing) is left out here, before any of its other cells is read:
/// a value that does not parse is reported by exactly one pass, once.
///
/// The texts that repeat over millions of rows (executor, block, host, app, status name) are `Text`: read only
/// when asked, and comparable by their bytes, so that a pass makes no String per row. Like the rows that carry
/// them, they are valid only inside the callback that receives them.
extension TraceSource {
    /// A text cell of the current row, read only when asked.
    struct Text {
        // Not retained: the pass's statement outlives every row it hands out, and counting references to it for
        // three to six cells a row, over millions of rows, showed in the trace's CPU time.
        fileprivate let statement: Unmanaged<SQLiteStatement>
        fileprivate let column: Int32

        var isNull: Bool { statement._withUnsafeGuaranteedRef { $0.isNull(column) } }

        /// `body` over the cell's UTF-8 bytes, or nil for NULL.
        func withBytes<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T? {
            try statement._withUnsafeGuaranteedRef { $0.isNull(column) ? nil : try $0.withText(column, body) }
        }

        /// The text, with invalid UTF-8 replaced; nil for NULL.
        var string: String? { statement._withUnsafeGuaranteedRef { $0.string(column) } }
    }

    /// Where a try ran or waited: its executor, block and host.
    struct TrySite {
        let executor: Text
        let block: Text
        let host: Text
    }

    /// A try that ran (`ranRows`). Times from the try table, parsed without reporting (`tryRows` reports them).
    struct RanTry {
        let task: Int64
        let attempt: Int64
        let site: TrySite
        let launched: Int64?
        /// Nil when the value does not parse: `notRunRows` then has the try.
        let running: Int64?
        let returned: Int64?

        init?(_ row: borrowing TraceRow) {
            guard let task = row.int(0), let attempt = row.int(1) else { return nil }
            self.task = task
            self.attempt = attempt
            site = row.site(executor: 2, block: 3, host: 4)
            launched = row.time(5)
            running = row.time(6)
            returned = row.time(7)
        }
    }

    /// A try whose running time is missing or does not parse (`notRunRows`), with the range of its status rows
    /// and its final state.
    struct NotRunTry {
        let task: Int64
        let attempt: Int64
        let site: TrySite
        let launched: Int64?
        let returned: Int64?
        let firstStatus: Int64?
        let lastStatus: Int64?
        let finalState: String?

        init?(_ row: borrowing TraceRow) {
            guard let task = row.int(0), let attempt = row.int(1) else { return nil }
            self.task = task
            self.attempt = attempt
            site = row.site(executor: 2, block: 3, host: 4)
            launched = row.time(5)
            returned = row.time(7)
            firstStatus = row.int(8)
            lastStatus = row.int(9)
            finalState = row.text(10)
        }
    }

    /// A status row (`statusRows`). `attempt` is nil where the schema era has no `status.try_id`.
    struct StatusChange {
        let task: Int64
        let attempt: Int64?
        let state: Text
        let time: Int64?

        init?(_ row: borrowing TraceRow, hasTry: Bool) {
            guard let task = row.int(0) else { return nil }
            self.task = task
            attempt = hasTry ? row.int(1, warn: ("status", "try_id")) : nil
            state = row.textCell(2)
            time = row.time(3, warn: ("status", "timestamp"))
        }
    }

    /// A try with what its slices show (`tryRows`). Its three times are read, and reported, here only.
    struct TryDetail {
        let task: Int64
        let attempt: Int64
        let app: Text
        let site: TrySite
        let launched: Int64?
        let running: Int64?
        let failHistory: Text
        /// The task's dependencies as Parsl lists them (`IDList`).
        let depends: Text

        init?(_ row: borrowing TraceRow) {
            guard let task = row.int(0), let attempt = row.int(1) else { return nil }
            self.task = task
            self.attempt = attempt
            app = row.textCell(2)
            site = row.site(executor: 3, block: 4, host: 5)
            launched = row.time(9, warn: ("try", "task_try_time_launched"))
            running = row.time(10, warn: ("try", "task_try_time_running"))
            // Only reported: a slice's end comes from the layout pass.
            _ = row.time(13, warn: ("try", "task_try_time_returned"))
            failHistory = row.textCell(11)
            depends = row.textCell(12)
        }
    }

    /// A resource sample of a try (`resourceTotals`).
    struct ResourceTotal {
        let task: Int64
        let attempt: Int64
        let resident: Double?
        let userSeconds: Double?
        let systemSeconds: Double?
        // The row's reader, not retained (as `Text`), for the pid.
        private let statement: Unmanaged<SQLiteStatement>
        private let warnings: Unmanaged<ValueWarnings>
        private let zone: Unmanaged<TimeZoneConversion>?

        /// The worker's pid, read (and a value that is not an integer reported) when asked: only for samples of
        /// tries the trace has, once each.
        var pid: Int32? {
            let row = SourceRow(
                statement: statement.takeUnretainedValue(), warnings: warnings.takeUnretainedValue(),
                zone: zone?.takeUnretainedValue())
            return row.integer(2, warn: ("resource", "psutil_process_pid")).flatMap { Int32(exactly: $0) }
        }

        init?(_ row: borrowing TraceRow) {
            guard let task = row.int(0), let attempt = row.int(1) else { return nil }
            self.task = task
            self.attempt = attempt
            resident = row.double(3)
            userSeconds = row.double(4)
            systemSeconds = row.double(5)
            statement = Unmanaged.passUnretained(row.statement)
            warnings = Unmanaged.passUnretained(row.warnings)
            zone = row.zone.map(Unmanaged.passUnretained)
        }
    }

    /// A task's dependencies (`dependencyRows`).
    struct Dependencies {
        let task: Int64
        /// As Parsl lists them (`IDList`).
        let depends: Text

        init?(_ row: borrowing TraceRow) {
            guard let task = row.int(0) else { return nil }
            self.task = task
            depends = row.textCell(1)
        }
    }

    /// A resource sample in time order (`resourceRows`), with the executor, block and running time of its try.
    struct ResourceSample {
        let time: Int64
        let pid: Int64?
        let resident: Double?
        let userSeconds: Double?
        let systemSeconds: Double?
        let executor: Text
        let block: Text
        let tryRunning: Int64?

        init?(_ row: borrowing TraceRow) {
            guard let time = row.int(1) else { return nil }
            self.time = time
            pid = row.int(0)
            resident = row.double(2)
            userSeconds = row.double(3)
            systemSeconds = row.double(4)
            executor = row.textCell(5)
            block = row.textCell(6)
            tryRunning = row.time(7)
        }
    }

    /// A node snapshot in time order (`nodeRows`): a manager of a block, with its worker count.
    struct NodeSample {
        let time: Int64
        let block: String?
        let manager: String?
        let workers: Int64?
        let active: Bool?

        init?(_ row: borrowing TraceRow) {
            guard let time = row.int(4) else { return nil }
            self.time = time
            block = row.text(0)
            manager = row.text(1)
            workers = row.int(2)
            active = row.bool(3)
        }
    }

    /// A block id of the node rows, with the first host they name (`nodeBlocks`).
    struct NodeBlock {
        let block: String?
        let host: String?

        init(_ row: borrowing TraceRow) {
            block = row.text(0)
            host = row.text(1)
        }
    }

    /// A block with lifecycle rows (`blockKeys`).
    struct BlockName {
        let executor: String?
        let block: String?

        init(_ row: borrowing TraceRow) {
            executor = row.text(0)
            block = row.text(1)
        }
    }

    /// A block row (`blockRows`).
    struct BlockChange {
        let name: BlockName
        let status: String?
        let job: String?
        let time: Int64

        init?(_ row: borrowing TraceRow) {
            guard let time = row.int(4) else { return nil }
            self.time = time
            name = BlockName(row)
            status = row.text(2)
            job = row.text(3)
        }
    }
}

/// The current row of a trace query, read by the value rules every reader applies (`SourceRow`). Only the
/// source's decoding (above) reads it.
struct TraceRow {
    let statement: SQLiteStatement
    let warnings: ValueWarnings
    let zone: TimeZoneConversion?
    /// Made once per query rather than per cell, which would count references to all three for every value read.
    private let row: SourceRow

    init(statement: SQLiteStatement, warnings: ValueWarnings, zone: TimeZoneConversion?) {
        self.statement = statement
        self.warnings = warnings
        self.zone = zone
        row = SourceRow(statement: statement, warnings: warnings, zone: zone)
    }

    /// A timestamp: an integer column (from `parsl_us`) as is; text parsed as the table reader does, with values
    /// that do not parse reported when `warn` names the column.
    func time(_ column: Int32, warn: (table: String, column: String)? = nil) -> Int64? {
        statement.storageClass(column) == .integer ? statement.int64(column) : row.timestamp(column, warn: warn)
    }

    /// An integer; a whole float is read as one, anything else is NULL. Text that looks like an integer is read
    /// and, like other text, reported when `warn` names the column.
    func int(_ column: Int32, warn: (table: String, column: String)? = nil) -> Int64? {
        row.integer(column, warn: warn)
    }

    /// A number, or NULL for anything else (text that reads as a number is read, and reported with `warn`).
    func double(_ column: Int32, warn: (table: String, column: String)? = nil) -> Double? {
        row.double(column, warn: warn)
    }

    /// Text, with invalid UTF-8 replaced.
    func text(_ column: Int32) -> String? { statement.string(column) }

    /// Text read only when asked.
    fileprivate func textCell(_ column: Int32) -> TraceSource.Text {
        TraceSource.Text(statement: Unmanaged.passUnretained(statement), column: column)
    }

    fileprivate func site(executor: Int32, block: Int32, host: Int32) -> TraceSource.TrySite {
        TraceSource.TrySite(executor: textCell(executor), block: textCell(block), host: textCell(host))
    }

    /// A boolean as Parsl stores it (0/1, or text such as "true").
    func bool(_ column: Int32) -> Bool? { row.boolean(column) }
}
