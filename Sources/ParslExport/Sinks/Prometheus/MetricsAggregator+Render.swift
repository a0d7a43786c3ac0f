import ExpositionFormat

/// The exporter's view of its own health, rendered with the Parsl metrics.
public struct ExporterStatus: Sendable {
    /// The last read of the database succeeded.
    public var databaseUp = true
    /// The first full read has finished (until then the Parsl metrics are partial).
    public var initialReadDone = true
    public var rowsRead: [String: Int] = [:]
    public var rowsSkipped: [String: Int] = [:]
    public var readErrors = 0
    /// Duration of the read (and render) that produced this body.
    public var scrapeSeconds: Double = 0

    public init() {}

    /// Tables whose rows the exporter reads; their counters are always present.
    public static let tables = ["workflow", "task", "status", "block", "node", "resource"]
}

extension MetricsAggregator {
    /// The metric families in `format`. Families are always present (with no samples when there is no data), so
    /// dashboards do not break on an empty database.
    /// Label values cut short (see `ExpositionWriter.maxLabelValueBytes`) are counted in `warnings`.
    public func render(_ format: ExpositionFormat, status: ExporterStatus, warnings: ValueWarnings? = nil) throws -> [UInt8] {
        var w = ExpositionWriter(format: format, capacity: 64 * 1024)
        let labels = options.labels
        let withRun = labels.contains(.runID)
        let withApp = labels.contains(.app)
        func runLabel(_ run: Int32) -> [String] { withRun ? [runs[Int(run)].info.runID] : [] }
        func appLabel(_ app: UInt32) -> [String] { withApp ? [apps.names[Int(app) - 1]] : [] }
        let taskLabelNames = (withRun ? ["run_id"] : []) + (withApp ? ["app"] : [])

        // Runs.
        try w.begin(
            MetricFamily(
                name: "parsl_workflow", type: .info, help: "A workflow run (DataFlowKernel) in the database.",
                labelNames: ["run_id", "workflow_name", "host", "user"]))
        for run in runs {
            try w.info(labels: [run.info.runID, run.info.workflowName ?? "", run.info.host ?? "", run.info.user ?? ""])
        }
        try w.begin(
            MetricFamily(
                name: "parsl_workflow_start_time_seconds", type: .gauge,
                help: "When the run began, Unix time (naive Parsl times read as UTC unless --timezone).",
                unit: "seconds", labelNames: ["run_id"]))
        for run in runs { if let began = run.info.began { try w.gauge(seconds(began), labels: [run.info.runID]) } }
        try w.begin(
            MetricFamily(
                name: "parsl_workflow_end_time_seconds", type: .gauge,
                help: "When the run completed, Unix time; absent while it has no completion time.",
                unit: "seconds", labelNames: ["run_id"]))
        for run in runs {
            if let completed = run.info.completed { try w.gauge(seconds(completed), labels: [run.info.runID]) }
        }
        try w.begin(
            MetricFamily(
                name: "parsl_workflow_completed", type: .gauge,
                help: "1 when the run has a completion time, 0 while it is running or when it crashed.",
                labelNames: ["run_id"]))
        for run in runs { try w.gauge(run.info.completed == nil ? 0 : 1, labels: [run.info.runID]) }

        // Tasks and tries.
        try w.begin(
            MetricFamily(
                name: "parsl_tasks", type: .gauge, help: "Tasks by their current state (latest status row).",
                labelNames: taskLabelNames + ["state"]))
        for (key, count) in taskCounts.sorted(by: { seriesOrder($0.key, $1.key) }) {
            try w.gauge(Double(count), labels: runLabel(key.run) + appLabel(key.app) + [states.names[Int(key.state) - 1]])
        }
        try w.begin(
            MetricFamily(
                name: "parsl_tries", type: .counter,
                help: "Tries that ended, by outcome (exec_done, failed, fail_retryable, memo_done, dep_fail).",
                labelNames: taskLabelNames + ["outcome"]))
        var retries: [SeriesKey: Int] = [:]
        for (key, count) in tryOutcomes.sorted(by: { seriesOrder($0.key, $1.key) }) {
            let outcome = states.names[Int(key.state) - 1]
            try w.counter(Double(count), labels: runLabel(key.run) + appLabel(key.app) + [outcome])
            if outcome == "fail_retryable" { retries[SeriesKey(run: key.run, app: key.app, state: 0), default: 0] += count }
        }
        try w.begin(
            MetricFamily(
                name: "parsl_task_retries", type: .counter, help: "Tries that failed and were retried (fail_retryable).",
                labelNames: taskLabelNames))
        if taskLabelNames.isEmpty {
            try w.counter(Double(retries.values.reduce(0, +)))
        } else {
            for (key, count) in retries.sorted(by: { seriesOrder($0.key, $1.key) }) {
                try w.counter(Double(count), labels: runLabel(key.run) + appLabel(key.app))
            }
        }
        try w.begin(
            MetricFamily(
                name: "parsl_try_queue_wait_seconds", type: .histogram,
                help: "Time from a try's launched status to its running status.", unit: "seconds",
                labelNames: taskLabelNames, buckets: options.queueWaitBuckets))
        for (key, histogram) in queueWait.sorted(by: { seriesOrder($0.key, $1.key) }) {
            try w.histogram(histogram, labels: runLabel(key.run) + appLabel(key.app))
        }
        try w.begin(
            MetricFamily(
                name: "parsl_try_run_time_seconds", type: .histogram,
                help: "Time from a try's running status to the status that ended it.", unit: "seconds",
                labelNames: taskLabelNames, buckets: options.runTimeBuckets))
        for (key, histogram) in runTime.sorted(by: { seriesOrder($0.key, $1.key) }) {
            try w.histogram(histogram, labels: runLabel(key.run) + appLabel(key.app))
        }

        // Blocks.
        let sortedBlocks = blocks.sorted {
            ($0.key.run, $0.key.executor, $0.key.block) < ($1.key.run, $1.key.executor, $1.key.block)
        }
        try w.begin(
            MetricFamily(
                name: "parsl_block_status", type: .gauge, help: "1 for each block, labelled with its latest status.",
                labelNames: ["run_id", "executor", "block", "status"]))
        for (key, value) in sortedBlocks {
            try w.gauge(1, labels: [runs[Int(key.run)].info.runID, key.executor, key.block, value.status])
        }
        var blockCounts: [[String]: Int] = [:]
        for (key, value) in sortedBlocks {
            blockCounts[runLabel(key.run) + [key.executor, value.status], default: 0] += 1
        }
        try w.begin(
            MetricFamily(
                name: "parsl_blocks", type: .gauge, help: "Blocks by executor and latest status.",
                labelNames: (withRun ? ["run_id"] : []) + ["executor", "status"]))
        for (labelValues, count) in blockCounts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            try w.gauge(Double(count), labels: labelValues)
        }

