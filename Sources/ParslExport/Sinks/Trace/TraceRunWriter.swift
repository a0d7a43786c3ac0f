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
            args.append("task", .int(Int64(entry.taskID)))
            args.append("try", .int(Int64(entry.tryID)))
            args.append("app", .string(app))
            args.append("executor", .string(data.strings[entry.executor]))
            args.append("block", .string(data.strings[entry.block]))
            args.append("host", .string(data.strings[entry.host]))
            args.append("worker_pid", entry.workerPID == compactMissing ? .null : .int(Int64(entry.workerPID)))
            args.append("final_state", entry.open ? "unfinished" : .string(state))
            args.append("fail_reason", entry.failReason >= 0 ? .string(data.failReasons[Int(entry.failReason)]) : .null)
            let dependencies = data.dependencies(of: entry)
            args.append(
                "depends",
                dependencies.isEmpty ? .null : .string(dependencies.map(String.init).joined(separator: ","))
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
            let name = data.strings[Int32(status.state)] ?? "?"
            var target = layout.find(data, task: status.taskID, attempt: Int32(status.tryID))
            if target == nil && status.tryID < 0 {
                // Schemas without status.try_id: the task's try whose span holds the change, else its first.
                target = tryOfTask(status.taskID, at: status.time)
            }
            // Where a change that is not on its try's lane goes: outside the try's span (pending before launch), on
            // the process, where it cannot be mistaken for a change of whichever try holds the lane then; a change of
            // a try the try table does not have (a crashed run), on the never-ran process.
            let pid: Int
            let scope: TraceInstantScope
            if let index = target, data.tries[index].process >= 0 {
                let entry = data.tries[index]
                pid = layout.processes[Int(entry.process)].pid
                scope = .process
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
            } else {
                pid = notRunPID ?? 1
                scope = notRunPID == nil ? .global : .process
            }
            args.removeAll()
            args.append("task", .int(Int64(status.taskID)))
            args.append("try", status.tryID < 0 ? .null : .int(Int64(status.tryID)))
            try writer.instant(
                name: name,
                category: "status",
                timestamp: status.time - origin,
                pid: pid,
                tid: nil,
                scope: scope,
                args: args
            )
            if offset & 1023 == 0 { try guardLimit() }
        }
        data.statuses.removeAll()
        try guardLimit()
    }

    private func tryOfTask(_ task: Int32, at time: Int64) -> Int? {
        let range = layout.attempts(data, of: task)
        for position in range {
            let index = Int(layout.byKey[position])
            if time >= data.tries[index].start && time <= data.tries[index].end { return index }
        }
        return range.isEmpty ? nil : Int(layout.byKey[range.lowerBound])
    }

    // MARK: - Counters

    /// Resident memory and CPU rate per worker process, on its block's process. The CPU rate is the change of the
    /// worker's cumulative user+system seconds over the change of time since its previous sample; a counter that
    /// goes backwards (a new process reusing the pid) gives no rate.
    private mutating func writeResourceCounters() throws {
        // The block process of each sample, then the samples in (process, pid, time) order.
        var processOf = [Int32](repeating: -1, count: data.resources.count)
        var order: [Int32] = []
        for offset in data.resources.indices {
            let sample = data.resources[offset]
            guard sample.pid != compactMissing,
                let index = layout.find(data, task: sample.taskID, attempt: sample.tryID)
            else { continue }
            let process = data.tries[index].process
            guard process >= 0, layout.processes[Int(process)].kind == .block else { continue }
            processOf[offset] = process
            order.append(Int32(offset))
        }
        order.sort {
            let a = data.resources[Int($0)]
            let b = data.resources[Int($1)]
            return (processOf[Int($0)], a.pid, a.time, $0) < (processOf[Int($1)], b.pid, b.time, $1)
        }
        var previousCPU: (time: Int64, seconds: Double)?
        var memoryName = ""
        var cpuName = ""
        for (position, offset) in order.enumerated() {
            let sample = data.resources[Int(offset)]
            let process = processOf[Int(offset)]
            let newWorker =
                position == 0 || processOf[Int(order[position - 1])] != process
                || data.resources[Int(order[position - 1])].pid != sample.pid
            if newWorker {
                previousCPU = nil
                memoryName = "RSS worker \(sample.pid)"
                cpuName = "CPU worker \(sample.pid)"
            }
            let pid = layout.processes[Int(process)].pid
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
            if let last = previousCPU, sample.time > last.time, sample.cpuSeconds >= last.seconds, inside(sample.time) {
                let rate = (sample.cpuSeconds - last.seconds) / (Double(sample.time - last.time) / 1_000_000)
                try writer.counter(
                    name: cpuName,
                    category: "resource",
                    timestamp: sample.time - origin,
                    pid: pid,
                    series: "cores",
                    value: rate
                )
            }
            previousCPU = (sample.time, sample.cpuSeconds)
            if position & 1023 == 0 { try guardLimit() }
        }
        data.resources.removeAll()
        try guardLimit()
    }

    /// Connected managers and their workers per block, from the interchange's snapshots of each manager.
    private mutating func writeNodeCounters() throws {
        guard !data.nodes.isEmpty else { return }
        var sorted = data.nodes.indices.map { Int32($0) }
        sorted.sort { (data.nodes[Int($0)].time, $0) < (data.nodes[Int($1)].time, $1) }
        var managers: [Int32: [Int32: Int64]] = [:]  // block → manager uid → workers, while active
        for index in sorted {
            let row = data.nodes[Int(index)]
            guard let process = layout.processForBlockID[row.block] else { continue }
            if row.active {
                managers[row.block, default: [:]][row.uid] = Int64(row.workers)
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
        var id: UInt64 = 0
        // byKey holds each task's tries together, in try order: arrows end at the first, start from the last.
        var position = 0
        while position < layout.byKey.count {
            let task = data.tries[Int(layout.byKey[position])].taskID
            let range = layout.attempts(data, of: task)
            position = range.upperBound
            guard let targetIndex = placed(range).first else { continue }
            let target = data.tries[targetIndex]
            guard overlaps(target.start, target.end) else { continue }
            for dependency in data.dependencies(of: target) {
                guard let sourceIndex = placed(layout.attempts(data, of: compact(dependency))).last else { continue }
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

    /// The tries at these positions of `byKey` that are in the trace.
    private func placed(_ range: Range<Int>) -> [Int] {
        range.map { Int(layout.byKey[$0]) }.filter { data.tries[$0].process >= 0 }
    }
}
