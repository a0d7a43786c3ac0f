/// The domain face of the model: what happened in a workflow, derived from the record batches.
/// Times are microseconds (naive wall clock, or UTC with `--timezone`); nil where the source had none.

/// One DataFlowKernel run.
public struct WorkflowRun: Sendable, Equatable {
    public var runID: String
    public var workflowName: String?
    public var workflowVersion: String?
    public var began: Int64?
    public var completed: Int64?
    public var host: String?
    public var user: String?
    public var rundir: String?
    public var tasksFailedCount: Int64?
    public var tasksCompletedCount: Int64?

    /// A run without `time_completed` never finished cleanly: crashed, killed, or still being written.
    public var isUnfinished: Bool { completed == nil }
}

/// One task (app invocation).
public struct TaskRecord: Sendable, Equatable {
    public var runID: String
    public var taskID: Int64
    public var app: String?
    public var dependsOn: [Int64]
    public var memoize: Bool?
    public var invoked: Int64?
    public var returned: Int64?
    public var failCount: Int64?
}

/// One try of a task, with what try_summary derives for it.
public struct TrySpan: Sendable, Equatable {
    public var runID: String
    public var taskID: Int64
    public var tryID: Int64
    public var app: String?
    public var executor: String?
    public var blockID: String?
    public var hostname: String?
    public var workerPID: Int64?
    public var launched: Int64?
    public var running: Int64?
    public var returned: Int64?
    public var finalState: String?
    public var failReason: String?
    public var peakRSSBytes: Int64?
    public var cpuSeconds: Double?
    public var dependsOn: [Int64]

    /// The worker reported the try as running (memo_done and dep_fail tries never run).
    public var ran: Bool { running != nil }
    /// No terminal state recorded: the run crashed or is still going.
    public var isUnfinished: Bool { !(finalState.map(TaskState.isTerminalForTry) ?? false) }
}

/// One row of the try table as it stood when read: where the try ran and its lifecycle times. (`TrySpan` is the
/// same try with what try_summary derives from the other tables.)
public struct TryAttempt: Sendable, Equatable {
    public var runID: String
    public var taskID: Int64
    public var tryID: Int64
    public var executor: String?
    public var blockID: String?
    public var hostname: String?
    public var launched: Int64?
    public var running: Int64?
    public var returned: Int64?
}

/// One row of the status table.
public struct StatusChange: Sendable, Equatable {
    public var runID: String
    public var taskID: Int64
    public var tryID: Int64?
    public var state: String
    public var time: Int64?
}

/// One psutil sample of a worker process; CPU and I/O counters are cumulative per process.
public struct ResourceSample: Sendable, Equatable {
    public var runID: String
    public var taskID: Int64
    public var tryID: Int64?
    public var time: Int64?
    public var pid: Int64?
    public var residentBytes: Double?
    public var virtualBytes: Double?
    public var cpuUserSeconds: Double?
    public var cpuSystemSeconds: Double?
    /// The hostname and block of the sample's try, where the reader joined them (the table batches do not: their
    /// consumers take them from the try rows).
    public var hostname: String? = nil
    public var blockID: String? = nil
}

/// One block status row.
public struct BlockTransition: Sendable, Equatable {
    public var runID: String
    public var executor: String
    public var blockID: String
    public var jobID: String?
    public var time: Int64?
    public var status: String
}

/// One manager snapshot from the interchange.
public struct NodeSnapshot: Sendable, Equatable {
    public var runID: String
    public var hostname: String?
    public var uid: String?
    public var blockID: String?
    public var cpuCount: Int64?
    public var totalMemoryBytes: Int64?
    public var active: Bool?
    public var workerCount: Int64?
    public var time: Int64?
    public var lastHeartbeat: Int64?
}

/// Domain events of one batch.
public enum DomainBatch: Sendable, Equatable {
    case runs([WorkflowRun])
    case tasks([TaskRecord])
    case tries([TrySpan])
    case tryAttempts([TryAttempt])
    case statusChanges([StatusChange])
    case resourceSamples([ResourceSample])
    case blockTransitions([BlockTransition])
    case nodeSnapshots([NodeSnapshot])
}

/// Kinds of domain events a sink can ask for; each comes from one table.
public enum DomainKind: String, Sendable, CaseIterable {
    case runs, tasks, tries, tryAttempts, statusChanges, resourceSamples, blockTransitions, nodeSnapshots

    /// The table whose batches the events are derived from.
    public var table: String {
        switch self {
        case .runs: "workflow"
        case .tasks: "task"
        case .tries: "try_summary"
        case .tryAttempts: "try"
        case .statusChanges: "status"
        case .resourceSamples: "resource"
        case .blockTransitions: "block"
        case .nodeSnapshots: "node"
        }
    }
}

