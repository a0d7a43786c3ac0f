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
    case statusChanges([StatusChange])
    case resourceSamples([ResourceSample])
    case blockTransitions([BlockTransition])
    case nodeSnapshots([NodeSnapshot])
}

/// Kinds of domain events a sink can ask for; each comes from one table.
public enum DomainKind: String, Sendable, CaseIterable {
    case runs, tasks, tries, statusChanges, resourceSamples, blockTransitions, nodeSnapshots

    /// The table whose batches the events are derived from.
    public var table: String {
        switch self {
        case .runs: "workflow"
        case .tasks: "task"
        case .tries: "try_summary"
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
    /// Derives the domain events of a batch, or nil for a table that has none.
    public static func derive(from batch: RecordBatch) -> DomainBatch? {
        let view = BatchView(batch)
        let rows = 0..<batch.rowCount
        switch batch.schema.name {
        case "workflow":
            return .runs(
                rows.map { row in
                    WorkflowRun(
                        runID: view.text("run_id", row) ?? "",
                        workflowName: view.text("workflow_name", row),
                        workflowVersion: view.text("workflow_version", row),
                        began: view.int("time_began", row),
                        completed: view.int("time_completed", row),
                        host: view.text("host", row),
                        user: view.text("user", row),
                        rundir: view.text("rundir", row),
                        tasksFailedCount: view.int("tasks_failed_count", row),
                        tasksCompletedCount: view.int("tasks_completed_count", row)
                    )
                }
            )
        case "task":
            return .tasks(
                rows.map { row in
                    TaskRecord(
                        runID: view.text("run_id", row) ?? "",
                        taskID: view.int("task_id", row) ?? -1,
                        app: view.text("task_func_name", row),
                        dependsOn: view.idList("task_depends", row),
                        memoize: view.bool("task_memoize", row),
                        invoked: view.int("task_time_invoked", row),
                        returned: view.int("task_time_returned", row),
                        failCount: view.int("task_fail_count", row)
                    )
                }
            )
        case "try_summary":
            return .tries(
                rows.map { row in
                    TrySpan(
                        runID: view.text("run_id", row) ?? "",
                        taskID: view.int("task_id", row) ?? -1,
                        tryID: view.int("try_id", row) ?? -1,
                        app: view.text("task_func_name", row),
                        executor: view.text("task_executor", row),
                        blockID: view.text("block_id", row),
                        hostname: view.text("hostname", row),
                        workerPID: view.int("worker_pid", row),
                        launched: view.int("launched", row),
                        running: view.int("running", row),
                        returned: view.int("returned", row),
                        finalState: view.text("final_state", row),
                        failReason: view.text("fail_reason", row),
                        peakRSSBytes: view.int("peak_rss_bytes", row),
                        cpuSeconds: view.double("cpu_seconds", row),
                        dependsOn: view.idList("task_depends", row)
                    )
                }
            )
        case "status":
            return .statusChanges(
                rows.map { row in
                    StatusChange(
                        runID: view.text("run_id", row) ?? "",
                        taskID: view.int("task_id", row) ?? -1,
                        tryID: view.int("try_id", row),
                        state: view.text("task_status_name", row) ?? "",
                        time: view.int("timestamp", row)
                    )
                }
            )
        case "resource":
            return .resourceSamples(
                rows.map { row in
                    ResourceSample(
                        runID: view.text("run_id", row) ?? "",
                        taskID: view.int("task_id", row) ?? -1,
                        tryID: view.int("try_id", row),
                        time: view.int("timestamp", row),
                        pid: view.int("psutil_process_pid", row),
                        residentBytes: view.double("psutil_process_memory_resident", row),
                        virtualBytes: view.double("psutil_process_memory_virtual", row),
                        cpuUserSeconds: view.double("psutil_process_time_user", row),
                        cpuSystemSeconds: view.double("psutil_process_time_system", row)
                    )
                }
            )
        case "block":
            return .blockTransitions(
                rows.map { row in
                    BlockTransition(
                        runID: view.text("run_id", row) ?? "",
                        executor: view.text("executor_label", row) ?? "",
                        blockID: view.text("block_id", row) ?? "",
                        jobID: view.text("job_id", row),
                        time: view.int("timestamp", row),
                        status: view.text("status", row) ?? ""
                    )
                }
            )
        case "node":
            return .nodeSnapshots(
                rows.map { row in
                    NodeSnapshot(
                        runID: view.text("run_id", row) ?? "",
                        hostname: view.text("hostname", row),
                        uid: view.text("uid", row),
                        blockID: view.text("block_id", row),
                        cpuCount: view.int("cpu_count", row),
                        totalMemoryBytes: view.int("total_memory", row),
                        active: view.bool("active", row),
                        workerCount: view.int("worker_count", row),
                        time: view.int("timestamp", row) ?? view.int("reg_time", row),
                        lastHeartbeat: view.int("last_heartbeat", row)
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

    func text(_ name: String, _ row: Int) -> String? {
        guard let i = indexes[name], !batch.columns[i].isNull[row], case .text(let t) = batch.columns[i].values
        else { return nil }
        return t.withValue(at: row) { cache.string(column: i, bytes: $0) }
    }

    func int(_ name: String, _ row: Int) -> Int64? {
        guard let i = indexes[name] else { return nil }
        return batch.columns[i].int64(at: row)
    }

    func double(_ name: String, _ row: Int) -> Double? {
        guard let i = indexes[name] else { return nil }
        return batch.columns[i].double(at: row)
    }

    func bool(_ name: String, _ row: Int) -> Bool? {
        guard let i = indexes[name] else { return nil }
        return batch.columns[i].bool(at: row)
    }

    func idList(_ name: String, _ row: Int) -> [Int64] {
        guard let i = indexes[name], !batch.columns[i].isNull[row], case .text(let t) = batch.columns[i].values
        else { return [] }
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
        func flush() {
            if digits > 0 && valid { ids.append(value) }
            value = 0
            digits = 0
            valid = true
        }
        for byte in bytes {
            if byte == UInt8(ascii: ",") {
                flush()
            } else if byte &- UInt8(ascii: "0") < 10, digits < 18 {
                value = value * 10 + Int64(byte &- UInt8(ascii: "0"))
                digits += 1
            } else if byte != UInt8(ascii: " ") {
                valid = false
            }
        }
        flush()
        return ids
    }
}
