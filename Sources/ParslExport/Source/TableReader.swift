import CParslSQLite

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func monotonicMicros() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
}

/// Options shared by every read of one export.
public struct ReadOptions: Sendable {
    /// Rows per batch, and per read transaction: Parsl's writer can commit between two batches. Kept within
    /// `batchSizes`: a batch's columns are allocated up front.
    public var batchSize: Int {
        get { clampedBatchSize }
        set { clampedBatchSize = min(max(newValue, Self.batchSizes.lowerBound), Self.batchSizes.upperBound) }
    }
    private var clampedBatchSize = 8192
    /// The batch sizes a read takes (the command line refuses others).
    public static let batchSizes = 1...(1 << 20)
    /// Only these runs; nil for all.
    public var runIDs: [String]?
    /// Convert naive timestamps to UTC in this zone; nil keeps them naive.
    public var timeZone: TimeZoneConversion?
    /// A batch ends early once its read transaction has lasted this long.
    public var maximumLockMicros: Int64
    /// How long one batch's read transaction may last: well within the 50 ms a writer may wait, leaving room for
    /// the process being descheduled while it holds the lock.
    public static let lockBudgetMicros: Int64 = 10_000

    public init(
        batchSize: Int = 8192,
        runIDs: [String]? = nil,
        timeZone: TimeZoneConversion? = nil,
        maximumLockMicros: Int64 = ReadOptions.lockBudgetMicros
    ) {
        self.runIDs = runIDs
        self.timeZone = timeZone
        self.maximumLockMicros = maximumLockMicros
        self.batchSize = batchSize
    }
}

/// How one output column is filled: an SQL expression (nil: the source lacks it, so NULL) and a conversion.
struct ColumnPlan {
    var expression: String?
    var type: LogicalType
    var normalise: String?
}

/// Reads one table (or derived query) in rowid order, one short read transaction per batch, converting each value
/// to its mapped logical type straight from the bytes SQLite hands out.
final class TableReader {
    let schema: TableSchema
    private let connection: SQLiteConnection
    private let warnings: ValueWarnings
    private let options: ReadOptions
    private let statement: SQLiteStatement
    /// Maps select-list position to output column, for columns with an expression.
    private let selectPositions: [Int32?]
    /// Each column plan's type and whether it has a `normalise`, kept as plain arrays because the per-cell loop
    /// would otherwise copy (and reference-count) each plan's strings.
    private let types: [LogicalType]
    private let normalised: [Bool]
    /// One per output column, reused for every batch.
    private let builders: UnsafeMutableBufferPointer<ColumnBuilder>

    /// - Parameters:
    ///   - from: the FROM clause; its rowid (as `rowidExpression`) orders and pages the read.
    ///   - runColumn: the column that filters by run when `options.runIDs` is set; nil when the table has none.
    init(
        connection: SQLiteConnection,
        schema: TableSchema,
        plans: [ColumnPlan],
        from: String,
        rowidExpression: String,
        runColumn: String?,
        groupBy: String? = nil,
        options: ReadOptions,
        warnings: ValueWarnings
    ) throws {
        precondition(schema.columns.count == plans.count)
        self.schema = schema
        self.types = plans.map(\.type)
        self.normalised = plans.map { $0.normalise != nil }
        self.connection = connection
        self.warnings = warnings
        self.options = options

        var selectList = [rowidExpression]
        var positions: [Int32?] = []
        for plan in plans {
            if let expression = plan.expression {
                positions.append(Int32(selectList.count))
                selectList.append(expression)
            } else {
                positions.append(nil)
            }
        }
        selectPositions = positions
        var sql = "SELECT " + selectList.joined(separator: ", ") + " FROM " + from
        sql += " WHERE \(rowidExpression) > ?1 AND \(rowidExpression) <= ?2"
        if let runColumn, let runs = options.runIDs {
            sql += " AND \(runColumn) IN (\(sqlList(runs)))"
        }
        if let groupBy { sql += " GROUP BY \(groupBy)" }
        sql += " ORDER BY \(rowidExpression) LIMIT ?3"
        statement = try connection.prepare(sql)
        // Last, so that a failed prepare leaves nothing to free.
        builders = .allocate(capacity: schema.columns.count)
        _ = builders.initialize(from: schema.columns.map { ColumnBuilder(type: $0.type, capacity: options.batchSize) })
    }

    deinit {
        for builder in builders { builder.deallocate() }
        builders.deallocate()
    }