/// Parsl's task states (`parsl.dataflow.states.States` names).
public enum TaskState {
    public static let terminal: Set<String> = ["exec_done", "memo_done", "failed", "dep_fail", "done"]
    /// A try ends in a terminal task state or in fail_retryable (the task then gets another try).
    public static func isTerminalForTry(_ state: String) -> Bool { terminal.contains(state) || state == "fail_retryable" }
}

extension DomainBatch {
    /// The columns of `table` that `derive` reads (nil: a table without events, or one whose events need more
    /// than its own columns).
    static func columns(derivedFrom table: String) -> Set<String>? {
        switch table {
        case "workflow":
            ["run_id", "workflow_name", "workflow_version", "time_began", "time_completed", "host", "user", "rundir",
             "tasks_failed_count", "tasks_completed_count"]
        case "task":
            ["run_id", "task_id", "task_func_name", "task_depends", "task_memoize", "task_time_invoked",
             "task_time_returned", "task_fail_count"]
        case "try":
            ["run_id", "task_id", "try_id", "task_executor", "block_id", "hostname", "task_try_time_launched",
             "task_try_time_running", "task_try_time_returned"]
        case "status": ["run_id", "task_id", "try_id", "task_status_name", "timestamp"]
        case "resource":
            ["run_id", "task_id", "try_id", "timestamp", "psutil_process_pid", "psutil_process_memory_resident",
             "psutil_process_memory_virtual", "psutil_process_time_user", "psutil_process_time_system"]
        case "block": ["run_id", "executor_label", "block_id", "job_id", "timestamp", "status"]
        case "node":
            ["run_id", "hostname", "uid", "block_id", "cpu_count", "total_memory", "active", "worker_count",
             "timestamp", "reg_time", "last_heartbeat"]
        default: nil
        }
    }

