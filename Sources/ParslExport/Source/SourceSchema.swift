import CParslSQLite

/// A column as the database declares it (`PRAGMA table_info`).
public struct SourceColumn: Sendable, Equatable {
    public var name: String
    public var declaredType: String
    public var notNull: Bool
}

/// The tables and columns a monitoring database actually has, and the Parsl schema era they point to.
public struct SourceSchema: Sendable {
    public var tables: [String: [SourceColumn]]
    /// `CREATE TABLE` text per table, for era details that `table_info` does not show (foreign keys, CHECK).
    public var tableSQL: [String: String]

    public func columns(of table: String) -> [SourceColumn]? { tables[table] }
    public func has(_ table: String, _ column: String) -> Bool {
        tables[table]?.contains { $0.name == column } ?? false
    }

    /// Reads the schema in one short read transaction.
    public static func read(from connection: SQLiteConnection) throws -> SourceSchema {
        try connection.read {
            var tables: [String: [SourceColumn]] = [:]
            var sql: [String: String] = [:]
            let list = try connection.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            var names: [String] = []
            while try list.step() {
                guard let name = list.string(0) else { continue }
                names.append(name)
                sql[name] = list.string(1) ?? ""
            }
            for name in names where !name.hasPrefix("sqlite_") {
                let info = try connection.prepare("PRAGMA table_info(\(quoteIdentifier(name)))")
                var columns: [SourceColumn] = []
                while try info.step() {
                    columns.append(
                        SourceColumn(
                            name: info.string(1) ?? "",
                            declaredType: info.string(2) ?? "",
                            notNull: info.int64(3) != 0
                        )
                    )
                }
                tables[name] = columns
            }
            return SourceSchema(tables: tables, tableSQL: sql)
        }
    }

    /// The Parsl schema era, from the columns each release added or removed (reference: db_manager.py history).
    public var era: SchemaEra {
        let parslTables = ["workflow", "task", "status"]
        guard parslTables.contains(where: { tables[$0] != nil }) else { return .notParsl }
        if tables["try"] == nil {
            if has("node", "reg_time") || (tables["status"] != nil && !has("status", "try_id")) {
                return has("task", "task_time_invoked") || has("resource", "psutil_cpu_num")
                    ? .visualizeVariant : .pre1_1
            }
            return .pre1_1
        }
        if has("resource", "psutil_cpu_num") { return .v2024_03 }
        if has("resource", "psutil_process_cpu_percent") {
            if has("task", "task_fail_cost") { return .v1_2 }
            if has("try", "block_id") { return .v1_1 }
            if has("try", "task_joins") { return .v1_1a1 }
            return .v1_1a0
        }
        let nodeSQL = tableSQL["node"]?.uppercased() ?? ""
        if nodeSQL.contains("BIGINT") { return .v2023_04_24 }
        return .v1_3
    }
}

/// Parsl monitoring schema eras (first and last release of each).
public enum SchemaEra: String, Sendable, CaseIterable {
    case notParsl = "not a Parsl monitoring database"
    case pre1_1 = "Parsl before 1.1.0 (no try/block tables)"
    case visualizeVariant = "parsl-visualize variant (file first created by parsl-visualize; Parsl issue 2266)"
    case v1_1a0 = "Parsl 1.1.0a0"
    case v1_1a1 = "Parsl 1.1.0a1"
    case v1_1 = "Parsl 1.1.0"
    case v1_2 = "Parsl 1.2.0"
    case v1_3 = "Parsl 1.3.0 … 2023.04.17"
    case v2023_04_24 = "Parsl 2023.04.24 … 2024.03.04"
    case v2024_03 = "Parsl 2024.03.11 … 2026.10.26 (current)"
}

/// Quotes an SQL identifier (`"name"`, inner quotes doubled).
func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacing("\"", with: "\"\"") + "\""
}