    /// Reads every row with rowid ≤ `highWater` (the table's last rowid when the export started), calling `body`
    /// once per batch, outside the read transaction.
    ///
    /// Each batch is one SELECT, its own read transaction: the shared lock ends at reset, before `body` runs. A
    /// batch also ends once it has held the lock for `maximumLockMicros`, so Parsl's writer never waits long. With
    /// a run filter SQLite may walk many rows it does not return, which that check cannot see: given the table's
    /// first rowid (`firstRowid`), each SELECT then also keeps to a window of rowids sized by how long the last
    /// one took.
    func read(upTo highWater: Int64, firstRowid: Int64? = nil, _ body: (RecordBatch) throws -> Void) throws {
        let windowed = firstRowid != nil && options.runIDs != nil
        var after: Int64 = windowed ? firstRowid! - 1 : Int64.min
        var width: Int64 = 16_384
        while after < highWater {
            let end = windowed && highWater - after > width ? after + width : highWater
            statement.reset()
            statement.bind(1, after)
            statement.bind(2, end)
            statement.bind(3, Int64(options.batchSize))
            // Nothing is left over from a batch that failed half way.
            for index in builders.indices { builders[index].reset() }
            var rows = 0
            var stoppedEarly = false
            let started = monotonicMicros()
            while try statement.step() {
                after = statement.int64(0)
                for index in builders.indices {
                    if let position = selectPositions[index] {
                        append(position: position, column: index, to: &builders[index])
                    } else {
                        builders[index].appendNull()
                    }
                }
                rows += 1
                if rows & 63 == 0, monotonicMicros() - started > options.maximumLockMicros {
                    stoppedEarly = true
                    break
                }
            }
            let elapsed = max(monotonicMicros() - started, 1)
            statement.reset()
            let windowDone = rows < options.batchSize && !stoppedEarly
            if rows > 0 {
                let columns = builders.indices.map { builders[$0].finish() }
                try body(RecordBatch(schema: schema, columns: columns, rowCount: rows))
            }
            guard windowDone else { continue }
            if end >= highWater { return }
            after = end
            // Aim at half the budget: the next window may hold more of the selected rows.
            width = max(1_024, min(width * 2, width * (options.maximumLockMicros / 2) / elapsed))
        }
    }

    private func append(position: Int32, column: Int, to builder: inout ColumnBuilder) {
        let cell = statement.cell(position)
        let storage = cell.storageClass
        if storage == .null {
            builder.appendNull()
            return
        }
        switch types[column] {
        case .text, .idList:
            cell.withText { bytes in
                if isValidUTF8(bytes) {
                    builder.appendText(bytes)
                } else {
                    warn(column, "invalid UTF-8 sequences replaced by U+FFFD", String(decoding: bytes, as: UTF8.self))
                    let repaired = Array(String(decoding: bytes, as: UTF8.self).utf8)
                    repaired.withUnsafeBufferPointer { builder.appendText($0) }
                }
            }
        case .int64:
            let (value, problem) = ValueRules.integer(cell)
            // Text in a normalised column is what the normalisation expects, not a problem.
            if let problem, !(problem == .integerAsText && normalised[column]) { warn(column, problem, cell) }
            if let value { builder.appendInt64(value) } else { builder.appendNull() }
        case .float64:
            let (value, problem) = ValueRules.double(cell)
            if let problem { warn(column, problem, cell) }
            if let value { builder.appendDouble(value) } else { builder.appendNull() }
        case .bool:
            let (value, problem) = ValueRules.boolean(cell)
            if let problem { warn(column, problem, cell) }
            if let value { builder.appendBool(value) } else { builder.appendNull() }
        case .timestamp:
            let (value, problem) = ValueRules.timestamp(cell, zone: options.timeZone)
            if let problem { warn(column, problem, cell) }
            if let value { builder.appendInt64(value) } else { builder.appendNull() }
        }
    }

    private func warn(_ column: Int, _ problem: String, _ example: @autoclosure () -> String) {
        warnings.record(table: schema.name, column: schema.columns[column].name, problem: problem, example: example())
    }

    private func warn(_ column: Int, _ problem: ValueRules.Problem, _ cell: SQLiteCell) {
        warn(column, problem.rawValue, cell.string ?? "")
    }
}

/// Accumulates one column of a batch in buffers of its own, reused from batch to batch: appending to Swift arrays
/// cell by cell checks each array's uniqueness and capacity every time, which cost the reader a tenth of its time.
/// `finish` copies the batch out into the arrays of a `ColumnVector`. A plain struct of pointers (no reference
/// counting in the per-cell loop); its owner calls `deallocate()`.
struct ColumnBuilder {
    let type: LogicalType
    private let isText: Bool
    private let capacity: Int
    private var count = 0
    private let isNull: UnsafeMutablePointer<Bool>
    /// Int64 and timestamp values, or Double bit patterns, or 0/1 for booleans.
    private let words: UnsafeMutablePointer<Int64>
    /// Text: `offsets[i]..<offsets[i + 1]` of `bytes`.
    private let offsets: UnsafeMutablePointer<Int32>
    private var bytes: UnsafeMutablePointer<UInt8>
    private var byteCount = 0
    private var byteCapacity: Int

    init(type: LogicalType, capacity: Int) {
        self.type = type
        self.capacity = capacity
        isText = type == .text || type == .idList
        isNull = .allocate(capacity: capacity)
        words = .allocate(capacity: isText ? 1 : capacity)
        offsets = .allocate(capacity: isText ? capacity + 1 : 1)
        offsets[0] = 0
        byteCapacity = isText ? max(capacity * 16, 64) : 1
        bytes = .allocate(capacity: byteCapacity)
    }

    func deallocate() {
        isNull.deallocate()
        words.deallocate()
        offsets.deallocate()
        bytes.deallocate()
    }