    /// Derives the domain events of a batch, or nil for a table that has none.
    public static func derive(from batch: RecordBatch) -> DomainBatch? {
        let view = BatchView(batch)
        let rows = 0..<batch.rowCount
        switch batch.schema.name {
        case "workflow":
            let hostColumn = view.index("host")
            let runIdColumn = view.index("run_id")
            let rundirColumn = view.index("rundir")
            let tasksCompletedCountColumn = view.index("tasks_completed_count")
            let tasksFailedCountColumn = view.index("tasks_failed_count")
            let timeBeganColumn = view.index("time_began")
            let timeCompletedColumn = view.index("time_completed")
            let userColumn = view.index("user")
            let workflowNameColumn = view.index("workflow_name")
            let workflowVersionColumn = view.index("workflow_version")
            return .runs(
                rows.map { row in
                    WorkflowRun(
                        runID: view.text(runIdColumn, row) ?? "",
                        workflowName: view.text(workflowNameColumn, row),
                        workflowVersion: view.text(workflowVersionColumn, row),
                        began: view.int(timeBeganColumn, row),
                        completed: view.int(timeCompletedColumn, row),
                        host: view.text(hostColumn, row),
                        user: view.text(userColumn, row),
                        rundir: view.text(rundirColumn, row),
                        tasksFailedCount: view.int(tasksFailedCountColumn, row),
                        tasksCompletedCount: view.int(tasksCompletedCountColumn, row)
                    )
                }
            )
        case "task":
            let runIdColumn = view.index("run_id")
            let taskDependsColumn = view.index("task_depends")
            let taskFailCountColumn = view.index("task_fail_count")
            let taskFuncNameColumn = view.index("task_func_name")
            let taskIdColumn = view.index("task_id")
            let taskMemoizeColumn = view.index("task_memoize")
            let taskTimeInvokedColumn = view.index("task_time_invoked")
            let taskTimeReturnedColumn = view.index("task_time_returned")
            return .tasks(
                rows.map { row in
                    TaskRecord(
                        runID: view.text(runIdColumn, row) ?? "",
                        taskID: view.int(taskIdColumn, row) ?? -1,
                        app: view.text(taskFuncNameColumn, row),
                        dependsOn: view.idList(taskDependsColumn, row),
                        memoize: view.bool(taskMemoizeColumn, row),
                        invoked: view.int(taskTimeInvokedColumn, row),
                        returned: view.int(taskTimeReturnedColumn, row),
                        failCount: view.int(taskFailCountColumn, row)
                    )
                }
            )
        case "try_summary":
            let blockIdColumn = view.index("block_id")
            let cpuSecondsColumn = view.index("cpu_seconds")
            let failReasonColumn = view.index("fail_reason")
            let finalStateColumn = view.index("final_state")
            let hostnameColumn = view.index("hostname")
            let launchedColumn = view.index("launched")
            let peakRssBytesColumn = view.index("peak_rss_bytes")
            let returnedColumn = view.index("returned")
            let runIdColumn = view.index("run_id")
            let runningColumn = view.index("running")
            let taskDependsColumn = view.index("task_depends")
            let taskExecutorColumn = view.index("task_executor")
            let taskFuncNameColumn = view.index("task_func_name")
            let taskIdColumn = view.index("task_id")
            let tryIdColumn = view.index("try_id")
            let workerPidColumn = view.index("worker_pid")
            return .tries(
                rows.map { row in
                    TrySpan(
                        runID: view.text(runIdColumn, row) ?? "",
                        taskID: view.int(taskIdColumn, row) ?? -1,
                        tryID: view.int(tryIdColumn, row) ?? -1,
                        app: view.text(taskFuncNameColumn, row),
                        executor: view.text(taskExecutorColumn, row),
                        blockID: view.text(blockIdColumn, row),
                        hostname: view.text(hostnameColumn, row),
                        workerPID: view.int(workerPidColumn, row),
                        launched: view.int(launchedColumn, row),
                        running: view.int(runningColumn, row),
                        returned: view.int(returnedColumn, row),
                        finalState: view.text(finalStateColumn, row),
                        failReason: view.text(failReasonColumn, row),
                        peakRSSBytes: view.int(peakRssBytesColumn, row),
                        cpuSeconds: view.double(cpuSecondsColumn, row),
                        dependsOn: view.idList(taskDependsColumn, row)
                    )
                }
            )
        case "try":
            let runIdColumn = view.index("run_id")
            let taskIdColumn = view.index("task_id")
            let tryIdColumn = view.index("try_id")
            let executorColumn = view.index("task_executor")
            let blockIdColumn = view.index("block_id")
            let hostnameColumn = view.index("hostname")
            let launchedColumn = view.index("task_try_time_launched")
            let runningColumn = view.index("task_try_time_running")
            let returnedColumn = view.index("task_try_time_returned")
            return .tryAttempts(
                rows.map { row in
                    TryAttempt(
                        runID: view.text(runIdColumn, row) ?? "",
                        taskID: view.int(taskIdColumn, row) ?? -1,
                        tryID: view.int(tryIdColumn, row) ?? -1,
                        executor: view.text(executorColumn, row),
                        blockID: view.text(blockIdColumn, row),
                        hostname: view.text(hostnameColumn, row),
                        launched: view.int(launchedColumn, row),
                        running: view.int(runningColumn, row),
                        returned: view.int(returnedColumn, row)
                    )
                }
            )
        case "status":
            let runIdColumn = view.index("run_id")
            let taskIdColumn = view.index("task_id")
            let taskStatusNameColumn = view.index("task_status_name")
            let timestampColumn = view.index("timestamp")
            let tryIdColumn = view.index("try_id")
            return .statusChanges(
                rows.map { row in
                    StatusChange(
                        runID: view.text(runIdColumn, row) ?? "",
                        taskID: view.int(taskIdColumn, row) ?? -1,
                        tryID: view.int(tryIdColumn, row),
                        state: view.text(taskStatusNameColumn, row) ?? "",
                        time: view.int(timestampColumn, row)
                    )
                }
            )
        case "resource":
            let psutilProcessMemoryResidentColumn = view.index("psutil_process_memory_resident")
            let psutilProcessMemoryVirtualColumn = view.index("psutil_process_memory_virtual")
            let psutilProcessPidColumn = view.index("psutil_process_pid")
            let psutilProcessTimeSystemColumn = view.index("psutil_process_time_system")
            let psutilProcessTimeUserColumn = view.index("psutil_process_time_user")
            let runIdColumn = view.index("run_id")
            let taskIdColumn = view.index("task_id")
            let timestampColumn = view.index("timestamp")
            let tryIdColumn = view.index("try_id")
            return .resourceSamples(
                rows.map { row in
                    ResourceSample(
                        runID: view.text(runIdColumn, row) ?? "",
                        taskID: view.int(taskIdColumn, row) ?? -1,
                        tryID: view.int(tryIdColumn, row),
                        time: view.int(timestampColumn, row),
                        pid: view.int(psutilProcessPidColumn, row),
                        residentBytes: view.double(psutilProcessMemoryResidentColumn, row),
                        virtualBytes: view.double(psutilProcessMemoryVirtualColumn, row),
                        cpuUserSeconds: view.double(psutilProcessTimeUserColumn, row),
                        cpuSystemSeconds: view.double(psutilProcessTimeSystemColumn, row)
                    )
                }
            )
        case "block":
            let blockIdColumn = view.index("block_id")
            let executorLabelColumn = view.index("executor_label")
            let jobIdColumn = view.index("job_id")
            let runIdColumn = view.index("run_id")
            let statusColumn = view.index("status")
            let timestampColumn = view.index("timestamp")
            return .blockTransitions(
                rows.map { row in
                    BlockTransition(
                        runID: view.text(runIdColumn, row) ?? "",
                        executor: view.text(executorLabelColumn, row) ?? "",
                        blockID: view.text(blockIdColumn, row) ?? "",
                        jobID: view.text(jobIdColumn, row),
                        time: view.int(timestampColumn, row),
                        status: view.text(statusColumn, row) ?? ""
                    )
                }
            )
        case "node":
            let activeColumn = view.index("active")
            let blockIdColumn = view.index("block_id")
            let cpuCountColumn = view.index("cpu_count")
            let hostnameColumn = view.index("hostname")
            let lastHeartbeatColumn = view.index("last_heartbeat")
            let regTimeColumn = view.index("reg_time")
            let runIdColumn = view.index("run_id")
            let timestampColumn = view.index("timestamp")
            let totalMemoryColumn = view.index("total_memory")
            let uidColumn = view.index("uid")
            let workerCountColumn = view.index("worker_count")
            return .nodeSnapshots(
                rows.map { row in
                    NodeSnapshot(
                        runID: view.text(runIdColumn, row) ?? "",
                        hostname: view.text(hostnameColumn, row),
                        uid: view.text(uidColumn, row),
                        blockID: view.text(blockIdColumn, row),
                        cpuCount: view.int(cpuCountColumn, row),
                        totalMemoryBytes: view.int(totalMemoryColumn, row),
                        active: view.bool(activeColumn, row),
                        workerCount: view.int(workerCountColumn, row),
                        time: view.int(timestampColumn, row) ?? view.int(regTimeColumn, row),
                        lastHeartbeat: view.int(lastHeartbeatColumn, row)
                    )
                }
            )
        default:
            return nil
        }
    }
}

