import TraceEventFormat

/// Writes the trace of one run in passes over the database, each reading rows in the order it needs and
/// keeping only what is open at once, plus one `TrySlot` per try (paged, see `TrySlots`):
///
/// 1. layout: tries in start order → each try's span, process and lane;
/// 2. metadata (every process and thread named once, before any event uses it), run markers, block lifecycles;
/// 3. status rows → instants on their try's lane, and each try's final state;
/// 4. tries → slices with their phases;
/// 5. dependencies → flow arrows;
/// 6. resource samples in time order → memory and CPU counters per worker;
/// 7. node snapshots in time order → manager and worker counters per block.
struct TraceRunWriter {
    struct Window {
        /// Subtracted from every timestamp (0 with --absolute).
        var origin: Int64
        /// Events outside [since, until] (database clock) are left out; slices are kept when they overlap it.
        var since: Int64
        var until: Int64
        var maxEvents: Int
    }

    let source: TraceSource
    let run: WorkflowRun
    let writer: TraceEventWriter
    let window: Window
    /// The run's last timestamp in any table: where the open tries of a crashed run end.
    let lastSeen: Int64?

    private var layout: TraceLayout
    private var slots: TrySlots
    private var states = StateNames()
    private(set) var flowCount = 0
    private(set) var triesWritten = 0

    init(source: TraceSource, run: WorkflowRun, writer: TraceEventWriter, window: Window, lastSeen: Int64?, spillDirectory: String)
        throws
    {
        self.source = source
        self.run = run
        self.writer = writer
        self.window = window
        self.lastSeen = lastSeen
        layout = TraceLayout(workflowName: run.workflowName ?? run.runID)
        let geometry = try source.tryGeometry()
        slots = TrySlots(
            firstTask: geometry.firstTask,
            lastTask: geometry.lastTask,
            lastTry: geometry.lastTry,
            count: geometry.count,
            spillDirectory: spillDirectory
        )
    }

    private func overlaps(_ start: Int64, _ end: Int64) -> Bool { end >= window.since && start <= window.until }
    private func inside(_ time: Int64) -> Bool { time >= window.since && time <= window.until }

    private func guardLimit() throws {
        guard window.maxEvents > 0, writer.eventCount > window.maxEvents else { return }
        throw ExportError(
            .limitExceeded,
            "run \(run.runID): the trace has more than --max-events \(window.maxEvents) events; "
                + "narrow it with --since/--until or raise --max-events (0 means no limit)"
        )
    }

    mutating func write() throws {
        try layOut()
        try writeMetadata()
        try writeRunMarkers()
        try writeBlockLifecycles()
        try writeStatuses()
        try writeTries()
        try writeFlows()
        try writeResourceCounters()
        try writeNodeCounters()
        try guardLimit()
    }

    // MARK: - Layout

    private mutating func layOut() throws {
        let runOpen = run.isUnfinished
        try source.layoutRows { row in
            guard let task = row.int(0), let attempt = row.int(1),
                let index = slots.index(task: task, try: attempt, create: true)
            else { return }
            let launched = row.int(5)
            let running = row.int(6)
            let returned = row.int(7)
            let ran = running != nil
            var times = [launched, running, returned].compactMap { $0 }
            if !ran { times += [row.int(10), row.int(11)].compactMap { $0 } }
            guard let first = times.min(), let latest = times.max() else { return }
            let unfinishedState = !(row.text(9).map(TaskState.isTerminalForTry) ?? false)
            var slot = TrySlot()
            slot.flags = [.present, .placed]
            if ran { slot.flags.insert(.ran) }
            // Slice from the first moment of the try; an inverted running-before-launched pair starts at running.
            slot.start = first
            if let returned, ran {
                slot.end = max(returned, first)
            } else if unfinishedState && runOpen {
                // A crashed run: the try is still open at the last moment the database saw anything.
                slot.end = max(lastSeen ?? first, first)
                slot.flags.insert(.open)
            } else {
                slot.end = latest
                if unfinishedState && returned == nil { slot.flags.insert(.open) }
            }
            let process = layout.process(ran: ran, executor: row.text(2), block: row.text(3), host: row.text(4))
            let workerPID = row.int(8).flatMap { Int32(exactly: $0) }
            let placement = layout.place(process: process, start: slot.start, end: slot.end, workerPID: workerPID)
            slot.process = Int32(process)
            slot.lane = placement.lane
            if placement.onWorker { slot.flags.insert(.onWorkerLane) }
            try slots.update(index) { $0 = slot }
        }
        try source.blockRows { row in
            layout.lifecycleBlock(TraceLayout.BlockKey(executor: row.text(0), block: row.text(1)))
        }
        try source.nodeBlocks { row in layout.nodeBlock(row.text(0), host: row.text(1)) }
        layout.finish()
    }

