import TraceEventFormat

/// Writes the events of one laid-out run: metadata first (each process and thread named once, before any event
/// uses it), then block lifecycles, tries with their phases, status instants, counters and dependency flows.
struct TraceRunWriter {
    let data: TraceRunData
    let layout: TraceLayout
    let writer: TraceEventWriter
    /// Subtracted from every timestamp (0 with --absolute).
    let origin: Int64
    /// Events outside [since, until] (database clock) are left out; slices are kept when they overlap it.
    let since: Int64
    let until: Int64
    let maxEvents: Int
    let context: ExportContext

    private var args = TraceArgs(minimumCapacity: 16)
    private(set) var flowCount = 0
    private(set) var triesWritten = 0

    init(
        data: TraceRunData,
        layout: TraceLayout,
        writer: TraceEventWriter,
        origin: Int64,
        since: Int64,
        until: Int64,
        maxEvents: Int,
        context: ExportContext
    ) {
        self.data = data
        self.layout = layout
        self.writer = writer
        self.origin = origin
        self.since = since
        self.until = until
        self.maxEvents = maxEvents
        self.context = context
    }

    private func overlaps(_ start: Int64, _ end: Int64) -> Bool { end >= since && start <= until }
    private func inside(_ time: Int64) -> Bool { time >= since && time <= until }

    private func guardLimit() throws {
        guard maxEvents > 0, writer.eventCount > maxEvents else { return }
        throw ExportError(
            .limitExceeded,
            "run \(data.run.runID): the trace has more than --max-events \(maxEvents) events; "
                + "narrow it with --since/--until or raise --max-events (0 means no limit)"
        )
    }

    mutating func write() throws {
        try writeMetadata()
        try writeRunMarkers()
        try writeBlockLifecycles()
        try writeTries()
        try writeStatuses()
        try writeResourceCounters()
        try writeNodeCounters()
        try writeFlows()
        try guardLimit()
    }

    // MARK: - Metadata

    private func writeMetadata() throws {
        for process in layout.processes {
            try writer.processName(pid: process.pid, process.name)
            try writer.processSortIndex(pid: process.pid, process.pid)
            for thread in process.threads {
                try writer.threadName(pid: process.pid, tid: thread.tid, thread.name)
                try writer.threadSortIndex(pid: process.pid, tid: thread.tid, thread.tid)
            }
        }
    }

    /// The run's start and end (or, for a run that never completed, the last moment seen) across the whole trace.
    private mutating func writeRunMarkers() throws {
        guard let process = layout.processes.first(where: { $0.kind == .workflow }) else { return }
        let run = data.run
        var markers: [(String, Int64)] = []
        if let began = run.began { markers.append(("workflow began", began)) }
        if let completed = run.completed {
            markers.append(("workflow completed", completed))
        } else if data.hasTime {
            markers.append(("workflow unfinished: last timestamp in the database", data.lastSeen))
        }
        for (name, time) in markers where inside(time) {
            args.removeAll()
            args.append("run", .string(run.runID))
            args.append("workflow_name", .string(run.workflowName))
            args.append("host", .string(run.host))
            args.append("user", .string(run.user))
            args.append("rundir", .string(run.rundir))
            try writer.instant(
                name: name,
                category: "workflow",
                timestamp: time - origin,
                pid: process.pid,
                tid: nil,
                scope: .global,
                args: args
            )
        }
    }

    // MARK: - Blocks