    mutating func appendNull() {
        precondition(count < capacity)
        isNull[count] = true
        if isText {
            offsets[count + 1] = Int32(byteCount)
        } else {
            words[count] = 0
        }
        count += 1
    }

    mutating func appendInt64(_ value: Int64) {
        precondition(count < capacity)
        isNull[count] = false
        words[count] = value
        count += 1
    }

    mutating func appendDouble(_ value: Double) { appendInt64(Int64(bitPattern: value.bitPattern)) }

    mutating func appendBool(_ value: Bool) { appendInt64(value ? 1 : 0) }

    mutating func appendText(_ value: UnsafeBufferPointer<UInt8>) {
        precondition(count < capacity)
        if byteCount + value.count > byteCapacity { growBytes(to: byteCount + value.count) }
        if let base = value.baseAddress { (bytes + byteCount).update(from: base, count: value.count) }
        byteCount += value.count
        isNull[count] = false
        offsets[count + 1] = Int32(byteCount)
        count += 1
    }

    private mutating func growBytes(to needed: Int) {
        var newCapacity = byteCapacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: bytes, count: byteCount)
        bytes.deallocate()
        bytes = grown
        byteCapacity = newCapacity
    }

    mutating func reset() {
        count = 0
        byteCount = 0
    }

    /// The batch so far as a column; the builder is empty again afterwards.
    mutating func finish() -> ColumnVector {
        defer { reset() }
        let nulls = Array(UnsafeBufferPointer(start: isNull, count: count))
        let values = UnsafeBufferPointer(start: words, count: count)
        switch type {
        case .int64: return ColumnVector(values: .int64(Array(values)), isNull: nulls)
        case .timestamp: return ColumnVector(values: .timestamp(Array(values)), isNull: nulls)
        case .float64:
            return ColumnVector(values: .float64(values.map { Double(bitPattern: UInt64(bitPattern: $0)) }), isNull: nulls)
        case .bool: return ColumnVector(values: .bool(values.map { $0 != 0 }), isNull: nulls)
        case .text, .idList:
            var text = TextColumn()
            text.bytes = Array(UnsafeBufferPointer(start: bytes, count: byteCount))
            text.offsets = Array(UnsafeBufferPointer(start: offsets, count: count + 1))
            return ColumnVector(values: .text(text), isNull: nulls)
        }
    }
}

func parseInteger(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
    var index = 0
    var negative = false
    if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
        negative = bytes[index] == UInt8(ascii: "-")
        index += 1
    }
    guard index < bytes.count else { return nil }
    var value: Int64 = 0
    while index < bytes.count {
        let digit = bytes[index] &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        let (times10, o1) = value.multipliedReportingOverflow(by: 10)
        let (sum, o2) = times10.addingReportingOverflow(Int64(digit))
        guard !o1, !o2 else { return nil }
        value = sum
        index += 1
    }
    return negative ? -value : value
}

/// Parsl binds Python bools into TEXT columns as '0'/'1'; other common spellings are accepted too.
func parseBoolean(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
    guard bytes.count <= 5 else { return nil }
    let lowered = String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    switch lowered {
    case "1", "true", "t", "yes": return true
    case "0", "false", "f", "no": return false
    default: return nil
    }
}

func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var index = 0
    let count = bytes.count
    // Almost all of Parsl's text is ASCII: test eight bytes at a time before looking at sequences.
    if let base = bytes.baseAddress {
        let raw = UnsafeRawPointer(base)
        while index + 8 <= count, raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            index += 8
        }
    }
    while index < count {
        let lead = bytes[index]
        if lead < 0x80 {
            index += 1
            continue
        }
        let length: Int
        var minimum: UInt32
        var scalar: UInt32
        switch lead {
        case 0xC2...0xDF: (length, minimum, scalar) = (2, 0x80, UInt32(lead & 0x1F))
        case 0xE0...0xEF: (length, minimum, scalar) = (3, 0x800, UInt32(lead & 0x0F))
        case 0xF0...0xF4: (length, minimum, scalar) = (4, 0x10000, UInt32(lead & 0x07))
        default: return false
        }
        guard index + length <= count else { return false }
        for offset in 1..<length {
            let next = bytes[index + offset]
            guard next & 0xC0 == 0x80 else { return false }
            scalar = scalar << 6 | UInt32(next & 0x3F)
        }
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return false }
        index += length
    }
    return true
}

/// Text values as an SQL list of string literals.
func sqlList(_ values: [String]) -> String {
    values.map { "'" + $0.replacing("'", with: "''") + "'" }.joined(separator: ",")
}

extension Timestamp.Parsed {
    /// Microseconds in the export's clock. A timestamp that carries its offset (`+02:00`, `Z`) is an instant:
    /// it becomes UTC, with or without a zone. A naive one is the wall clock, converted to UTC when a zone is given.
    func micros(in zone: TimeZoneConversion?) -> Int64 {
        if let offset = offsetSeconds { return wallClockMicros - Int64(offset) * 1_000_000 }
        guard let zone else { return wallClockMicros }
        return zone.utcMicros(fromWallClock: wallClockMicros)
    }
}
