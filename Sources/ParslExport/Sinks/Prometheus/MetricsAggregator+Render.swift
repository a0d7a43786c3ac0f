import ExpositionFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exporter's view of its own health, rendered with the Parsl metrics.
public struct ExporterStatus: Sendable {
    /// The last read of the database succeeded.
    public var databaseUp = true
    /// The first full read has finished (until then the Parsl metrics are partial).
    public var initialReadDone = true
    public var rowsRead: [String: Int] = [:]
    public var rowsSkipped: [String: Int] = [:]
    public var readErrors = 0
    /// Times the file was found replaced by another database and read from the start.
    public var databaseReplacements = 0
    /// Duration of the read (and render) that produced this body.
    public var scrapeSeconds: Double = 0
    /// When the read happened, UTC microseconds: what "now" means for the live gauges. Set it before rendering.
    public var readTime: Int64 = ExporterStatus.wallClockMicros()

    public init() {}

    /// Tables whose rows the exporter reads; their counters are always present.
    public static let tables = ["workflow", "task", "status", "block", "node", "resource"]

    public static func wallClockMicros() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }
}

extension MetricsAggregator {
    /// The metric families of ``ParslMetric/all`` in `format`. Families are always present (with no samples when
    /// there is no data), so dashboards do not break on an empty database. Label values cut short (see
    /// `ExpositionWriter.maxLabelValueBytes`) are counted in `warnings`.
    public func render(_ format: ExpositionFormat, status: ExporterStatus, warnings: ValueWarnings? = nil) throws -> [UInt8] {
        var w = ExpositionWriter(format: format, capacity: 64 * 1024)
        let withRun = options.labels.contains(.runID)
        let withApp = options.labels.contains(.app)
        func runLabel(_ run: Int32) -> [String] { withRun ? [runs[Int(run)].info.runID] : [] }
        func appLabel(_ app: UInt32) -> [String] { withApp ? [apps.names[Int(app) - 1]] : [] }
        func begin(_ metric: ParslMetric) throws { try w.begin(metric.family(options)) }
        func completed(_ run: Int32) -> Bool { runs[Int(run)].info.completed != nil }
        let now = status.readTime

        // Runs.
        try begin(.workflow)
        for run in runs {
            try w.info(labels: [run.info.runID, run.info.workflowName ?? "", run.info.host ?? "", run.info.user ?? ""])
        }
        try begin(.workflowStart)
        for run in runs { if let began = run.info.began { try w.gauge(seconds(began), labels: [run.info.runID]) } }
        try begin(.workflowEnd)
        for run in runs {
            if let completed = run.info.completed { try w.gauge(seconds(completed), labels: [run.info.runID]) }
        }
        try begin(.workflowCompleted)
        for run in runs { try w.gauge(run.info.completed == nil ? 0 : 1, labels: [run.info.runID]) }

        // Tasks and tries: every run read (the many-run rule in the README).
        // Every state read for every app series, 0 where no task is in it now: which states a task passed through
        // as its current one depends on when the file was read, so following it row by row (`serve`) and reading it
        // at once (`prometheus`) would otherwise keep different zero series. Only apps with a task now: a status row
        // that `serve` read a poll before its task row counts under the unknown app until that row comes.
        let appSeries = Set(taskCounts.filter { $0.value != 0 }.keys.map { SeriesKey(run: $0.run, app: $0.app, state: 0) })
        try begin(.tasks)
        for series in appSeries.sorted(by: seriesOrder) {
            for (index, state) in states.names.enumerated() {
                let key = SeriesKey(run: series.run, app: series.app, state: UInt8(index + 1))
                try w.gauge(Double(taskCounts[key] ?? 0), labels: runLabel(key.run) + appLabel(key.app) + [state])
            }
        }
        // Running now: runs not completed only; every app series has one (0 when none of its tasks runs).
        var running: [SeriesKey: Int] = [:]
        for series in appSeries { running[SeriesKey(run: withRun ? series.run : -1, app: series.app, state: 0)] = 0 }
        for (key, count) in runningTasks {
            let series = SeriesKey(run: withRun ? key.run : -1, app: key.app, state: 0)
            running[series, default: 0] += completed(key.run) ? 0 : count
        }
        try begin(.tasksRunning)
        if !withRun && !withApp {
            try w.gauge(Double(running.values.reduce(0, +)))
        } else {
            for (key, count) in running.sorted(by: { seriesOrder($0.key, $1.key) }) {
                try w.gauge(Double(count), labels: runLabel(key.run) + appLabel(key.app))
            }
        }
        try begin(.tries)
        var retries: [SeriesKey: Int] = [:]
        for (key, count) in tryOutcomes.sorted(by: { seriesOrder($0.key, $1.key) }) {
            let outcome = states.names[Int(key.state) - 1]
            try w.counter(Double(count), labels: runLabel(key.run) + appLabel(key.app) + [outcome])
            if outcome == "fail_retryable" { retries[SeriesKey(run: key.run, app: key.app, state: 0), default: 0] += count }
        }
        try begin(.retries)
        if !withRun && !withApp {
            try w.counter(Double(retries.values.reduce(0, +)))
        } else {
            for (key, count) in retries.sorted(by: { seriesOrder($0.key, $1.key) }) {
                try w.counter(Double(count), labels: runLabel(key.run) + appLabel(key.app))
            }
        }
        try begin(.queueWait)
        for (key, histogram) in queueWait.sorted(by: { seriesOrder($0.key, $1.key) }) {
            try w.histogram(histogram, labels: runLabel(key.run) + appLabel(key.app))
        }
        try begin(.runTime)
        for (key, histogram) in runTime.sorted(by: { seriesOrder($0.key, $1.key) }) {
            try w.histogram(histogram, labels: runLabel(key.run) + appLabel(key.app))
        }

        // Blocks: always per run.
        let sortedBlocks = blocks.sorted {
            ($0.key.run, $0.key.executor, $0.key.block) < ($1.key.run, $1.key.executor, $1.key.block)
        }
        try begin(.blockStatus)
        for (key, value) in sortedBlocks {
            try w.gauge(1, labels: [runs[Int(key.run)].info.runID, key.executor, key.block, value.status])
        }
        var blockCounts: [BlockSeries: Int] = [:]
        for series in blockSeries { blockCounts[series] = 0 }
        var endedBlocks: Set<[String]> = []
        var liveBlocks: Set<[String]> = []
        for (key, value) in blocks {
            blockCounts[BlockSeries(run: key.run, executor: key.executor, status: value.status), default: 0] += 1
            let id = [runs[Int(key.run)].info.runID, key.block]
            if LiveState.blockEnded(value.status) { endedBlocks.insert(id) } else { liveBlocks.insert(id) }
        }
        try begin(.blocks)
        for (series, count) in blockCounts.sorted(by: { $0.key < $1.key }) {
            try w.gauge(Double(count), labels: [runs[Int(series.run)].info.runID, series.executor, series.status])
        }

        // Nodes (managers) registered now, per run, block and host: not of an ended block (a block id of any
        // executor that is still live keeps them), not of a completed run.
        struct NodeTotals {
            var managers = 0
            var active = 0
            var workers: Int64 = 0
            var cpus: Int64 = 0
            var memory: Int64 = 0
            var heartbeat: Int64?
        }
        var nodes: [[String]: NodeTotals] = [:]
        var connected: [Int32: Int64] = [:]
        for run in runs.indices { connected[Int32(run)] = 0 }
        for (key, row) in managers {
            let runID = runs[Int(key.run)].info.runID
            let blockID = [runID, row.block]
            guard !completed(key.run), liveBlocks.contains(blockID) || !endedBlocks.contains(blockID) else { continue }
            var totals = nodes[[runID, row.block, row.host]] ?? NodeTotals()
            totals.managers += 1
            if row.active == true { totals.active += 1 }
            totals.workers += row.workers ?? 0
            totals.cpus += row.cpus ?? 0
            totals.memory += row.memoryBytes ?? 0
            if let beat = row.lastHeartbeat { totals.heartbeat = max(totals.heartbeat ?? beat, beat) }
            nodes[[runID, row.block, row.host]] = totals
            // A schema without `active` (before 1.1) cannot say; its managers count as connected.
            if row.active != false { connected[key.run, default: 0] += row.workers ?? 0 }
        }
        let sortedNodes = nodes.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let nodeFamilies: [(ParslMetric, (NodeTotals) -> Double?)] = [
            (.nodeManagers, { Double($0.managers) }),
            (.nodeActiveManagers, { Double($0.active) }),
            (.nodeWorkers, { Double($0.workers) }),
            (.nodeCPUs, { Double($0.cpus) }),
            (.nodeMemory, { Double($0.memory) }),
            (.nodeHeartbeat, { $0.heartbeat.map(seconds) }),
        ]
        for (metric, value) in nodeFamilies {
            try begin(metric)
            for (labelValues, totals) in sortedNodes {
                if let v = value(totals) { try w.gauge(v, labels: labelValues) }
            }
        }
        try begin(.workersConnected)
        for (run, workers) in connected.sorted(by: { $0.key < $1.key }) {
            try w.gauge(Double(workers), labels: [runs[Int(run)].info.runID])
        }

        // Worker processes per host (never per task): current ones for the gauges, all for the CPU total.
        struct HostTotals {
            var residentNow: Double = 0
            var processesNow = 0
            var cpu: Double = 0
        }
        var perHost: [[String]: HostTotals] = [:]
        // Summed in a fixed order: a dictionary's order changes between processes, and float sums with it.
        for (key, process) in workerProcesses.processes.sorted(by: { $0.key < $1.key }) {
            let labelValues = runLabel(key.run) + [hosts.names[Int(key.host)]]
            var totals = perHost[labelValues] ?? HostTotals()
            let block = [runs[Int(key.run)].info.runID, process.block ?? ""]
            if LiveState.processIsCurrent(
                lastSample: process.lastSample, runCompleted: completed(key.run),
                blockEnded: endedBlocks.contains(block) && !liveBlocks.contains(block), now: now,
                windowSeconds: options.recentWindowSeconds)
            {
                totals.residentNow += process.residentBytes
                totals.processesNow += 1
            }
            totals.cpu += process.cpuSeconds
            perHost[labelValues] = totals
        }
        let sortedHosts = perHost.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        try begin(.residentMemory)
        for (labelValues, totals) in sortedHosts { try w.gauge(totals.residentNow, labels: labelValues) }
        try begin(.processes)
        for (labelValues, totals) in sortedHosts { try w.gauge(Double(totals.processesNow), labels: labelValues) }
        try begin(.cpu)
        for (labelValues, totals) in sortedHosts { try w.counter(totals.cpu, labels: labelValues) }

        // The exporter's own.
        try begin(.databaseUp)
        try w.gauge(status.databaseUp ? 1 : 0)
        try begin(.initialReadDone)
        try w.gauge(status.initialReadDone ? 1 : 0)
        try begin(.rowsRead)
        for table in ExporterStatus.tables { try w.counter(Double(status.rowsRead[table] ?? 0), labels: [table]) }
        try begin(.rowsSkipped)
        var skipped = skippedRows
        for (table, count) in status.rowsSkipped { skipped[table, default: 0] += count }
        for table in ExporterStatus.tables { try w.counter(Double(skipped[table] ?? 0), labels: [table]) }
        try begin(.readErrors)
        try w.counter(Double(status.readErrors))
        try begin(.replacements)
        try w.counter(Double(status.databaseReplacements))
        try begin(.newestRow)
        if let newest = newestRowTime { try w.gauge(seconds(newest)) }
        try begin(.newestRowAge)
        if let newest = newestRowTime { try w.gauge(max(0, seconds(now - newest))) }
        try begin(.awaitingHost)
        try w.gauge(Double(workerProcesses.samplesAwaitingHost))
        try begin(.scrapeDuration)
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