    private mutating func writeBlockLifecycles() throws {
        guard let blocksProcess = layout.processes.first(where: { $0.kind == .blocks }) else { return }
        var rows: [TraceLayout.BlockKey: [TraceBlockRow]] = [:]
        for row in data.blocks {
            rows[TraceLayout.BlockKey(executor: row.executor, block: row.block), default: []].append(row)
        }
        for (key, unsorted) in rows {
            guard let tid = layout.blockLifecycleThread[key] else { continue }
            let sorted = unsorted.sorted { $0.time < $1.time }
            // Parsl up to 1.2 repeats the same status at every poll: one slice per change of status.
            var changes: [TraceBlockRow] = []
            for row in sorted where changes.last?.status != row.status { changes.append(row) }
            for (offset, row) in changes.enumerated() {
                let end = offset + 1 < changes.count ? changes[offset + 1].time : max(data.lastSeen, row.time)
                guard overlaps(row.time, end) else { continue }
                let status = data.strings[row.status] ?? "?"
                args.removeAll()
                args.append("executor", .string(data.strings[key.executor]))
                args.append("block", .string(data.strings[key.block]))
                args.append("job_id", .string(data.strings[row.jobID]))
                try writer.complete(
                    name: status,
                    category: "block",
                    timestamp: row.time - origin,
                    duration: end - row.time,
                    pid: blocksProcess.pid,
                    tid: tid,
                    color: Self.blockColor(status),
                    args: args
                )
            }
        }
        try guardLimit()
    }

    static func blockColor(_ status: String) -> TraceColor {
        switch status {
        case "PENDING": .yellow
        case "RUNNING": .good
        case "FAILED", "MISSING", "TIMEOUT", "UNKNOWN": .terrible
        case "HELD": .bad
        default: .grey  // CANCELLED, COMPLETED, SCALED_IN: the block is gone
        }
    }

    // MARK: - Tries

    private mutating func writeTries() throws {
        for index in data.tries.indices {
            let entry = data.tries[index]
            guard entry.process >= 0, overlaps(entry.start, entry.end) else { continue }
            let pid = layout.processes[Int(entry.process)].pid
            let tid = Int(entry.tid)
            let app = data.strings[entry.app]
            let state = data.strings[entry.finalState]
            args.removeAll()
            args.append("run", .string(data.run.runID))
            args.append("task", .int(entry.taskID))
            args.append("try", .int(entry.tryID))
            args.append("app", .string(app))
            args.append("executor", .string(data.strings[entry.executor]))
            args.append("block", .string(data.strings[entry.block]))
            args.append("host", .string(data.strings[entry.host]))
            args.append("worker_pid", entry.workerPID == traceMissing ? .null : .int(entry.workerPID))
            args.append("final_state", entry.open ? "unfinished" : .string(state))
            args.append("fail_reason", .string(entry.failReason))
            args.append(
                "depends",
                .string(data.dependencies[entry.taskID].map { $0.map(String.init).joined(separator: ",") })
            )
            if entry.peakRSS != traceMissing { args.append("peak_rss_bytes", .int(entry.peakRSS)) }
            if !entry.cpuSeconds.isNaN { args.append("cpu_seconds", .double(entry.cpuSeconds)) }
            if entry.open { args.append("unfinished", true) }
            try writer.complete(
                name: app ?? "task \(entry.taskID)",
                category: entry.ran ? "try" : "try.not_run",
                timestamp: entry.start - origin,
                duration: entry.end - entry.start,
                pid: pid,
                tid: tid,
                color: entry.open ? .yellow : Self.stateColor(state),
                args: args
            )
            triesWritten += 1
            guard entry.ran else { continue }
            // Phases; an inverted pair (running stamped before launched) has no waiting phase.
            let runningFrom = entry.launched == traceMissing ? entry.running : max(entry.launched, entry.running)
            if entry.launched != traceMissing && entry.running > entry.launched {
                try writer.complete(
                    name: "waiting",
                    category: "phase",
                    timestamp: entry.launched - origin,
                    duration: entry.running - entry.launched,
                    pid: pid,
                    tid: tid,
                    color: .threadStateRunnable
                )
            }
            if entry.end > runningFrom {
                try writer.complete(
                    name: "running",
                    category: "phase",
                    timestamp: runningFrom - origin,
                    duration: entry.end - runningFrom,
                    pid: pid,
                    tid: tid,
                    color: entry.open ? .yellow : .threadStateRunning
                )
            }
            if index & 1023 == 0 { try guardLimit() }
        }
        try guardLimit()
    }

    static func stateColor(_ state: String?) -> TraceColor {
        switch state {
        case "exec_done": .good
        case "memo_done": .olive
        case "failed": .terrible
        case "fail_retryable": .bad
        case "dep_fail": .grey
        default: .genericWork
        }
    }

