/// The logical type of an output column, as named in Mappings/.
public enum LogicalType: String, Codable, Sendable, CaseIterable {
    case int64
    case float64
    case text
    case bool
    /// Microseconds since the epoch of the naive wall-clock time (or UTC with `--timezone`).
    case timestamp
    /// Comma-separated task ids, kept as their source text (`"139,140"`); sinks may also expand them.
    case idList = "id-list"
}

/// One output column: what sinks write and what `parsl-export schema` documents.
public struct ColumnSchema: Sendable, Equatable {
    public var name: String
    public var type: LogicalType
    public var nullable: Bool
    public var meaning: String

    public init(name: String, type: LogicalType, nullable: Bool, meaning: String = "") {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.meaning = meaning
    }
}

/// The output schema of one table for one export (mapped columns, then unknown source columns as text).
public struct TableSchema: Sendable, Equatable {
    public var name: String
    public var meaning: String
    public var columns: [ColumnSchema]

    public init(name: String, meaning: String = "", columns: [ColumnSchema]) {
        self.name = name
        self.meaning = meaning
        self.columns = columns
    }

    public func index(of column: String) -> Int? { columns.firstIndex { $0.name == column } }
}

/// Variable-length byte strings stored back to back: value `i` is `bytes[offsets[i]..<offsets[i+1]]`.
public struct TextColumn: Sendable, Equatable {
    public var bytes: [UInt8] = []
    public var offsets: [Int32] = [0]

    public init() {}

    public var count: Int { offsets.count - 1 }

    public mutating func append(_ value: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: value)
        offsets.append(Int32(bytes.count))
    }

    public mutating func append<S: Sequence>(contentsOf value: S) where S.Element == UInt8 {
        bytes.append(contentsOf: value)
        offsets.append(Int32(bytes.count))
    }

    public mutating func appendEmpty() { offsets.append(Int32(bytes.count)) }

    public func withValue<T>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        let start = Int(offsets[index])
        let end = Int(offsets[index + 1])
        return try bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[start..<end])) }
    }

    public func string(at index: Int) -> String { withValue(at: index) { String(decoding: $0, as: UTF8.self) } }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        offsets.append(0)
    }
}

/// The values of one column in a batch. Null slots hold a placeholder (0, false, empty text).
public enum ColumnValues: Sendable, Equatable {
    case int64([Int64])
    case float64([Double])
    case bool([Bool])
    case text(TextColumn)
    case timestamp([Int64])
}

public struct ColumnVector: Sendable, Equatable {
    public var values: ColumnValues
    /// `isNull[i]` is true where row `i` is NULL.
    public var isNull: [Bool]

    public init(values: ColumnValues, isNull: [Bool]) {
        self.values = values
        self.isNull = isNull
    }

    public var nullCount: Int { isNull.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// The value as an optional, for tests and small consumers; sinks read `values` directly.
    public func int64(at row: Int) -> Int64? {
        if isNull[row] { return nil }
        switch values {
        case .int64(let v), .timestamp(let v): return v[row]
        case .bool(let v): return v[row] ? 1 : 0
        default: return nil
        }
    }

    public func double(at row: Int) -> Double? {
        if isNull[row] { return nil }
        switch values {
        case .float64(let v): return v[row]
        case .int64(let v): return Double(v[row])
        default: return nil
        }
    }

    public func string(at row: Int) -> String? {
        if isNull[row] { return nil }
        if case .text(let t) = values { return t.string(at: row) }
        return nil
    }

    public func bool(at row: Int) -> Bool? {
        if isNull[row] { return nil }
        if case .bool(let v) = values { return v[row] }
        return nil
    }
}

/// A run of rows of one table in columnar form; the unit the reader hands to sinks.
public struct RecordBatch: Sendable, Equatable {
    public var schema: TableSchema
    public var columns: [ColumnVector]
    public var rowCount: Int

    public init(schema: TableSchema, columns: [ColumnVector], rowCount: Int) {
        self.schema = schema
        self.columns = columns
        self.rowCount = rowCount
    }

    public func column(_ name: String) -> ColumnVector? { schema.index(of: name).map { columns[$0] } }
}

/// A column's values lent as raw buffers: reading cells through them costs no reference counting, which a loop
/// over every cell of a batch would otherwise pay several times per cell.
public enum BorrowedValues {
    case int64(UnsafeBufferPointer<Int64>)
    case float64(UnsafeBufferPointer<Double>)
    case bool(UnsafeBufferPointer<Bool>)
    case text(bytes: UnsafeBufferPointer<UInt8>, offsets: UnsafeBufferPointer<Int32>)
    case timestamp(UnsafeBufferPointer<Int64>)
}

public struct BorrowedColumn {
    public let values: BorrowedValues
    public let isNull: UnsafeBufferPointer<Bool>
}

extension RecordBatch {
    /// Calls `body` with every column lent as raw buffers, in column order; they are valid only inside `body`.
    ///
    /// An error from `body` is carried out of the nested buffer closures as a value and thrown only once they have
    /// all returned: thrown through them (a generic, recursive `rethrows` chain), it crashed the specialised code
    /// in release builds (Swift 6.3, a full disk during `csv`).
    public func withBorrowedColumns<Result>(_ body: ([BorrowedColumn]) throws -> Result) throws -> Result {
        var borrowed: [BorrowedColumn] = []
        borrowed.reserveCapacity(columns.count)
        var outcome: Swift.Result<Result, any Error>?
        Self.borrow(columns[...], into: &borrowed) { lent in outcome = Swift.Result { try body(lent) } }
        return try outcome!.get()
    }

    /// Pins one column's arrays, then recurses for the rest, so every buffer stays valid while `body` runs.
    private static func borrow(
        _ columns: ArraySlice<ColumnVector>,
        into borrowed: inout [BorrowedColumn],
        _ body: ([BorrowedColumn]) -> Void
    ) {
        guard let column = columns.first else { return body(borrowed) }
        let rest = columns.dropFirst()
        column.isNull.withUnsafeBufferPointer { isNull in
            func lend(_ values: BorrowedValues) {
                borrowed.append(BorrowedColumn(values: values, isNull: isNull))
                borrow(rest, into: &borrowed, body)
            }
            switch column.values {
            case .int64(let values): values.withUnsafeBufferPointer { lend(.int64($0)) }
            case .float64(let values): values.withUnsafeBufferPointer { lend(.float64($0)) }
            case .bool(let values): values.withUnsafeBufferPointer { lend(.bool($0)) }
            case .timestamp(let values): values.withUnsafeBufferPointer { lend(.timestamp($0)) }
            case .text(let text):
                text.bytes.withUnsafeBufferPointer { bytes in
                    text.offsets.withUnsafeBufferPointer { offsets in lend(.text(bytes: bytes, offsets: offsets)) }
                }
            }
        }
    }
}
