import ExpositionFormat

/// One metric family the exporter serves: the single definition that the exposition, `--help` and the Grafana
/// dashboard are all generated from, so their names cannot drift apart.
public struct ParslMetric: Sendable {
    /// Which labels a family carries; the task and host shapes depend on `--labels`.
    public enum Labels: Sendable {
        case fixed([String])
        /// run_id and app as `--labels` asks, then these.
        case task([String])
        /// run_id as `--labels` asks, then host.
        case host
    }

    /// Family name as given to the writer (without `_total` or `_info`).
    public let name: String
    public let type: MetricType
    public let help: String
    public let unit: String?
    public let labels: Labels
    /// A few words for `--help`.
    public let summary: String

    init(_ name: String, _ type: MetricType, unit: String? = nil, labels: Labels = .fixed([]), summary: String, help: String) {
        self.name = name
        self.type = type
        self.help = help
        self.unit = unit
        self.labels = labels
        self.summary = summary
    }

    /// The name samples carry (counters end in `_total`, info families in `_info`; a histogram's series add
    /// `_bucket`, `_sum` and `_count` to it).
    public var sampleName: String {
        switch type {
        case .counter: name + "_total"
        case .info: name + "_info"
        default: name
        }
    }

    public func labelNames(_ options: PrometheusOptions) -> [String] {
        let run = options.labels.contains(.runID) ? ["run_id"] : []
        switch labels {
        case .fixed(let names): return names
        case .task(let names): return run + (options.labels.contains(.app) ? ["app"] : []) + names
        case .host: return run + ["host"]
        }
    }

    func family(_ options: PrometheusOptions) throws -> MetricFamily {
        let buckets: [Double] =
            switch name {
            case ParslMetric.queueWait.name: options.queueWaitBuckets
            case ParslMetric.runTime.name: options.runTimeBuckets
            default: []
            }
        return try MetricFamily(name: name, type: type, help: help, unit: unit, labelNames: labelNames(options), buckets: buckets)
    }
}

extension ParslMetric {
    // Runs.
    static let workflow = ParslMetric(
        "parsl_workflow", .info, labels: .fixed(["run_id", "workflow_name", "host", "user"]), summary: "1 per run",
        help: "A workflow run (DataFlowKernel) in the database.")
    static let workflowStart = ParslMetric(
        "parsl_workflow_start_time_seconds", .gauge, unit: "seconds", labels: .fixed(["run_id"]),
        summary: "Unix time the run began",
        help: "When the run began, Unix time (naive Parsl times are read in the exporter host's zone unless --timezone).")
    static let workflowEnd = ParslMetric(
        "parsl_workflow_end_time_seconds", .gauge, unit: "seconds", labels: .fixed(["run_id"]),
        summary: "Unix time the run completed",
        help: "When the run completed, Unix time; absent while it has no completion time.")
    static let workflowCompleted = ParslMetric(
        "parsl_workflow_completed", .gauge, labels: .fixed(["run_id"]), summary: "0 while running, 1 after",
        help: "1 when the run has a completion time, 0 while it is running or when it crashed.")

    // Tasks and tries.
    static let tasks = ParslMetric(
        "parsl_tasks", .gauge, labels: .task(["state"]), summary: "tasks by current state, all runs",
        help: "Tasks by their current state (latest status row), over every run read.")
    static let tasksRunning = ParslMetric(
        "parsl_tasks_running", .gauge, labels: .task([]), summary: "tasks running now",
        help: "Tasks whose current state is running, in runs that have not completed (now).")
    static let tries = ParslMetric(
        "parsl_tries", .counter, labels: .task(["outcome"]), summary: "tries that ended, by outcome",
        help: "Tries that ended, by outcome (exec_done, failed, fail_retryable, memo_done, dep_fail), over every run read.")
    static let retries = ParslMetric(
        "parsl_task_retries", .counter, labels: .task([]), summary: "fail_retryable tries",
        help: "Tries that failed and were retried (fail_retryable), over every run read.")
    static let queueWait = ParslMetric(
        "parsl_try_queue_wait_seconds", .histogram, unit: "seconds", labels: .task([]), summary: "launched to running",
        help: "Time from a try's launched time to its running time (try table; try_summary's queue_wait_seconds).")
    static let runTime = ParslMetric(
        "parsl_try_run_time_seconds", .histogram, unit: "seconds", labels: .task([]), summary: "running to returned",
        help: "Time from a try's running time to its returned time (try table; try_summary's run_time_seconds).")

    // Blocks, nodes, workers.
    static let blockStatus = ParslMetric(
        "parsl_block_status", .gauge, labels: .fixed(["run_id", "executor", "block", "status"]),
        summary: "1 per block, latest status", help: "1 for each block, labelled with its latest status.")
    static let blocks = ParslMetric(
        "parsl_blocks", .gauge, labels: .fixed(["run_id", "executor", "status"]), summary: "blocks by latest status",
        help: "Blocks by run, executor and latest status; 0 for a status no block has any more.")
    static let nodeManagers = ParslMetric(
        "parsl_node_managers", .gauge, labels: .fixed(["run_id", "block", "host"]), summary: "managers now",
        help: "Managers (worker pools) registered now: in blocks not ended, of runs not completed.")
    static let nodeActiveManagers = ParslMetric(
        "parsl_node_active_managers", .gauge, labels: .fixed(["run_id", "block", "host"]), summary: "active managers now",
        help: "Managers registered now whose latest snapshot says active.")
    static let nodeWorkers = ParslMetric(
        "parsl_node_workers", .gauge, labels: .fixed(["run_id", "block", "host"]), summary: "workers now",
        help: "Workers of the managers registered now, from their latest snapshots.")
    static let nodeCPUs = ParslMetric(
        "parsl_node_cpus", .gauge, labels: .fixed(["run_id", "block", "host"]), summary: "cores of those managers",
        help: "CPU cores the managers registered now reported.")
    static let nodeMemory = ParslMetric(
        "parsl_node_memory_bytes", .gauge, unit: "bytes", labels: .fixed(["run_id", "block", "host"]),
        summary: "memory of those managers", help: "Total memory the managers registered now reported.")
    static let nodeHeartbeat = ParslMetric(
        "parsl_node_last_heartbeat_timestamp_seconds", .gauge, unit: "seconds", labels: .fixed(["run_id", "block", "host"]),
        summary: "latest heartbeat, Unix time", help: "Latest heartbeat of the managers registered now, Unix time.")
    static let workersConnected = ParslMetric(
        "parsl_workers_connected", .gauge, labels: .fixed(["run_id"]), summary: "workers connected now",
        help: "Workers of active managers in blocks not ended; 0 once the run has completed.")