    // MARK: - Status changes

    private mutating func writeStatuses() throws {
        let notRunPID = layout.notRunProcess.map { layout.processes[$0].pid }
        for (offset, status) in data.statuses.enumerated() where inside(status.time) {
            let name = data.strings[status.state] ?? "?"
            var target = layout.tryIndex[TryKey(task: status.taskID, attempt: status.tryID)]
            if target == nil && status.tryID == traceMissing {
                // Schemas without status.try_id: the task's try whose span holds the change, else its first.
                target = tryOfTask(status.taskID, at: status.time)
            }
            if let index = target, data.tries[index].process >= 0 {
                let entry = data.tries[index]
                let pid = layout.processes[Int(entry.process)].pid
                if status.time >= entry.start && status.time <= entry.end {
                    try writer.instant(
                        name: name,
                        category: "status",
                        timestamp: status.time - origin,
                        pid: pid,
                        tid: Int(entry.tid)
                    )
                    continue
                }
                // Outside the try's span (pending before launch): on the process, where it cannot be mistaken for
                // a change of whichever try holds the lane then.
                args.removeAll()
                args.append("task", .int(status.taskID))
                args.append("try", status.tryID == traceMissing ? .null : .int(status.tryID))
                try writer.instant(
                    name: name,
                    category: "status",
                    timestamp: status.time - origin,
                    pid: pid,
                    tid: nil,
                    scope: .process,
                    args: args
                )
            } else {
                // A change of a try the try table does not have (a crashed run): on the never-ran process.
                args.removeAll()
                args.append("task", .int(status.taskID))
                args.append("try", status.tryID == traceMissing ? .null : .int(status.tryID))
                try writer.instant(
                    name: name,
                    category: "status",
                    timestamp: status.time - origin,
                    pid: notRunPID ?? 1,
                    tid: nil,
                    scope: notRunPID == nil ? .global : .process,
                    args: args
                )
            }
            if offset & 1023 == 0 { try guardLimit() }
        }
        try guardLimit()
    }

    private func tryOfTask(_ task: Int64, at time: Int64) -> Int? {
        var first: Int?
        var attempt: Int64 = 0
        while let index = layout.tryIndex[TryKey(task: task, attempt: attempt)] {
            if first == nil { first = index }
            if time >= data.tries[index].start && time <= data.tries[index].end { return index }
            attempt += 1
        }
        return first
    }

    // MARK: - Counters

    private struct WorkerKey: Hashable {
        var process: Int32
        var pid: Int64
    }

    /// Resident memory and CPU rate per worker process, on its block's process. The CPU rate is the change of the
    /// worker's cumulative user+system seconds over the change of time since its previous sample; a counter that
    /// goes backwards (a new process reusing the pid) gives no rate.
    private mutating func writeResourceCounters() throws {
        var byWorker: [WorkerKey: [Int]] = [:]
        for (offset, sample) in data.resources.enumerated() where sample.pid != traceMissing {
            guard let index = layout.tryIndex[TryKey(task: sample.taskID, attempt: sample.tryID)] else { continue }
            let process = data.tries[index].process
            guard process >= 0, layout.processes[Int(process)].kind == .block else { continue }
            byWorker[WorkerKey(process: process, pid: sample.pid), default: []].append(offset)
        }
        for (key, offsets) in byWorker {
            let pid = layout.processes[Int(key.process)].pid
            let memoryName = "RSS worker \(key.pid)"
            let cpuName = "CPU worker \(key.pid)"
            let sorted = offsets.sorted { data.resources[$0].time < data.resources[$1].time }
            var previous: TraceResource?
            for offset in sorted {
                let sample = data.resources[offset]
                if inside(sample.time) && !sample.residentBytes.isNaN {
                    try writer.counter(
                        name: memoryName,
                        category: "resource",
                        timestamp: sample.time - origin,
                        pid: pid,
                        series: "bytes",
                        value: sample.residentBytes
                    )
                }
                guard !sample.cpuSeconds.isNaN else { continue }
                if let last = previous, sample.time > last.time, sample.cpuSeconds >= last.cpuSeconds,
                    inside(sample.time)
                {
                    let rate = (sample.cpuSeconds - last.cpuSeconds) / (Double(sample.time - last.time) / 1_000_000)
                    try writer.counter(
                        name: cpuName,
                        category: "resource",
                        timestamp: sample.time - origin,
                        pid: pid,
                        series: "cores",
                        value: rate
                    )
                }
                previous = sample
            }
            try guardLimit()
        }
    }

