/// How a database cell becomes a value of its mapped type: the one rule every reader applies (the table batches of
/// CSV and Parquet, the trace's rows, the metrics' rows). Each read gives the value, or nil, and the problem to report
/// when the cell is not what Parsl writes; the caller records it against its table and column.
enum ValueRules {
    enum Problem: String, Sendable {
        case integerAsText = "integers stored as text (read as numbers)"
        case notInteger = "values that are not integers"
        case fraction = "non-integer numbers in an integer column"
        case numberAsText = "numbers stored as text (read as numbers)"
        case notNumber = "values that are not numbers"
        case notZeroOrOne = "integers other than 0/1 in a boolean column"
        case notBoolean = "values that are not booleans"
        case unparsedTimestamp = "timestamps that do not parse"
    }

    /// An integer: a whole float is read as one; a fraction is NULL (never rounded); text that spells an integer
    /// is read and reported.
    @inline(__always)
    static func integer(_ cell: SQLiteCell) -> (value: Int64?, problem: Problem?) {
        switch cell.storageClass {
        case .null: return (nil, nil)
        case .integer: return (cell.int64, nil)
        case .float:
            let value = cell.double
            if let exact = Int64(exactly: value) { return (exact, nil) }
            return (nil, .fraction)
        default:
            if let parsed = cell.withText(parseInteger) { return (parsed, .integerAsText) }
            return (nil, .notInteger)
        }
    }

    /// A number; text that spells one is read and reported.
    @inline(__always)
    static func double(_ cell: SQLiteCell) -> (value: Double?, problem: Problem?) {
        switch cell.storageClass {
        case .null: return (nil, nil)
        case .integer, .float: return (cell.double, nil)
        default:
            if let text = cell.string, let value = Double(text) { return (value, .numberAsText) }
            return (nil, .notNumber)
        }
    }

    /// A boolean: the integers 0 and 1, or text Parsl or a person writes for one (`parseBoolean`). Any other
    /// integer is NULL, not true.
    @inline(__always)
    static func boolean(_ cell: SQLiteCell) -> (value: Bool?, problem: Problem?) {
        switch cell.storageClass {
        case .null: return (nil, nil)
        case .integer:
            let value = cell.int64
            return value == 0 || value == 1 ? (value == 1, nil) : (nil, .notZeroOrOne)
        default:
            if let value = cell.withText(parseBoolean) { return (value, nil) }
            return (nil, .notBoolean)
        }
    }

    /// A timestamp as microseconds in the export's clock (see `Timestamp.Parsed.micros(in:)`): only text parses.
    @inline(__always)
    static func timestamp(_ cell: SQLiteCell, zone: TimeZoneConversion?) -> (value: Int64?, problem: Problem?) {
        switch cell.storageClass {
        case .null: return (nil, nil)
        case .text:
            if let parsed = cell.withText({ Timestamp.parse($0) }) { return (parsed.micros(in: zone), nil) }
            return (nil, .unparsedTimestamp)
        default: return (nil, .unparsedTimestamp)
        }
    }
}