    // Worker processes.
    static let residentMemory = ParslMetric(
        "parsl_resource_resident_memory_bytes", .gauge, unit: "bytes", labels: .host, summary: "RSS of workers now",
        help: "Resident memory of the worker processes current now (sampled within --recent-window, block not ended, run not completed), latest sample of each.")
    static let processes = ParslMetric(
        "parsl_resource_processes", .gauge, labels: .host, summary: "worker processes now",
        help: "Worker processes current now (sampled within --recent-window, block not ended, run not completed).")
    static let cpu = ParslMetric(
        "parsl_resource_cpu_seconds", .counter, unit: "seconds", labels: .host, summary: "CPU time of all workers",
        help: "User and system CPU time of every worker process ever sampled, exited ones included (a total; rate() it).")

    // The exporter's own.
    static let databaseUp = ParslMetric(
        "parsl_export_database_up", .gauge, summary: "last read succeeded",
        help: "1 when the last read of the database succeeded; 0 while it is missing, locked or unreadable (values are the last good ones).")
    static let initialReadDone = ParslMetric(
        "parsl_export_initial_read_done", .gauge, summary: "first full read over",
        help: "1 once the first full read of the database has finished; until then the Parsl metrics are partial.")
    static let rowsRead = ParslMetric(
        "parsl_export_rows_read", .counter, labels: .fixed(["table"]), summary: "rows read per table",
        help: "Rows read from the database, per table.")
    static let rowsSkipped = ParslMetric(
        "parsl_export_rows_skipped", .counter, labels: .fixed(["table"]), summary: "unusable rows per table",
        help: "Rows that could not be used (task id out of range, no process id), per table.")
    static let readErrors = ParslMetric(
        "parsl_export_read_errors", .counter, summary: "failed reads",
        help: "Reads of the database that failed (missing, locked past the busy timeout, corrupt).")
    static let replacements = ParslMetric(
        "parsl_export_database_replacements", .counter, summary: "file replaced, read anew",
        help: "Times the file was found replaced by another database (new inode, or other content in place) and read from the start.")
    static let newestRow = ParslMetric(
        "parsl_export_newest_row_timestamp_seconds", .gauge, unit: "seconds", summary: "newest row's time",
        help: "Time of the newest status, block, node, resource or workflow row read, Unix time.")
    static let newestRowAge = ParslMetric(
        "parsl_export_newest_row_age_seconds", .gauge, unit: "seconds", summary: "its age at this read",
        help: "Seconds between the newest row's time and this read; grows while Parsl writes nothing.")
    static let awaitingHost = ParslMetric(
        "parsl_export_resource_samples_awaiting_host", .gauge, summary: "samples whose try has no host yet",
        help: "Resource samples not yet counted: their try has no hostname yet (Parsl writes it after the samples).")
    static let scrapeDuration = ParslMetric(
        "parsl_export_scrape_duration_seconds", .gauge, unit: "seconds", summary: "this read's duration",
        help: "Time taken to read new rows and build these metrics.")

    /// Every family, in exposition order.
    public static let all: [ParslMetric] = [
        workflow, workflowStart, workflowEnd, workflowCompleted,
        tasks, tasksRunning, tries, retries, queueWait, runTime,
        blockStatus, blocks, nodeManagers, nodeActiveManagers, nodeWorkers, nodeCPUs, nodeMemory, nodeHeartbeat,
        workersConnected, residentMemory, processes, cpu,
        databaseUp, initialReadDone, rowsRead, rowsSkipped, readErrors, replacements, newestRow, newestRowAge,
        awaitingHost, scrapeDuration,
    ]

    /// The METRICS section of `--help`: every family with its labels (default `--labels app`) and a few words,
    /// each line within 80 columns.
    public static func helpSection(width: Int = 78) -> String {
        let options = PrometheusOptions()
        var lines = ["METRICS (default labels; --labels run_id adds run_id to those with app)"]
        for metric in all {
            let labels = metric.labelNames(options)
            let head = "  " + metric.sampleName + (labels.isEmpty ? "" : "{" + labels.joined(separator: ",") + "}")
            let kind = metric.type == .info ? "info" : "\(metric.type)"
            let tail = metric.summary + " (" + kind + ")"
            if head.count + 2 + tail.count <= width {
                lines.append(head + String(repeating: " ", count: max(2, width - head.count - tail.count)) + tail)
            } else {
                lines.append(head)
                lines.append(String(repeating: " ", count: max(6, width - tail.count)) + tail)
            }
        }
        return lines.joined(separator: "\n")
    }
}