    /// Connected managers and their workers per block, from the interchange's snapshots of each manager.
    private mutating func writeNodeCounters() throws {
        guard !data.nodes.isEmpty else { return }
        let sorted = data.nodes.indices.sorted { data.nodes[$0].time < data.nodes[$1].time }
        var managers: [Int32: [Int32: Int64]] = [:]  // block → manager uid → workers, while active
        for index in sorted {
            let row = data.nodes[index]
            guard let process = layout.processForBlockID[row.block] else { continue }
            if row.active {
                managers[row.block, default: [:]][row.uid] = row.workers
            } else {
                managers[row.block, default: [:]][row.uid] = nil
            }
            guard inside(row.time) else { continue }
            let state = managers[row.block] ?? [:]
            let pid = layout.processes[process].pid
            try writer.counter(
                name: "managers",
                category: "node",
                timestamp: row.time - origin,
                pid: pid,
                series: "active",
                value: Double(state.count)
            )
            try writer.counter(
                name: "workers",
                category: "node",
                timestamp: row.time - origin,
                pid: pid,
                series: "connected",
                value: Double(state.values.reduce(0, +))
            )
        }
        try guardLimit()
    }

    // MARK: - Flows

    /// One arrow per dependency edge, from the end of the dependency's last try to the start of the dependent's
    /// first try. The ends sit 1 µs inside the slices (when they are long enough), so that they bind to these slices
    /// and not to a neighbour that ends or starts at the same microsecond.
    private mutating func writeFlows() throws {
        var lastTry: [Int64: Int] = [:]
        var firstTry: [Int64: Int] = [:]
        for index in data.tries.indices where data.tries[index].process >= 0 {
            let entry = data.tries[index]
            if let known = lastTry[entry.taskID] {
                if data.tries[known].tryID < entry.tryID { lastTry[entry.taskID] = index }
            } else {
                lastTry[entry.taskID] = index
            }
            if let known = firstTry[entry.taskID] {
                if data.tries[known].tryID > entry.tryID { firstTry[entry.taskID] = index }
            } else {
                firstTry[entry.taskID] = index
            }
        }
        var id: UInt64 = 0
        for task in data.dependencies.keys.sorted() {
            guard let targetIndex = firstTry[task] else { continue }
            let target = data.tries[targetIndex]
            guard overlaps(target.start, target.end) else { continue }
            for dependency in data.dependencies[task]! {
                guard let sourceIndex = lastTry[dependency] else { continue }
                let source = data.tries[sourceIndex]
                guard overlaps(source.start, source.end) else { continue }
                id += 1
                var from = source.end - source.start >= 2 ? source.end - 1 : source.start
                var to = target.end - target.start >= 2 ? target.start + 1 : target.start
                if to < from {
                    // The dependent's slice began before the dependency ended (a dep_fail try is waiting from its
                    // submission on): point at where the dependency ended. Readers drop arrows going back in time.
                    to = min(max(from, target.start), target.end)
                    // Still earlier only when the two clocks disagree: start the arrow as early as the source allows.
                    if to < from { from = max(source.start, to) }
                }
                try writer.flowStart(
                    id: id,
                    name: "dependency",
                    category: "dependency",
                    timestamp: from - origin,
                    pid: layout.processes[Int(source.process)].pid,
                    tid: Int(source.tid)
                )
                try writer.flowEnd(
                    id: id,
                    name: "dependency",
                    category: "dependency",
                    timestamp: to - origin,
                    pid: layout.processes[Int(target.process)].pid,
                    tid: Int(target.tid)
                )
            }
            try guardLimit()
        }
        flowCount = Int(id)
    }
}
