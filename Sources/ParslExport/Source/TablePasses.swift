import CParslSQLite

/// Which passes over the monitoring tables an export makes, from SQLite's own query plans: every statement
/// prepared on a connection of the export is explained once, and each distinct statement whose plan walks a
/// table's rows (a scan, or a rowid range read in batches) counts as one pass over that table, however many
/// batches it runs. Seeks by task, try or rowid and lone min/max are not passes. For tests and
/// measurements: set on an `ExportRequest`, it costs one EXPLAIN per distinct statement.
final class TablePasses: Sendable {
    /// Parsl's tables; temporary copies and staged sorts are not counted.
    static let tables: Set<String> = ["workflow", "task", "try", "status", "resource", "block", "node"]

    private let state = Locked((seen: Set<String>(), passes: [String: [String]](), readOpeners: Set<String>()))

    /// Statements (with numbers blanked) that began a read transaction on the database file when stepped: each
    /// holds its lock, which a writer waits for, until it is reset.
    var readOpeners: Set<String> { state.withLock { $0.readOpeners } }

    func noteReadOpened(by sql: String) {
        let key = Self.blankingNumbers(sql)
        state.withLock { _ = $0.readOpeners.insert(key) }
    }

    /// Statements (with numbers blanked) that made a pass over each table.
    var statements: [String: [String]] { state.withLock { $0.passes } }

    /// Passes per table.
    var counts: [String: Int] { statements.mapValues(\.count) }

    /// Explains `sql` on `connection` (where its temporary tables exist) the first time it is prepared.
    func record(_ sql: String, on connection: OpaquePointer) {
        let key = Self.blankingNumbers(sql)
        // A CREATE ... AS SELECT ... LIMIT 0 copies a query's columns, not its rows; the snapshot's row count is
        // answered from the pages of the smallest b-tree without decoding a row.
        guard !key.hasSuffix("LIMIT #"), !key.hasPrefix("SELECT (SELECT count(*)"), state.withLock({ $0.seen.insert(key).inserted }) else { return }
        let aliases = Self.aliases(in: sql)
        var tables: Set<String> = []
        for detail in Self.plan(of: sql, on: connection) {
            let words = detail.split(separator: " ").map(String.init)
            guard words.count >= 2 else { continue }
            // A whole walk, a rowid range, or a run's rows by index; not a seek by task, try or rowid.
            let walks =
                words[0] == "SCAN" || words[0] == "SEARCH"
                && (detail.contains("(rowid>") || detail.contains("(rowid<") || detail.contains("(run_id=?)"))
            guard walks, let table = aliases[words[1]] ?? (Self.tables.contains(words[1]) ? words[1] : nil) else {
                continue
            }
            tables.insert(table)
        }
        guard !tables.isEmpty else { return }
        state.withLock { state in for table in tables { state.passes[table, default: []].append(key) } }
    }

    private static func plan(of sql: String, on connection: OpaquePointer) -> [String] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(connection, "EXPLAIN QUERY PLAN " + sql, -1, &statement, nil) == SQLITE_OK,
            let statement
        else { return [] }
        defer { sqlite3_finalize(statement) }
        var details: [String] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            if let text = sqlite3_column_text(statement, 3) { details.append(String(cString: text)) }
        }
        return details
    }

    /// `FROM table AS alias` and `JOIN table alias` of Parsl's tables in `sql`.
    private static func aliases(in sql: String) -> [String: String] {
        let words = sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," || $0 == "(" || $0 == ")" })
            .map { String($0.filter { $0 != "\"" }) }
        var aliases: [String: String] = [:]
        for (index, word) in words.enumerated() where (word == "FROM" || word == "JOIN") && index + 1 < words.count {
            let table = words[index + 1]
            guard tables.contains(table) else { continue }
            var next = index + 2
            if next < words.count, words[next] == "AS" { next += 1 }
            if next < words.count { aliases[words[next]] = table }
        }
        return aliases
    }

    private static func blankingNumbers(_ sql: String) -> String {
        var out = ""
        var inNumber = false
        for character in sql {
            if character.isNumber {
                if !inNumber { out.append("#") }
                inNumber = true
            } else {
                inNumber = false
                out.append(character)
            }
        }
        return out
    }
}