    private func tid(_ slot: TrySlot) -> Int {
        layout.tid(process: Int(slot.process), lane: slot.lane, onWorker: slot.flags.contains(.onWorkerLane))
    }

    private func pid(_ slot: TrySlot) -> Int { layout.processes[Int(slot.process)].pid }

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
    private func writeRunMarkers() throws {
        let process = layout.processes[layout.workflowProcess]
        var markers: [(String, Int64)] = []
        if let began = run.began { markers.append(("workflow began", began)) }
        if let completed = run.completed {
            markers.append(("workflow completed", completed))
        } else if let lastSeen {
            markers.append(("workflow unfinished: last timestamp in the database", lastSeen))
        }
        let category = TraceText("workflow")
        for (name, time) in markers where inside(time) {
            try writer.instant(
                name: TraceText(name), category: category, timestamp: time - window.origin, pid: process.pid, tid: nil,
                scope: .global
            ) { args in
                args.string("run", run.runID)
                if let name = run.workflowName { args.string("workflow_name", name) }
                if let host = run.host { args.string("host", host) }
                if let user = run.user { args.string("user", user) }
                if let rundir = run.rundir { args.string("rundir", rundir) }
            }
        }
    }

    // MARK: - Blocks

    private func writeBlockLifecycles() throws {
        guard let blocksProcess = layout.blocksProcess else { return }
        let pid = layout.processes[blocksProcess].pid
        let category = TraceText("block")
        // Rows come by block, then time. Parsl up to 1.2 repeats the same status at every poll: one slice per
        // change of status, which lasts until the next change (or the end of the run).
        var pending: (key: TraceLayout.BlockKey, status: String, job: String?, time: Int64)?
        func close(_ end: Int64?) throws {
            guard let open = pending, let tid = layout.blockLifecycleThread[open.key] else { return }
            let until = end ?? max(lastSeen ?? open.time, open.time)
            guard overlaps(open.time, until) else { return }
            try writer.complete(
                name: TraceText(open.status), category: category, timestamp: open.time - window.origin,
                duration: until - open.time, pid: pid, tid: tid, color: Self.blockColor(open.status)
            ) { args in
                args.string("executor", open.key.executor ?? "")
                args.string("block", open.key.block ?? "")
                if let job = open.job { args.string("job_id", job) }
            }
        }
        try source.blockRows { row in
            guard let time = row.int(4) else { return }
            let key = TraceLayout.BlockKey(executor: row.text(0), block: row.text(1))
            let status = row.text(2) ?? ""
            if let open = pending, open.key == key {
                if open.status == status { return }
                try close(time)
            } else {
                try close(nil)
            }
            pending = (key, status, row.text(3), time)
        }
        try close(nil)
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

    // MARK: - Status changes

    /// Each status row is an instant: on its try's lane when it falls within the try's span; otherwise on the
    /// process (pending before launch), where it cannot be mistaken for a change of whichever try holds the lane
    /// then; a change of a try the try table does not have (a crashed run), on the never-ran process. The same
    /// rows decide each try's final state: terminal states first, then the latest (as try_summary).
    private mutating func writeStatuses() throws {
        let notRunPID = layout.notRunProcess.map { layout.processes[$0].pid }
        let category = TraceText("status")
        let hasTry = source.has("status", "try_id")
        var count = 0
        try source.statusRows { row in
            guard let task = row.int(0) else { return }
            let attempt = hasTry ? row.int(1, warn: ("status", "try_id")) : nil
            let state = states.id(row)
            let time = row.int(3)
            // Final state: the rows arrive in rowid order, so a later row wins a tie.
            let rank: TrySlot.Flags = states.isTerminal(state) ? .terminalState : []
            let decides = { (slot: TrySlot) -> Bool in
                let stored: TrySlot.Flags = slot.flags.intersection(.terminalState)
                if rank.rawValue != stored.rawValue { return rank.rawValue > stored.rawValue }
                return slot.state < 0 || (time ?? .min) >= slot.stateTime
            }
            var target: Int?
            if let attempt {
                target = slots.index(task: task, try: attempt)
                if let index = target {
                    try slots.update(index) { slot in
                        if decides(slot) {
                            slot.state = state
                            slot.stateTime = time ?? .min
                            slot.flags.remove(.terminalState)
                            slot.flags.formUnion(rank)
                        }
                    }
                }
            } else {
                // Eras without status.try_id: the row decides for every try of its task, and is drawn on the try
                // whose span holds it, else on the task's first.
                let tries = try slots.tries(of: task)
                for index in tries {
                    try slots.update(index) { slot in
                        if decides(slot) {
                            slot.state = state
                            slot.stateTime = time ?? .min
                            slot.flags.remove(.terminalState)
                            slot.flags.formUnion(rank)
                        }
                    }
                }
                if let time {
                    target = try tries.first { index in
                        let slot = try slots.read(index)
                        return time >= slot.start && time <= slot.end
                    } ?? tries.first
                }
            }
            guard let time, inside(time) else { return }
            let name = states.text(state)
            let timestamp = time - window.origin
            let slot = try target.map { try slots.read($0) }
            if let slot, slot.flags.contains(.placed) {
                if time >= slot.start && time <= slot.end {
                    try writer.instant(name: name, category: category, timestamp: timestamp, pid: pid(slot), tid: tid(slot))
                } else {
                    try writer.instant(
                        name: name, category: category, timestamp: timestamp, pid: pid(slot), tid: nil, scope: .process
                    ) { args in
                        args.int("task", task)
                        if let attempt { args.int("try", attempt) }
                    }
                }
            } else {
                try writer.instant(
                    name: name, category: category, timestamp: timestamp, pid: notRunPID ?? 1, tid: nil,
                    scope: notRunPID == nil ? .global : .process
                ) { args in
                    args.int("task", task)
                    if let attempt { args.int("try", attempt) }
                }
            }
            count += 1
            if count & 4095 == 0 { try guardLimit() }
        }
        try guardLimit()
    }

    // MARK: - Tries

    private mutating func writeTries() throws {
        let ranCategory = TraceText("try")
        let notRunCategory = TraceText("try.not_run")
        let phaseCategory = TraceText("phase")
        let waiting = TraceText("waiting")
        let running = TraceText("running")
        var apps: [String: TraceText] = [:]
        try source.tryRows { row in
            guard let task = row.int(0), let attempt = row.int(1), let index = slots.index(task: task, try: attempt)
            else { return }
            let slot = try slots.read(index)
            guard slot.flags.contains(.placed), overlaps(slot.start, slot.end) else { return }
            let pid = pid(slot)
            let tid = tid(slot)
            let app = row.text(2)
            let open = slot.flags.contains(.open)
            let ran = slot.flags.contains(.ran)
            let state = slot.state >= 0 ? states.name(slot.state) : nil
            let name: TraceText
            if let app {
                if let known = apps[app] {
                    name = known
                } else {
                    name = TraceText(app)
                    apps[app] = name
                }
            } else {
                name = TraceText("task \(task)")
            }
            try writer.complete(
                name: name,
                category: ran ? ranCategory : notRunCategory,
                timestamp: slot.start - window.origin,
                duration: slot.end - slot.start,
                pid: pid,
                tid: tid,
                color: open ? .yellow : Self.stateColor(state)
            ) { args in
                // Args without a value are left out.
                args.string("run", run.runID)
                args.int("task", task)
                args.int("try", attempt)
                if let app { args.string("app", app) }
                if let executor = row.text(3) { args.string("executor", executor) }
                if let block = row.text(4) { args.string("block", block) }
                if let host = row.text(5) { args.string("host", host) }
                if let worker = row.int(6) { args.int("worker_pid", worker) }
                if open {
                    args.string("final_state", "unfinished")
                } else if let state {
                    args.string("final_state", states.text(slot.state))
                }
                if let reason = row.text(11), !reason.isEmpty { args.string("fail_reason", reason) }
                if let dependencies = row.withText(12, IDList.parse), !dependencies.isEmpty {
                    args.string("depends", dependencies.map(String.init).joined(separator: ","))
                }
                if let peak = row.int(7) { args.int("peak_rss_bytes", peak) }
                if let cpu = row.double(8) { args.double("cpu_seconds", cpu) }
                if open { args.bool("unfinished", true) }
            }
            triesWritten += 1
            guard ran, let runningAt = row.int(10) else { return }
            // Phases; an inverted pair (running stamped before launched) has no waiting phase.
            let launched = row.int(9)
            let runningFrom = launched.map { max($0, runningAt) } ?? runningAt
            if let launched, runningAt > launched {
                try writer.complete(
                    name: waiting, category: phaseCategory, timestamp: launched - window.origin,
                    duration: runningAt - launched, pid: pid, tid: tid, color: .threadStateRunnable)
            }
            if slot.end > runningFrom {
                try writer.complete(
                    name: running, category: phaseCategory, timestamp: runningFrom - window.origin,
                    duration: slot.end - runningFrom, pid: pid, tid: tid, color: open ? .yellow : .threadStateRunning)
            }
            if triesWritten & 1023 == 0 { try guardLimit() }
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

    // MARK: - Flows

    /// One arrow per dependency edge, from the end of the dependency's last try to the start of the dependent's
    /// first try. The ends sit 1 µs inside the slices (when they are long enough), so that they bind to these slices
    /// and not to a neighbour that ends or starts at the same microsecond.
    private mutating func writeFlows() throws {
        let name = TraceText("dependency")
        var id: UInt64 = 0
        func placed(_ task: Int64) throws -> [TrySlot] {
            try slots.tries(of: task).map { try slots.read($0) }.filter { $0.flags.contains(.placed) }
        }
        try source.dependencyRows { row in
            guard let task = row.int(0), let dependencies = row.withText(1, IDList.parse), !dependencies.isEmpty,
                let target = try placed(task).first, overlaps(target.start, target.end)
            else { return }
            for dependency in dependencies {
                guard let source = try placed(dependency).last, overlaps(source.start, source.end) else { continue }
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
                    id: id, name: name, category: name, timestamp: from - window.origin, pid: pid(source), tid: tid(source))
                try writer.flowEnd(
                    id: id, name: name, category: name, timestamp: to - window.origin, pid: pid(target), tid: tid(target))
            }
            if id & 1023 == 0 { try guardLimit() }
        }
        flowCount = Int(id)
        try guardLimit()
    }

    // MARK: - Counters

    /// Resident memory and CPU rate per worker process, on its block's process. The CPU rate is the change of the
    /// worker's cumulative user+system seconds over the change of time since its previous sample; a counter that
    /// goes backwards (a new process reusing the pid) gives no rate.
    private mutating func writeResourceCounters() throws {
        struct Track: Hashable {
            var process: Int32
            var pid: Int64
        }
        struct Worker {
            var memory: TraceText
            var cpu: TraceText
            var previous: (time: Int64, seconds: Double)?
        }
        let category = TraceText("resource")
        var workers: [Track: Worker] = [:]
        var count = 0
        try source.resourceRows { row in
            guard let pid = row.int(2, warn: ("resource", "psutil_process_pid")), let time = row.int(3),
                let task = row.int(0), let attempt = row.int(1), let index = slots.index(task: task, try: attempt)
            else { return }
            let slot = try slots.read(index)
            guard slot.flags.contains(.placed), layout.processes[Int(slot.process)].kind == .block else { return }
            let track = Track(process: slot.process, pid: pid)
            var worker =
                workers[track] ?? Worker(memory: TraceText("RSS worker \(pid)"), cpu: TraceText("CPU worker \(pid)"))
            let processPID = layout.processes[Int(slot.process)].pid
            if inside(time), let resident = row.double(4) {
                try writer.counter(
                    name: worker.memory, category: category, timestamp: time - window.origin, pid: processPID,
                    series: "bytes", value: resident)
            }
            if let user = row.double(5), let system = row.double(6) {
                let seconds = user + system
                if let last = worker.previous, time > last.time, seconds >= last.seconds, inside(time) {
                    let rate = (seconds - last.seconds) / (Double(time - last.time) / 1_000_000)
                    try writer.counter(
                        name: worker.cpu, category: category, timestamp: time - window.origin, pid: processPID,
                        series: "cores", value: rate, decimals: 3)
                }
                worker.previous = (time, seconds)
            }
            workers[track] = worker
            count += 1
            if count & 4095 == 0 { try guardLimit() }
        }
        try guardLimit()
    }

    /// Connected managers and their workers per block, from the interchange's snapshots of each manager. A
    /// counter holds its value until its next sample, so a sample is written only when the value changes.
    private func writeNodeCounters() throws {
        struct Block {
            var managers: [String?: Int64] = [:]  // manager uid → workers, while active
            var written: (managers: Int64, workers: Int64)?
        }
        let category = TraceText("node")
        let managersName = TraceText("managers")
        let workersName = TraceText("workers")
        var blocks: [String?: Block] = [:]
        var count = 0
        try source.nodeRows { row in
            let blockID = row.text(0)
            guard let process = layout.processForBlockID[blockID], let time = row.int(4) else { return }
            var block = blocks[blockID] ?? Block()
            if row.bool(3) ?? true {
                block.managers[row.text(1)] = row.int(2) ?? 0
            } else {
                block.managers[row.text(1)] = nil
            }
            defer { blocks[blockID] = block }
            guard inside(time) else { return }
            let managers = Int64(block.managers.count)
            let workers = block.managers.values.reduce(0, +)
            let pid = layout.processes[process].pid
            let timestamp = time - window.origin
            if block.written?.managers != managers {
                try writer.counter(
                    name: managersName, category: category, timestamp: timestamp, pid: pid, series: "active",
                    value: Double(managers))
            }
            if block.written?.workers != workers {
                try writer.counter(
                    name: workersName, category: category, timestamp: timestamp, pid: pid, series: "connected",
                    value: Double(workers))
            }
            block.written = (managers, workers)
            count += 1
            if count & 4095 == 0 { try guardLimit() }
        }
        try guardLimit()
    }
}

/// Status names of a run, interned by their bytes (a handful of distinct values over many rows).
private struct StateNames {
    private var bytes: [[UInt8]] = []
    private var names: [String] = []
    private var texts: [TraceText] = []
    private var terminal: [Bool] = []

    /// The id of the state in column 2 of a status row ("" for NULL).
    mutating func id(_ row: TraceRow) -> Int16 {
        let found: Int16? = row.withText(2) { value in
            for (index, known) in bytes.enumerated() where known.elementsEqual(value) { return Int16(index) }
            return nil
        } ?? nil
        if let found { return found }
        let name = row.text(2) ?? ""
        if let index = names.firstIndex(of: name) { return Int16(index) }
        guard names.count < Int16.max else { return Int16(names.count - 1) }
        bytes.append(Array(name.utf8))
        names.append(name)
        texts.append(TraceText(name))
        terminal.append(TaskState.isTerminalForTry(name))
        return Int16(names.count - 1)
    }

    func name(_ id: Int16) -> String { names[Int(id)] }
    func text(_ id: Int16) -> TraceText { texts[Int(id)] }
    func isTerminal(_ id: Int16) -> Bool { terminal[Int(id)] }
}