        // Nodes (managers), per run, block and host.
        struct NodeTotals {
            var managers = 0
            var active = 0
            var workers: Int64 = 0
            var cpus: Int64 = 0
            var memory: Int64 = 0
            var heartbeat: Int64?
        }
        var nodes: [[String]: NodeTotals] = [:]
        for (key, row) in managers {
            var totals = nodes[[runs[Int(key.run)].info.runID, row.block, row.host]] ?? NodeTotals()
            totals.managers += 1
            if row.active == true { totals.active += 1 }
            totals.workers += row.workers ?? 0
            totals.cpus += row.cpus ?? 0
            totals.memory += row.memoryBytes ?? 0
            if let beat = row.lastHeartbeat { totals.heartbeat = max(totals.heartbeat ?? beat, beat) }
            nodes[[runs[Int(key.run)].info.runID, row.block, row.host]] = totals
        }
        let sortedNodes = nodes.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let nodeLabels = ["run_id", "block", "host"]
        let nodeFamilies: [(String, String, String?, (NodeTotals) -> Double?)] = [
            ("parsl_node_managers", "Managers (worker pools) registered, per block and host.", nil, { Double($0.managers) }),
            ("parsl_node_active_managers", "Managers whose latest snapshot says active.", nil, { Double($0.active) }),
            ("parsl_node_workers", "Workers of the managers, from their latest snapshots.", nil, { Double($0.workers) }),
            ("parsl_node_cpus", "CPU cores the managers reported.", nil, { Double($0.cpus) }),
            ("parsl_node_memory_bytes", "Total memory the managers reported.", "bytes", { Double($0.memory) }),
            (
                "parsl_node_last_heartbeat_timestamp_seconds", "Latest manager heartbeat, Unix time.", "seconds",
                { $0.heartbeat.map(seconds) }
            ),
        ]
        for (name, help, unit, value) in nodeFamilies {
            try w.begin(MetricFamily(name: name, type: .gauge, help: help, unit: unit, labelNames: nodeLabels))
            for (labelValues, totals) in sortedNodes {
                if let v = value(totals) { try w.gauge(v, labels: labelValues) }
            }
        }