/// Typed access by column name to a batch, reusing the previous row's string when the bytes repeat (run ids do).
struct BatchView {
    let batch: RecordBatch
    private let indexes: [String: Int]
    private let cache = StringCache()

    init(_ batch: RecordBatch) {
        self.batch = batch
        var indexes: [String: Int] = [:]
        for (i, column) in batch.schema.columns.enumerated() { indexes[column.name] = i }
        self.indexes = indexes
    }

    /// The column's position, looked up once per batch rather than once per value.
    func index(_ name: String) -> Int? { indexes[name] }

    func text(_ i: Int?, _ row: Int) -> String? {
        guard let i, !batch.columns[i].isNull[row], case .text(let t) = batch.columns[i].values else { return nil }
        return t.withValue(at: row) { cache.string(column: i, bytes: $0) }
    }

    func int(_ i: Int?, _ row: Int) -> Int64? { i.flatMap { batch.columns[$0].int64(at: row) } }

    func double(_ i: Int?, _ row: Int) -> Double? { i.flatMap { batch.columns[$0].double(at: row) } }

    func bool(_ i: Int?, _ row: Int) -> Bool? { i.flatMap { batch.columns[$0].bool(at: row) } }

    func idList(_ i: Int?, _ row: Int) -> [Int64] {
        guard let i, !batch.columns[i].isNull[row], case .text(let t) = batch.columns[i].values else { return [] }
        return t.withValue(at: row) { IDList.parse($0) }
    }
}

/// Per-column memo of the last string built, so a batch of one run allocates its run id once.
private final class StringCache {
    private var last: [Int: (bytes: [UInt8], string: String)] = [:]

    func string(column: Int, bytes: UnsafeBufferPointer<UInt8>) -> String {
        if let entry = last[column], entry.bytes.elementsEqual(bytes) { return entry.string }
        let string = String(decoding: bytes, as: UTF8.self)
        last[column] = (Array(bytes), string)
        return string
    }
}

/// Parsl's id lists: task ids joined by commas (`"139,140"`), `''` when empty.
public enum IDList {
    /// The ids in order; pieces that are not integers are skipped.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> [Int64] {
        var ids: [Int64] = []
        var value: Int64 = 0
        var digits = 0
        var valid = true
        var ended = false  // a space after the digits: more digits make the piece invalid ("1 2" is not 12)
        func flush() {
            if digits > 0 && valid { ids.append(value) }
            value = 0
            digits = 0
            valid = true
            ended = false
        }
        for byte in bytes {
            if byte == UInt8(ascii: ",") {
                flush()
            } else if byte &- UInt8(ascii: "0") < 10, digits < 18, !ended {
                value = value * 10 + Int64(byte &- UInt8(ascii: "0"))
                digits += 1
            } else if byte == UInt8(ascii: " ") {
                ended = digits > 0
            } else {
                valid = false
            }
        }
        flush()
        return ids
    }
}
