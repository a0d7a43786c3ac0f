/// What `parsl-export inspect` reports about a database.
public struct Inspection: Sendable {
    public struct TableInfo: Sendable {
        public var name: String
        public var present: Bool
        public var rows: Int64
        public var unknownColumns: [String]
        public var missingColumns: [String]
    }

    public var path: String
    public var era: SchemaEra
    public var tables: [TableInfo]
    public var runs: [WorkflowRun]
    public var runTaskCounts: [String: Int64]
    public var warnings: [ValueWarnings.Entry]

    /// Reads counts and runs, then every value once so that timestamp and type problems are counted.
    public static func inspect(_ request: ExportRequest) throws -> Inspection {
        let pipeline = ExportPipeline(request: request)
        let database = try pipeline.openDatabase()
        var tables: [TableInfo] = []
        for name in database.catalog.index.tables {
            let present = database.schema.tables[name] != nil
            let mapping = database.catalog.mapping(for: name)
            let source = Set(database.schema.tables[name]?.map(\.name) ?? [])
            let missing = (mapping?.columns ?? []).filter { $0.isCurrent && !source.contains($0.name) }.map(\.name)
            tables.append(
                TableInfo(
                    name: name,
                    present: present,
                    rows: try database.rowCount(of: name),
                    unknownColumns: database.unknownColumns(of: name),
                    missingColumns: present ? missing : []
                )
            )
        }
        var taskCounts: [String: Int64] = [:]
        if database.schema.has("task", "run_id") {
            // By rowid ranges, each a short read transaction: one GROUP BY over the table would hold the lock
            // for as long as the table is large.
            try database.guarded {
                let statement = try database.connection.prepare(
                    "SELECT run_id, count(*) FROM task WHERE rowid > ?1 AND rowid <= ?2 GROUP BY run_id")
                let (first, last) = try database.rowidRange(quoteIdentifier("task"))
                try database.inRowidRanges(from: first - 1, to: last) { from, to in
                    statement.bind(1, from)
                    statement.bind(2, to)
                    while try statement.step() { taskCounts[statement.string(0) ?? "", default: 0] += statement.int64(1) }
                    statement.reset()
                }
            }
        }
        let summary = try pipeline.run(into: DiscardingSink(tables: Set(database.catalog.index.tables)))
        return Inspection(
            path: request.databasePath,
            era: database.schema.era,
            tables: tables,
            runs: try database.runs(),
            runTaskCounts: taskCounts,
            warnings: summary.warnings.all
        )
    }

    /// A plain-text report.
    public func report() -> String {
        var lines: [String] = []
        lines.append("database: \(printable(path))")
        lines.append("schema era: \(era.rawValue)")
        lines.append("")
        lines.append("tables:")
        for table in tables {
            var line = "  " + printable(table.name).padding(12) + (table.present ? String(table.rows).leftPadding(10) + " rows" : "    (absent: read as empty)")
            if !table.missingColumns.isEmpty { line += "; columns this era lacks: " + table.missingColumns.map(printable).joined(separator: ", ") }
            lines.append(line)
            if !table.unknownColumns.isEmpty {
                lines.append("    columns not in Mappings/ (exported as text): " + table.unknownColumns.map(printable).joined(separator: ", "))
            }
        }
        lines.append("")
        lines.append("runs: \(runs.count)")
        for run in runs {
            let state = run.isUnfinished ? "unfinished" : "completed"
            let began = run.began.map(Timestamp.format) ?? "?"
            let ended = run.completed.map(Timestamp.format) ?? "-"
            let tasks = runTaskCounts[run.runID].map { "\($0) tasks" } ?? "0 tasks"
            lines.append("  \(printable(run.runID))  \(run.workflowName.map(printable) ?? "(no name)")  \(began) → \(ended)  \(state), \(tasks)")
        }
        lines.append("")
        if warnings.isEmpty {
            lines.append("value problems: none (every timestamp parses, every value fits its mapped type)")
        } else {
            lines.append("value problems (these values export as NULL or are repaired):")
            for entry in warnings {
                lines.append("  \(entry.table).\(entry.column): \(entry.count) \(entry.problem) (first: \(quoted(entry.firstExample)))")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Reads tables and throws the rows away; used to validate every value.
final class DiscardingSink: ExportSink {
    let demand: SinkDemand
    init(tables: Set<String>) { demand = SinkDemand(tables: tables) }
    func consume(_ event: ExportEvent) throws {}
    func finish() throws -> [String] { [] }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
    func leftPadding(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