        // Resources per host (summed over worker processes, never per task).
        var perHost: [[String]: (rss: Double, cpu: Double)] = [:]
        // Summed in a fixed order: a dictionary's order changes between processes, and float sums with it.
        for (key, process) in processes.sorted(by: { ($0.key.run, $0.key.host, $0.key.pid) < ($1.key.run, $1.key.host, $1.key.pid) }) {
            let labelValues = runLabel(key.run) + [hosts.names[Int(key.host)]]
            var totals = perHost[labelValues] ?? (0, 0)
            totals.rss += process.residentBytes
            totals.cpu += process.cpuSeconds
            perHost[labelValues] = totals
        }
        let sortedHosts = perHost.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let hostLabels = (withRun ? ["run_id"] : []) + ["host"]
        try w.begin(
            MetricFamily(
                name: "parsl_resource_resident_memory_bytes", type: .gauge,
                help: "Resident memory of the monitored worker processes on a host, latest sample of each process.",
                unit: "bytes", labelNames: hostLabels))
        for (labelValues, totals) in sortedHosts { try w.gauge(totals.rss, labels: labelValues) }
        try w.begin(
            MetricFamily(
                name: "parsl_resource_cpu_seconds", type: .counter,
                help: "User and system CPU time of the monitored worker processes on a host.", unit: "seconds",
                labelNames: hostLabels))
        for (labelValues, totals) in sortedHosts { try w.counter(totals.cpu, labels: labelValues) }

        // The exporter's own.
        try w.begin(
            MetricFamily(
                name: "parsl_export_database_up", type: .gauge,
                help: "1 when the last read of the database succeeded; 0 while it is missing, locked or unreadable (values are the last good ones)."))
        try w.gauge(status.databaseUp ? 1 : 0)
        try w.begin(
            MetricFamily(
                name: "parsl_export_initial_read_done", type: .gauge,
                help: "1 once the first full read of the database has finished; until then the Parsl metrics are partial."))
        try w.gauge(status.initialReadDone ? 1 : 0)
        try w.begin(
            MetricFamily(
                name: "parsl_export_rows_read", type: .counter, help: "Rows read from the database, per table.",
                labelNames: ["table"]))
        for table in ExporterStatus.tables { try w.counter(Double(status.rowsRead[table] ?? 0), labels: [table]) }
        try w.begin(
            MetricFamily(
                name: "parsl_export_rows_skipped", type: .counter,
                help: "Rows that could not be used (task id out of range, no process id), per table.", labelNames: ["table"]))
        var skipped = skippedRows
        for (table, count) in status.rowsSkipped { skipped[table, default: 0] += count }
        for table in ExporterStatus.tables { try w.counter(Double(skipped[table] ?? 0), labels: [table]) }
        try w.begin(
            MetricFamily(
                name: "parsl_export_read_errors", type: .counter,
                help: "Reads of the database that failed (missing, locked past the busy timeout, corrupt)."))
        try w.counter(Double(status.readErrors))
        try w.begin(
            MetricFamily(
                name: "parsl_export_scrape_duration_seconds", type: .gauge,
                help: "Time taken to read new rows and build these metrics.", unit: "seconds"))
        try w.gauge(status.scrapeSeconds)
        for cut in w.truncations {
            warnings?.record(
                table: "metrics", column: cut.label,
                problem: "label values longer than \(ExpositionWriter.maxLabelValueBytes) bytes cut short", example: cut.example)
        }
        return w.finish()
    }

    private func seriesOrder(_ a: SeriesKey, _ b: SeriesKey) -> Bool {
        (a.run, a.app, a.state) < (b.run, b.app, b.state)
    }
}

private func seconds(_ micros: Int64) -> Double { Double(micros) / 1e6 }
