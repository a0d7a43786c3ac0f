
/// Values that could not be read as their mapped type: counted per table and column, with the first example.
/// Such values become NULL and the export goes on. Also carries notes about an output that its reader may not
/// open (`note`), printed with them.
public final class ValueWarnings: Sendable {
    public struct Entry: Sendable, Equatable {
        public var table: String
        public var column: String
        public var problem: String
        public var count: Int
        public var firstExample: String
    }

    private let entries = Locked<[String: Entry]>([:])
    private let notes = Locked<[String]>([])

    public init() {}

    public func record(table: String, column: String, problem: String, example: @autoclosure () -> String) {
        let key = table + "\u{0}" + column + "\u{0}" + problem
        entries.withLock { entries in
            if entries[key] != nil {
                entries[key]!.count += 1
            } else {
                var text = example()
                if text.utf8.count > 80 { text = String(text.prefix(77)) + "…" }
                entries[key] = Entry(table: table, column: column, problem: problem, count: 1, firstExample: text)
            }
        }
    }

    /// Records a line about an output rather than a value.
    public func note(_ line: String) { notes.withLock { $0.append(line) } }

    public var all: [Entry] {
        entries.withLock { Array($0.values) }.sorted { ($0.table, $0.column, $0.problem) < ($1.table, $1.column, $1.problem) }
    }

    public var total: Int { all.reduce(0) { $0 + $1.count } }

    /// One line per problem, as printed on stderr after an export.
    public var lines: [String] {
        all.map { "\($0.table).\($0.column): \($0.count) \($0.problem) (first: \(quoted($0.firstExample)))" }
            + notes.withLock { $0 }
    }
}

func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        default: appendEscaped(scalar, to: &out)
        }
    }
    return out + "\""
}
