import ExpositionFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rows the collector reads, reduced to what the metrics need. Times are UTC microseconds (naive Parsl times are
/// read in the configured zone: `--timezone`, else the exporter host's); `nil` where the source has none or it did
/// not parse.
public enum MetricRow {
    public struct Run: Sendable {
        public var runID: String
        public var workflowName: String?
        public var host: String?
        public var user: String?
        public var began: Int64?
        public var completed: Int64?
    }
    public struct Task: Sendable {
        public var runID: String
        public var taskID: Int64
        public var app: String?
    }
    public struct Status: Sendable {
        public var runID: String
        public var taskID: Int64
        public var tryID: Int64?
        public var state: String
        public var time: Int64?
    }
    public struct Block: Sendable {
        public var runID: String
        public var executor: String
        public var block: String
        public var status: String
        public var time: Int64?
    }
    public struct Node: Sendable {
        public var runID: String
        /// The manager's identity: uid where the schema has it, else host and block.
        public var manager: String
        public var host: String
        public var block: String
        public var cpus: Int64?
        public var memoryBytes: Int64?
        public var active: Bool?
        public var workers: Int64?
        public var lastHeartbeat: Int64?
    }
    /// A try as the try table says: where it ran (the host of its resource samples) and its lifecycle times,
    /// from which the queue-wait and run-time histograms come (`TryLifecycle`, as in try_summary and the trace).
    public struct Try: Sendable {
        public var runID: String
        public var taskID: Int64
        public var tryID: Int64
        public var host: String?
        public var block: String?
        public var launched: Int64? = nil
        public var running: Int64? = nil
        public var returned: Int64? = nil
    }
    public struct Resource: Sendable {
        public var runID: String
        /// The hostname of the sample's try; nil while the try has none yet ("" in schemas without one).
        public var host: String?
        public var pid: Int64?
        public var time: Int64?
        public var residentBytes: Double?
        public var cpuSeconds: Double?
        /// The try the sample was taken in (nil in schemas without try ids: then the host is never awaited).
        public var taskID: Int64? = nil
        public var tryID: Int64? = nil
        /// The block of the sample's try (written with its hostname).
        public var block: String? = nil
    }
}

/// Turns monitoring rows into Prometheus metric families, incrementally: rows can arrive in any order and in any
/// number of polls, and the result is the same.
///
/// Per-task state (an app index, the current state and the key that decides it: 24 bytes a task) is kept per run in
/// `PagedRecords` indexed by task id, whose pages all runs share: at most 2.6 MiB stay in memory and the rest in an
/// unlinked temporary file, so memory stays flat from 10⁵ to 10⁶ tasks, in one run or in hundreds. Label values that come from the data (apps, hosts, states) are
/// capped; beyond the cap they become `other`.
public final class MetricsAggregator {
    public let options: PrometheusOptions

    static let maxApps = 500
    static let maxHosts = 2_000
    static let maxStates = 64
    /// Task ids beyond this are not Parsl's dense per-run counters; such rows are skipped (and counted).
    static let maxTaskID: Int64 = 1 << 26

    // MARK: State

    /// The app series of tasks whose app is unknown: no task row read, or one without a name. Both are `app=""`, so
    /// they must be one series, not two with the same label set.
    static let unknownApp: UInt32 = 1

    private static func newAppInterner() -> Interner {
        var interner = Interner(limit: maxApps)
        precondition(interner.index("") + 1 == unknownApp)
        return interner
    }

    /// The app part of a series key: 0 when the families carry no app label.
    private func appSeries(_ app: UInt32) -> UInt32 {
        guard options.labels.contains(.app) else { return 0 }
        return app == 0 ? Self.unknownApp : app
    }

    struct RunState {
        var info: MetricRow.Run
        let tasks: PagedRecords<TaskRecord>
        /// Hosts of the first two tries of each task, from try rows read before their samples.
        let tryHosts: PagedRecords<TryHosts>

        init(info: MetricRow.Run, pools: TaskPools) {
            self.info = info
            tasks = PagedRecords(pool: pools.tasks)
            tryHosts = PagedRecords(pool: pools.tryHosts)
        }
    }

    /// Pages of per-task state: 96 pages of 1024 tasks (24 KiB) keep at most 2.25 MB in memory, for all runs
    /// together (a database that gathers every run of a directory may hold hundreds).
    struct TaskPaging {
        var recordsPerPage = 1024
        var cachedPages = 96
    }

    /// The pages every run's per-task state shares.
    struct TaskPools {
        let tasks: PagePool<TaskRecord>
        let tryHosts: PagePool<TryHosts>

        init(_ paging: TaskPaging) {
            tasks = PagePool(
                recordsPerPage: paging.recordsPerPage, cachedPages: paging.cachedPages, empty: TaskRecord(),
                spillDirectory: temporaryDirectory, purpose: "metrics")
            tryHosts = PagePool(
                recordsPerPage: paging.recordsPerPage, cachedPages: paging.cachedPages / 4, empty: TryHosts(),
                spillDirectory: temporaryDirectory, purpose: "metrics")
        }
    }

    struct TaskRecord {
        /// Time and try of the status row that decided `state`.
        var stateTime: Int64 = 0
        var app: UInt32 = 0  // 0: not seen yet, else apps index + 1
        var stateTry: Int32 = 0
        var state: UInt8 = 0  // 0: no status yet, else states index + 1
    }

    /// Host and block (indexes + 1 into `tryHostNames` and `tryBlockNames`; 0: unknown) of tries 0 and 1.
    struct TryHosts {
        var host0: UInt32 = 0
        var block0: UInt32 = 0
        var host1: UInt32 = 0
        var block1: UInt32 = 0
    }

    /// (run or -1, app index + 1 or 0 without app labels, state or outcome index + 1 or 0): the label set of the task
    /// families.
    struct SeriesKey: Hashable {
        var run: Int32
        var app: UInt32
        var state: UInt8
    }

    private struct TryKey: Hashable {
        var run: Int32
        var task: Int64
        var attempt: Int64
    }

    /// Which of a try's two durations are in the histograms, for a try read again as it changes (`serve`).
    private struct ObservedDurations {
        var queueWait = false
        var runTime = false
    }

    struct BlockKey: Hashable {
        var run: Int32
        var executor: String
        var block: String
    }

    struct ManagerKey: Hashable {
        var run: Int32
        var manager: String
    }

    /// (run, executor, status): a series of `parsl_blocks`, kept at 0 once no block has that status.
    struct BlockSeries: Hashable, Comparable {
        var run: Int32
        var executor: String
        var status: String

        static func < (a: BlockSeries, b: BlockSeries) -> Bool {
            (a.run, a.executor, a.status) < (b.run, b.executor, b.status)
        }
    }

    private(set) var runs: [RunState] = []
    private var runIndex: [String: Int32] = [:]
    private(set) var apps = MetricsAggregator.newAppInterner()
    private(set) var hosts = Interner(limit: MetricsAggregator.maxHosts)
    private(set) var states = Interner(limit: MetricsAggregator.maxStates)
    private(set) var taskCounts: [SeriesKey: Int] = [:]
    private(set) var tryOutcomes: [SeriesKey: Int] = [:]
    /// Tries with one of their two durations observed (the other may come when the try row is read again).
    private var halfObserved: [TryKey: ObservedDurations] = [:]
    /// Exact totals of the histograms' observations, in microseconds: the sums do not depend on the order in which
    /// tries were read (`serve` reads a try when it completes, `prometheus` in table order).
    private var queueWaitMicros: [SeriesKey: Int64] = [:]
    private var runTimeMicros: [SeriesKey: Int64] = [:]
    private(set) var queueWait: [SeriesKey: Histogram] = [:]
    private(set) var runTime: [SeriesKey: Histogram] = [:]
    private(set) var blocks: [BlockKey: (status: String, time: Int64)] = [:]
    private(set) var managers: [ManagerKey: MetricRow.Node] = [:]
    private(set) var blockSeries: Set<BlockSeries> = []
    private(set) var workerProcesses = WorkerProcesses()
    /// Tasks whose current state is `running`, per (real run, app series; state 0).
    private(set) var runningTasks: [SeriesKey: Int] = [:]
    /// The latest time of any row read (UTC microseconds).
    public private(set) var newestRowTime: Int64?
    /// Names of try hosts and blocks, uncapped: a host becomes a label (in `hosts`) only when a sample names it.
    private var tryHostNames = Interner(limit: .max)
    private var tryBlockNames = Interner(limit: .max)
    /// Hosts of tries past the second (rare: retries), which `RunState.tryHosts` does not hold.
    private var laterTryHosts: [WorkerProcesses.TryKey: (host: UInt32, block: UInt32)] = [:]
    /// Status rows whose task row has not been read yet, with the number of polls they waited.
    private var pending: [(row: MetricRow.Status, polls: Int)] = []
    /// Try rows whose task row has not been read yet, with the number of polls they waited.
    private var pendingTries: [(row: MetricRow.Try, polls: Int)] = []
    public private(set) var skippedRows: [String: Int] = [:]
    /// Every task row that later rows can name has been added (a one-shot export reads the task table first): rows
    /// of a task without one are applied at once, as the final poll would, instead of waiting in memory for it. A
    /// damaged or hostile file can hold millions of such rows.
    public var taskRowsComplete = false

    let taskPaging: TaskPaging
    private let taskPools: TaskPools

    public convenience init(options: PrometheusOptions) {
        self.init(options: options, taskPaging: TaskPaging())
    }

    init(options: PrometheusOptions, taskPaging: TaskPaging) {
        self.options = options
        self.taskPaging = taskPaging
        taskPools = TaskPools(taskPaging)
    }

    // MARK: Ingest

    public func add(_ row: MetricRow.Run) {
        let index = run(row.runID)
        runs[Int(index)].info = row
        seen(row.began)
        seen(row.completed)
    }

    private func seen(_ time: Int64?) {
        guard let time else { return }
        newestRowTime = max(newestRowTime ?? time, time)
    }

    public func add(_ row: MetricRow.Task) throws {
        guard row.taskID >= 0, row.taskID < Self.maxTaskID else { return skip("task") }
        let r = Int(run(row.runID))
        let t = Int(row.taskID)
        let app = apps.index(row.app ?? "") + 1
        let record = try runs[r].tasks.read(t)
        let old = record.app
        guard old != app else { return }
        try runs[r].tasks.update(t) { $0.app = app }
        // A state applied before the task row was read moves to the right app.
        let state = record.state
        if state != 0 && appSeries(old) != appSeries(app) {
            let run = options.labels.contains(.runID) ? Int32(r) : -1
            taskCounts[SeriesKey(run: run, app: appSeries(old), state: state), default: 0] -= 1
            taskCounts[SeriesKey(run: run, app: appSeries(app), state: state), default: 0] += 1
            if states.names[Int(state) - 1] == "running" {
                runningTasks[SeriesKey(run: Int32(r), app: appSeries(old), state: 0), default: 0] -= 1
                runningTasks[SeriesKey(run: Int32(r), app: appSeries(app), state: 0), default: 0] += 1
            }
        }
    }

    public func add(_ row: MetricRow.Status) throws {
        guard row.taskID >= 0, row.taskID < Self.maxTaskID else { return skip("status") }
        let r = Int(run(row.runID))
        // Counters and histograms are attributed to an app once; wait for the task row rather than guess.
        if options.labels.contains(.app), !taskRowsComplete, try runs[r].tasks.read(Int(row.taskID)).app == 0 {
            pending.append((row, 0))
            return
        }
        try apply(row, run: r)
    }

    /// Ends a poll. Status rows still waiting for their task row get one more poll (Parsl commits the task row
    /// first, so this is rare); `final` (a one-shot export) applies them all.
    public func endPoll(final: Bool) throws {
        let waitingTries = pendingTries
        pendingTries = []
        for (row, polls) in waitingTries {
            let r = Int(runIndex[row.runID]!)
            if try runs[r].tasks.read(Int(row.taskID)).app != 0 || final || polls >= 1 {
                try observeDurations(row, run: r)
            } else {
                pendingTries.append((row, polls + 1))
            }
        }
        let waiting = pending
        pending = []
        for (row, polls) in waiting {
            let r = Int(runIndex[row.runID]!)
            if try runs[r].tasks.read(Int(row.taskID)).app != 0 || final || polls >= 1 {
                try apply(row, run: r)
            } else {
                pending.append((row, polls + 1))
            }
        }
    }

    public func add(_ row: MetricRow.Block) {
        let key = BlockKey(run: run(row.runID), executor: row.executor, block: row.block)
        let time = row.time ?? Int64.min
        seen(row.time)
        // Every status a block of this run and executor ever had keeps a series (0 when none has it now), so
        // reading the file at once or row by row gives the same series.
        blockSeries.insert(BlockSeries(run: key.run, executor: row.executor, status: row.status))
        // Latest by timestamp; rows arrive in rowid order, so a tie goes to the later row.
        if let current = blocks[key], current.time > time { return }
        blocks[key] = (row.status, time)
    }

    public func add(_ row: MetricRow.Node) {
        // Node rows are snapshots appended over time: the latest row of a manager is its state.
        managers[ManagerKey(run: run(row.runID), manager: row.manager)] = row
        seen(row.lastHeartbeat)
    }

    public func add(_ row: MetricRow.Resource) throws {
        guard let pid = row.pid else { return skip("resource") }
        let r = run(row.runID)
        seen(row.time)
        var sample = WorkerProcesses.Process(lastSample: row.time ?? Int64.min, residentBytes: 0, cpuSeconds: 0, samples: 1)
        if let rss = row.residentBytes, rss.isFinite { sample.residentBytes = rss }
        if let cpu = row.cpuSeconds, cpu.isFinite { sample.cpuSeconds = cpu }
        sample.block = row.block
        let tryKey = WorkerProcesses.TryKey(run: r, task: row.taskID ?? -1, attempt: row.tryID ?? -1)
        // Without a try to wait for, the host is what the row says (no host in that schema: "").
        var host: String? = row.tryID == nil || row.taskID == nil ? (row.host ?? "") : row.host
        if host == nil, let known = try knownHost(tryKey) {
            host = known.host
            sample.block = known.block
        }
        workerProcesses.add(sample, run: r, pid: pid, host: host.map { hosts.index($0) }, of: tryKey)
    }

    /// A try's host (and block), for its samples: those read before it join their process now, later ones find it.
    public func add(_ row: MetricRow.Try) throws {
        let r = run(row.runID)
        if row.taskID >= 0, row.taskID < Self.maxTaskID {
            // Histograms are attributed to an app once; wait for the task row rather than guess (as statuses do).
            if options.labels.contains(.app), !taskRowsComplete, try runs[Int(r)].tasks.read(Int(row.taskID)).app == 0 {
                pendingTries.append((row, 0))
            } else {
                try observeDurations(row, run: Int(r))
            }
        }
        guard let host = row.host else { return }
        let key = WorkerProcesses.TryKey(run: r, task: row.taskID, attempt: row.tryID)
        if workerProcesses.awaitingHost[key] != nil {
            workerProcesses.resolve(key, host: hosts.index(host), block: row.block)
        }
        let hostIndex = tryHostNames.index(host) + 1
        let blockIndex = row.block.map { tryBlockNames.index($0) + 1 } ?? 0
        switch row.tryID {
        case 0, 1:
            guard row.taskID >= 0, row.taskID < Self.maxTaskID else { return }
            try runs[Int(r)].tryHosts.update(Int(row.taskID)) { record in
                if row.tryID == 0 {
                    (record.host0, record.block0) = (hostIndex, blockIndex)
                } else {
                    (record.host1, record.block1) = (hostIndex, blockIndex)
                }
            }
        default:
            laterTryHosts[key] = (hostIndex, blockIndex)
        }
    }

    /// Queue wait (launched → running) and run time (running → returned) of a try, each observed once.
    private func observeDurations(_ row: MetricRow.Try, run r: Int) throws {
        let key = TryKey(run: Int32(r), task: row.taskID, attempt: row.tryID)
        var observed = halfObserved[key] ?? ObservedDurations()
        let runLabel: Int32 = options.labels.contains(.runID) ? Int32(r) : -1
        let series = SeriesKey(run: runLabel, app: appSeries(try runs[r].tasks.read(Int(row.taskID)).app), state: 0)
        if !observed.queueWait, let wait = TryLifecycle.queueWait(launched: row.launched, running: row.running) {
            queueWaitMicros[series, default: 0] += wait
            queueWait[series, default: Histogram(upperBounds: options.queueWaitBuckets)].observe(Double(wait) / 1e6)
            queueWait[series]!.sum = Double(queueWaitMicros[series]!) / 1e6
            observed.queueWait = true
        }
        if !observed.runTime, let time = TryLifecycle.runTime(running: row.running, returned: row.returned) {
            runTimeMicros[series, default: 0] += time
            runTime[series, default: Histogram(upperBounds: options.runTimeBuckets)].observe(Double(time) / 1e6)
            runTime[series]!.sum = Double(runTimeMicros[series]!) / 1e6
            observed.runTime = true
        }
        halfObserved[key] = observed.queueWait != observed.runTime ? observed : nil
    }

    /// The host and block a try row gave for `key`, if one was read.
    private func knownHost(_ key: WorkerProcesses.TryKey) throws -> (host: String, block: String?)? {
        var indexes: (host: UInt32, block: UInt32)
        switch key.attempt {
        case 0, 1:
            guard key.task >= 0, key.task < Self.maxTaskID else { return nil }
            let record = try runs[Int(key.run)].tryHosts.read(Int(key.task))
            indexes = key.attempt == 0 ? (record.host0, record.block0) : (record.host1, record.block1)
        default:
            guard let later = laterTryHosts[key] else { return nil }
            indexes = later
        }
        guard indexes.host != 0 else { return nil }
        return (
            tryHostNames.names[Int(indexes.host) - 1],
            indexes.block == 0 ? nil : tryBlockNames.names[Int(indexes.block) - 1]
        )
    }

    /// Tries whose resource samples wait for the try's hostname, for the reader to look up.
    public var triesAwaitingHost: [(runID: String, taskID: Int64, tryID: Int64)] {
        workerProcesses.awaitingHost.keys.map { (runs[Int($0.run)].info.runID, $0.task, $0.attempt) }
    }

    /// The hostname of a try is known now (Parsl fills it in after the try's first samples).
    public func resolveHost(runID: String, taskID: Int64, tryID: Int64, host: String, block: String?) {
        guard let r = runIndex[runID] else { return }
        workerProcesses.resolve(
            WorkerProcesses.TryKey(run: r, task: taskID, attempt: tryID), host: hosts.index(host), block: block)
    }

    /// Run ids read so far with whether each has completed, in the order they appeared.
    public var runStates: [(runID: String, completed: Bool)] { runs.map { ($0.info.runID, $0.info.completed != nil) } }

    public func skip(_ table: String) { skippedRows[table, default: 0] += 1 }

    /// Forgets everything, for a database file that was replaced by another.
    public func reset() {
        runs = []
        runIndex = [:]
        apps = Self.newAppInterner()
        hosts = Interner(limit: Self.maxHosts)
        states = Interner(limit: Self.maxStates)
        taskCounts = [:]
        tryOutcomes = [:]
        halfObserved = [:]
        queueWaitMicros = [:]
        runTimeMicros = [:]
        pendingTries = []
        queueWait = [:]
        runTime = [:]
        blocks = [:]
        blockSeries = []
        managers = [:]
        workerProcesses = WorkerProcesses()
        runningTasks = [:]
        newestRowTime = nil
        pending = []
        skippedRows = [:]
        taskRowsComplete = false
        tryHostNames = Interner(limit: .max)
        tryBlockNames = Interner(limit: .max)
        laterTryHosts = [:]
    }

    // MARK: Status logic

    private func apply(_ row: MetricRow.Status, run r: Int) throws {
        let t = Int(row.taskID)
        let state = states.index(row.state)
        let stateCode = UInt8(state + 1)
        let attempt = row.tryID ?? -1
        let time = row.time ?? Int64.min
        seen(row.time)
        let record = try runs[r].tasks.read(t)
        let app = record.app
        let runLabel: Int32 = options.labels.contains(.runID) ? Int32(r) : -1
        let appLabel = appSeries(app)

        // Current task state: a terminal state beats any other, then the later try, then the later time. Status
        // rows are not in logical order (a worker's `running` can land after the next try's `launched`).
        let current = record.state
        let newKey = (TaskState.terminal.contains(row.state) ? 1 : 0, Int64(attempt), time)
        let replace: Bool
        if current == 0 {
            replace = true
        } else {
            let currentName = states.names[Int(current) - 1]
            let oldKey = (
                TaskState.terminal.contains(currentName) ? 1 : 0, Int64(record.stateTry), record.stateTime
            )
            replace = newKey >= oldKey
        }
        if replace {
            if current != 0 { taskCounts[SeriesKey(run: runLabel, app: appLabel, state: current), default: 0] -= 1 }
            taskCounts[SeriesKey(run: runLabel, app: appLabel, state: stateCode), default: 0] += 1
            let running = SeriesKey(run: Int32(r), app: appLabel, state: 0)
            if current != 0, states.names[Int(current) - 1] == "running" { runningTasks[running, default: 0] -= 1 }
            if row.state == "running" { runningTasks[running, default: 0] += 1 }
            try runs[r].tasks.update(t) {
                $0.state = stateCode
                $0.stateTry = Int32(clamping: attempt)
                $0.stateTime = time
            }
        }

        // Tries by outcome: one per try, as try_summary's final states. Parsl up to 2024.01 wrote a dependency
        // failure's dep_fail row twice; a row repeating the state its task already has for that try counts once.
        // (Without try ids, parsl-visualize's schema, a task's tries cannot be told apart: every row counts.)
        let repeated = row.tryID != nil && current == stateCode && Int64(record.stateTry) == attempt
        if TaskState.isTerminalForTry(row.state) && !repeated {
            tryOutcomes[SeriesKey(run: runLabel, app: appLabel, state: stateCode), default: 0] += 1
        }
    }

    private func run(_ id: String) -> Int32 {
        if let index = runIndex[id] { return index }
        let index = Int32(runs.count)
        runs.append(RunState(info: MetricRow.Run(runID: id), pools: taskPools))
        runIndex[id] = index
        return index
    }

    /// Tasks tracked, for the exporter's own metrics and tests.
    public var pendingStatusRows: Int { pending.count }
    public var triesInFlight: Int { halfObserved.count + pendingTries.count }
}

/// Where per-task state spills: `TMPDIR`, else /tmp.
private let temporaryDirectory: String = {
    if let value = getenv("TMPDIR"), value.pointee != 0 { return String(cString: value) }
    return "/tmp"
}()

extension MetricRow.Run {
    init(runID: String) { self.init(runID: runID, workflowName: nil, host: nil, user: nil, began: nil, completed: nil) }
}

/// Strings of one label to small indexes, with a cap: past `limit` distinct values, new ones become `other`.
struct Interner {
    let limit: Int
    private(set) var names: [String] = []
    private var indexes: [String: UInt32] = [:]

    init(limit: Int) { self.limit = limit }

    mutating func index(_ name: String) -> UInt32 {
        if let index = indexes[name] { return index }
        let key = names.count < limit ? name : "other"
        if let index = indexes[key] {
            return index
        }
        let index = UInt32(names.count)
        names.append(key)
        indexes[key] = index
        return index
    }
}
