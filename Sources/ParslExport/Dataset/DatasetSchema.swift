/// One schema per table for every partition of a dataset, whatever the schema era of the database a run came from:
/// every mapped column, in the mappings' order, all nullable. Readers that take a table's schema from one file
/// (Spark, pyarrow.dataset, polars) then read every run alike, without `union_by_name` or schema merging. Source
/// columns the mappings do not describe are left out (describe them with `--mappings` to keep them).
public struct DatasetSchema: Sendable {
    /// The try_summary column that names a task across runs (see `TaskKeys`).
    public static let taskKeyColumn = "task_key"

    public let tables: [String: TableSchema]

    public init(catalog: MappingCatalog) {
        var tables: [String: TableSchema] = [:]
        for name in catalog.tableNames {
            guard let mapping = catalog.mapping(for: name) else { continue }
            var columns = mapping.columns.map {
                ColumnSchema(name: $0.name, type: $0.type, nullable: true, meaning: $0.meaning)
            }
            if name == "try_summary" {
                columns.append(
                    ColumnSchema(
                        name: Self.taskKeyColumn, type: .text, nullable: true,
                        meaning: "The task across runs: 'hashsum:' and Parsl's task_hashsum where it recorded one (memoized apps), else 'app:<task_func_name>#<n>', the task's rank among its app's tasks in the run."
                    ))
            }
            tables[name] = TableSchema(name: name, meaning: mapping.meaning, columns: columns)
        }
        self.tables = tables
    }

    /// `batch` with the dataset's columns: the ones the source had, and NULL for the others.
    func conform(_ batch: RecordBatch, to schema: TableSchema, taskKeys: TaskKeys?) -> RecordBatch {
        var columns: [ColumnVector] = []
        columns.reserveCapacity(schema.columns.count)
        for column in schema.columns {
            if column.name == Self.taskKeyColumn, let taskKeys {
                columns.append(taskKeys.column(for: batch))
            } else if let index = batch.schema.index(of: column.name), batch.schema.columns[index].type == column.type {
                columns.append(batch.columns[index])
            } else {
                columns.append(Self.nullColumn(column.type, rows: batch.rowCount))
            }
        }
        return RecordBatch(schema: schema, columns: columns, rowCount: batch.rowCount)
    }

    static func nullColumn(_ type: LogicalType, rows: Int) -> ColumnVector {
        let isNull = [Bool](repeating: true, count: rows)
        switch type {
        case .int64: return ColumnVector(values: .int64(Array(repeating: 0, count: rows)), isNull: isNull)
        case .timestamp: return ColumnVector(values: .timestamp(Array(repeating: 0, count: rows)), isNull: isNull)
        case .float64: return ColumnVector(values: .float64(Array(repeating: 0, count: rows)), isNull: isNull)
        case .bool: return ColumnVector(values: .bool(Array(repeating: false, count: rows)), isNull: isNull)
        case .text, .idList:
            var text = TextColumn()
            text.offsets = Array(repeating: 0, count: rows + 1)
            return ColumnVector(values: .text(text), isNull: isNull)
        }
    }
}

/// The logical identity of each task of one run, so that "the same task in every run" is one GROUP BY: Parsl's
/// `task_hashsum` where it recorded one (only memoized apps get one), otherwise the app name and the task's rank
/// among that app's tasks in the run (task ids restart at 0 in every run, but interleave differently when apps
/// are submitted concurrently; the rank within one app does not, as long as the workflow submits that app's
/// tasks in the same order).
public struct TaskKeys: Sendable {
    private let keys: [Int64: String]

    public init(keys: [Int64: String]) { self.keys = keys }

    /// Keys from `(task_id, task_func_name, task_hashsum)` rows of one run.
    public init(tasks: [(id: Int64, app: String?, hashsum: String?)]) {
        var rank: [String: Int] = [:]
        var keys: [Int64: String] = [:]
        for task in tasks.sorted(by: { $0.id < $1.id }) {
            let app = task.app ?? ""
            let ordinal = rank[app, default: 0]
            rank[app] = ordinal + 1
            if let hashsum = task.hashsum, !hashsum.isEmpty {
                keys[task.id] = "hashsum:" + hashsum
            } else {
                keys[task.id] = "app:\(app)#\(ordinal)"
            }
        }
        self.keys = keys
    }

    public func key(for taskID: Int64) -> String? { keys[taskID] }

    /// Reads the keys of `runID` from `database`.
    public static func read(from database: MonitoringDatabase, runID: String) throws -> TaskKeys {
        let snapshot = try database.snapshots(tables: ["task"], runIDs: [runID])["task"]
        guard let snapshot else { return TaskKeys(keys: [:]) }
        var tasks: [(id: Int64, app: String?, hashsum: String?)] = []
        try database.read(
            table: "task", snapshot: snapshot, options: ReadOptions(runIDs: [runID]), warnings: ValueWarnings()
        ) { batch in
            guard let ids = batch.column("task_id") else { return }
            let apps = batch.column("task_func_name")
            let hashsums = batch.column("task_hashsum")
            for row in 0..<batch.rowCount {
                guard let id = ids.int64(at: row) else { continue }
                tasks.append((id, apps?.string(at: row), hashsums?.string(at: row)))
            }
        }
        return TaskKeys(tasks: tasks)
    }

    func column(for batch: RecordBatch) -> ColumnVector {
        var text = TextColumn()
        var isNull = [Bool](repeating: true, count: batch.rowCount)
        let ids = batch.column("task_id")
        for row in 0..<batch.rowCount {
            if let id = ids?.int64(at: row), let key = keys[id] {
                text.append(contentsOf: key.utf8)
                isNull[row] = false
            } else {
                text.appendEmpty()
            }
        }
        return ColumnVector(values: .text(text), isNull: isNull)
    }
}

/// Hands the pipeline's tables to a sink in the dataset's schema, try_summary with its task keys.
final class DatasetSchemaSink: LaneSplittingSink, TableReplayingSink {
    private let inner: any ExportSink
    private let schema: DatasetSchema
    private let taskKeys: TaskKeys

    init(inner: any ExportSink, schema: DatasetSchema, taskKeys: TaskKeys) {
        self.inner = inner
        self.schema = schema
        self.taskKeys = taskKeys
    }

    var demand: SinkDemand { inner.demand }

    func consume(_ event: ExportEvent) throws {
        switch event {
        case .tableStart(let source): try inner.consume(.tableStart(target(source)))
        case .tableEnd(let source): try inner.consume(.tableEnd(target(source)))
        case .batch(let batch):
            let target = target(batch.schema)
            let keys = batch.schema.name == "try_summary" ? taskKeys : nil
            try inner.consume(.batch(schema.conform(batch, to: target, taskKeys: keys)))
        case .start, .domain: try inner.consume(event)
        }
    }

    private func target(_ source: TableSchema) -> TableSchema { schema.tables[source.name] ?? source }

    func prepare() throws { try inner.prepare() }
    func finish() throws -> [String] { try inner.finish() }
    func abort() { inner.abort() }
    func replayTargets() -> [any ExportSink] { inner.pendingReplayTargets.isEmpty ? [] : [self] }

    func laneSibling() -> (any ExportSink)? {
        inner.splitLaneSibling.map { DatasetSchemaSink(inner: $0, schema: schema, taskKeys: taskKeys) }
    }
}
