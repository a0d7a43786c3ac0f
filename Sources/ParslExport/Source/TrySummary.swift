/// The derived try_summary table: each try joined with its task, its final status and its resource samples.
/// The joins run in SQLite, on the primary-key indexes, one batch of tries at a time. What a try's times and
/// statuses mean is `TryLifecycle`'s, shared with the trace and the metrics.
enum TrySummary {}

extension MonitoringDatabase {
    /// The FROM clause of the try_summary query; resource joins in only where its rows name their try.
    var trySummarySource: String {
        var from = "\"try\" AS t LEFT JOIN task AS k ON k.task_id = t.task_id AND k.run_id = t.run_id"
        if schema.tables["resource"] != nil && schema.has("resource", "try_id") {
            from += " LEFT JOIN resource AS r ON r.try_id = t.try_id AND r.task_id = t.task_id AND r.run_id = t.run_id"
        }
        return from
    }

    func trySummaryPlan() -> (schema: TableSchema, plans: [ColumnPlan]) {
        let mapping = catalog.mapping(for: "try_summary")
        let hasStatusTry = schema.has("status", "try_id")
        let hasResource = schema.tables["resource"] != nil && schema.has("resource", "try_id")
        // One LEFT JOIN grouped per try costs one index seek into resource, where a subquery per aggregate cost four.
        func resource(_ aggregate: String) -> String? { hasResource ? aggregate : nil }
        func tryColumn(_ name: String) -> String? { schema.has("try", name) ? "t.\(quoteIdentifier(name))" : nil }
        func taskColumn(_ name: String) -> String? { schema.has("task", name) ? "k.\(quoteIdentifier(name))" : nil }
        let finalState: String? =
            schema.tables["status"] == nil
            ? nil
            : TryLifecycle.finalStateSQL(task: "t.task_id", attempt: "t.try_id", run: "t.run_id", statusHasTry: hasStatusTry)
        let expressions: [String: String?] = [
            "run_id": "t.run_id",
            "task_id": "t.task_id",
            "try_id": "t.try_id",
            "task_func_name": taskColumn("task_func_name"),
            "task_executor": tryColumn("task_executor"),
            "block_id": tryColumn("block_id"),
            "hostname": tryColumn("hostname"),
            "worker_pid": resource("max(r.psutil_process_pid)"),
            "launched": tryColumn("task_try_time_launched"),
            "running": tryColumn("task_try_time_running"),
            "returned": tryColumn("task_try_time_returned"),
            "final_state": finalState,
            "queue_wait_seconds": nil,
            "run_time_seconds": nil,
            "fail_reason": tryColumn("task_fail_history"),
            "peak_rss_bytes": resource("CAST(max(r.psutil_process_memory_resident) AS INTEGER)"),
            "cpu_seconds": resource(
                "round(max(r.psutil_process_time_user + r.psutil_process_time_system) - min(r.psutil_process_time_user + r.psutil_process_time_system), 6)"
            ),
            "resource_samples": resource("count(r.rowid)") ?? "0",
            "task_depends": taskColumn("task_depends"),
        ]
        var columns: [ColumnSchema] = []
        var plans: [ColumnPlan] = []
        for column in mapping?.columns ?? [] {
            let expression = expressions[column.name] ?? nil
            let derived = column.name == "queue_wait_seconds" || column.name == "run_time_seconds"
            // The join can only promise NOT NULL where the try table itself declares it.
            let sourceNotNull = schema.tables["try"]?.first { $0.name == column.name }?.notNull ?? false
            columns.append(
                ColumnSchema(
                    name: column.name,
                    type: column.type,
                    nullable: column.nullable || (expression == nil && !derived) || (!derived && column.name != "resource_samples" && !sourceNotNull),
                    meaning: column.meaning
                )
            )
            plans.append(ColumnPlan(expression: expression, type: column.type, normalise: nil))
        }
        return (TableSchema(name: "try_summary", meaning: mapping?.meaning ?? "", columns: columns), plans)
    }
}

extension TrySummary {
    /// Queue wait and run time from the parsed timestamps (`TryLifecycle`).
    static func fillDurations(_ batch: inout RecordBatch) {
        guard let launched = batch.column("launched"), let running = batch.column("running"),
            let returned = batch.column("returned"),
            let waitIndex = batch.schema.index(of: "queue_wait_seconds"),
            let runIndex = batch.schema.index(of: "run_time_seconds")
        else { return }
        func seconds(_ from: ColumnVector, _ to: ColumnVector, _ span: (Int64?, Int64?) -> Int64?) -> ColumnVector {
            var values = [Double](repeating: 0, count: batch.rowCount)
            var isNull = [Bool](repeating: true, count: batch.rowCount)
            for row in 0..<batch.rowCount {
                guard let micros = span(from.int64(at: row), to.int64(at: row)) else { continue }
                values[row] = Double(micros) / 1_000_000
                isNull[row] = false
            }
            return ColumnVector(values: .float64(values), isNull: isNull)
        }
        batch.columns[waitIndex] = seconds(launched, running, TryLifecycle.queueWait)
        batch.columns[runIndex] = seconds(running, returned, TryLifecycle.runTime)
    }
}
