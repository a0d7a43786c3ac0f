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
struct TraceRunWriter<Encoder: TraceEncoder> {
    struct Options {
        /// Keep epoch microseconds instead of microseconds since the run's first event.
        var absoluteTime: Bool
        var since: TraceTimeBound?
        var until: TraceTimeBound?
        var maxEvents: Int
        /// The database, named in errors.
        var databasePath = ""
    }

    typealias Window = TraceWindow

    let source: TraceSource
    let run: WorkflowRun
    let encoder: Encoder
    /// Writes the counter thread's events into the same trace.
    let counterEncoder: Encoder
    let options: Options
    private let budget: TraceEventBudget
    private var counted = 0
    /// The run's first and last timestamps when already known; otherwise the first is guessed (see `write`).
    let extent: (first: Int64, last: Int64)?

    private var layout: TraceLayout
    private var slots: TrySlots
    private var states: StateNames<Encoder.Name>
    private var processes = ProcessCache()
    private var window = Window(first: 0, origin: 0, since: .min, until: .max)
    /// The earliest and latest timestamps the passes met.
    private(set) var seen: (first: Int64, last: Int64) = (.max, .min)
    private(set) var flowCount = 0
    /// Dependency edges by their source task, for encoders that put arrows on the slices (`collectDependents`).
    private var dependents: [FlowEdge] = []
    /// Arrows that may end on a status instant (`mayEndOnStatus`), by the slot of the try they reach; and the ids
    /// of those bound to an instant.
    private var arrowsToStatus: [Int: [StatusArrow]] = [:]
    private var arrowsBoundToStatus: Set<UInt64> = []
    /// Where arrows are events of their own (JSON): the tasks whose last try's slice carries the id of the arrows
    /// bound to status instants (`statusArrowID`).
    private var statusArrowSources: Set<Int64> = []
    /// Where arrows are events of their own: arrows that reached a status instant that already ends another bound
    /// arrow, with the instant's moment, when that lies inside the try's slice (`writeUnboundStatusArrows`).
    private var statusArrowEnds: [UInt64: Int64] = [:]
    private(set) var triesWritten = 0
    /// Tries whose execution is also on their worker's lane.
    private(set) var executionsOnWorkers = 0

    init(source: TraceSource, run: WorkflowRun, encoder: Encoder, counterEncoder: Encoder,
         options: Options, extent: (first: Int64, last: Int64)?, spillDirectory: String, slotCache: (pages: Int, slotsPerPage: Int)) throws
    {
        self.source = source
        self.run = run
        self.encoder = encoder
        self.counterEncoder = counterEncoder
        self.options = options
        budget = TraceEventBudget(limit: options.maxEvents, subject: "\(options.databasePath): run \(run.runID)")
        self.extent = extent
        layout = TraceLayout(workflowName: run.workflowName ?? run.runID)
        states = StateNames(make: encoder.name)
        let geometry = try source.tryGeometry()
        slots = TrySlots(
            firstTask: geometry.firstTask,
            lastTask: geometry.lastTask,
            lastTry: geometry.lastTry,
            count: geometry.count,
            cachedPages: slotCache.pages,
            slotsPerPage: slotCache.slotsPerPage,
            spillDirectory: spillDirectory
        )
        for time in [run.began, run.completed].compactMap({ $0 }) { see(time) }
    }

    /// The first timestamp that set the origin and the window.
    var first: Int64 { window.first }
    var windowSince: Int64? { options.since == nil ? nil : window.since }
    var windowUntil: Int64? { options.until == nil ? nil : window.until }

    /// The passes met a timestamp before the origin they assumed: the trace must be written again with the
    /// exact extent. (With --absolute and no relative bound, the origin changes nothing in the events.)
    var needsExactExtent: Bool {
        guard extent == nil, seen.first < window.first else { return false }
        let relative = { (bound: TraceTimeBound?) in if case .offset = bound { true } else { false } }
        return !options.absoluteTime || relative(options.since) || relative(options.until)
    }

    /// The run's last timestamp in any table, once every pass has run.
    var lastSeen: Int64? { seen.first <= seen.last ? seen.last : nil }

    @inline(__always)
    private mutating func see(_ time: Int64) {
        if time < seen.first { seen.first = time }
        if time > seen.last { seen.last = time }
    }

    private mutating func resolveWindow() {
        // Without a known extent, the run's start (or its first try) is the origin: Parsl stamps the run before
        // any of its tasks, blocks or samples. A pass that meets an earlier time sets `needsExactExtent`.
        let first = extent?.first ?? (seen.first <= seen.last ? seen.first : 0)
        func resolve(_ bound: TraceTimeBound?, _ fallback: Int64) -> Int64 {
            switch bound {
            case .offset(let micros): first + micros
            case .absolute(let micros): micros
            case nil: fallback
            }
        }
        window = Window(
            first: first,
            origin: options.absoluteTime ? 0 : first,
            since: resolve(options.since, .min),
            until: resolve(options.until, .max)
        )
    }

    private func overlaps(_ start: Int64, _ end: Int64) -> Bool { end >= window.since && start <= window.until }
    private func inside(_ time: Int64) -> Bool { time >= window.since && time <= window.until }

    private mutating func guardLimit() throws {
        try budget.add(encoder.eventCount - counted)
        counted = encoder.eventCount
    }

    /// Events written by both threads.
    var eventCount: Int { encoder.eventCount + counterEncoder.eventCount }

    mutating func write() throws {
        let counters = TraceCounterThread(
            source: try source.onNewConnection(), encoder: counterEncoder, budget: budget, slots: slots)
        counters.start()
        var joined = false
        defer { if !joined { _ = try? counters.join(cancel: true) } }
        try layOut(counters)
        resolveWindow()
        try writeMetadata()
        counters.begin(layout: layout, window: window)
        // Arrows are known before the status pass, which binds some of them to status instants.
        if Encoder.bindsFlowsToSlices {
            // The arrows go out with the tries (`sliceFlows`), which count them.
            try collectDependents()
            try writeStatuses()
            try writeTries()
            dependents = []
        } else {
            try writeFlows()
            try writeStatuses()
            try writeUnboundStatusArrows()
            try writeTries()
        }
        arrowsToStatus = [:]
        statusArrowEnds = [:]
        let range = try counters.join()
        joined = true
        if range.first <= range.last {
            see(range.first)
            see(range.last)
        }
        // Last: block lifecycles and the run's end need the run's last timestamp.
        try writeBlockLifecycles()
        try writeRunMarkers()
        try guardLimit()
    }

    // MARK: - Layout

    /// Needs the extent for an unfinished run (`extent`), whose open tries end at its last timestamp.
    private mutating func layOut(_ counters: TraceCounterThread<Encoder>) throws {
        let runOpen = run.isUnfinished
        // Both sequences come in start order; they fill different processes (tries that ran, tries that never did).
        // The first row comes once SQLite has sorted them, by when the other thread has usually filled in the
        // worker pids that the lanes need.
        var totals = false
        try source.ranRows { row in
            if !totals {
                counters.waitForResourceTotals()
                totals = true
            }
            // A running time that does not parse counts as none: `notRunRows` has that try.
            guard let running = row.running else { return }
            var state: String?
            if row.returned == nil { state = try source.finalState(task: row.task, attempt: row.attempt) }
            try place(row.site, task: row.task, attempt: row.attempt, times: [row.launched, running, row.returned],
                      ran: true, returned: row.returned, state: state, runOpen: runOpen,
                      runningFrom: Self.runningFrom(launched: row.launched, running: running))
        }
        counters.waitForResourceTotals()
        try source.notRunRows { row in
            let times = [row.launched, row.returned, row.firstStatus, row.lastStatus]
            try place(row.site, task: row.task, attempt: row.attempt, times: times, ran: false, returned: row.returned,
                      state: row.finalState, runOpen: runOpen, runningFrom: nil)
        }
        try source.blockKeys { row in
            layout.lifecycleBlock(TraceLayout.BlockKey(executor: row.executor, block: row.block))
        }
        for (block, host) in counters.blocksOfNodeRows() { layout.nodeBlock(block, host: host) }
        layout.finish()
    }

    /// A try's span, process and lane, and whether its execution (from `runningFrom`) goes on its worker's lane.
    private mutating func place(
        _ site: TraceSource.TrySite, task: Int64, attempt: Int64, times: [Int64?], ran: Bool, returned: Int64?,
        state: String?, runOpen: Bool, runningFrom: Int64?
    ) throws {
        guard let index = slots.index(task: task, try: attempt, create: true) else { return }
        var first = Int64.max
        var latest = Int64.min
        for case let time? in times {
            see(time)
            first = min(first, time)
            latest = max(latest, time)
        }
        guard first <= latest else { return }
        let unfinishedState = !(state.map(TaskState.isTerminalForTry) ?? false)
        var slot = try slots.read(index)
        slot.flags = [.present, .placed]
        if ran { slot.flags.insert(.ran) }
        // Slice from the first moment of the try; an inverted running-before-launched pair starts at running.
        slot.start = first
        if let returned, ran {
            slot.end = max(returned, first)
        } else if unfinishedState && runOpen {
            // A crashed run: the try is still open at the last moment the database saw anything.
            slot.end = max(extent?.last ?? first, first)
            slot.flags.insert(.open)
        } else {
            slot.end = latest
            if unfinishedState && returned == nil { slot.flags.insert(.open) }
        }
        let process = processes.process(site, layout: &layout, ran: ran)
        let execution = runningFrom.flatMap { from in slot.workerPID == .min ? nil : (slot.workerPID, from) }
        let placement = layout.place(process: process, start: slot.start, end: slot.end, execution: execution)
        slot.process = Int32(process)
        slot.lane = placement.lane
        if placement.executionOnWorker { slot.flags.insert(.executionOnWorkerLane) }
        try slots.update(index) { $0 = slot }
    }

    private func tid(_ slot: TrySlot) -> Int { layout.tid(process: Int(slot.process), lane: slot.lane) }

    private func pid(_ slot: TrySlot) -> Int { layout.processes[Int(slot.process)].pid }

    // MARK: - Metadata

    private func writeMetadata() throws {
        for process in layout.processes {
            try encoder.process(pid: process.pid, name: process.name, sortIndex: process.pid)
            for thread in process.threads {
                try encoder.thread(pid: process.pid, tid: thread.tid, name: thread.name, sortIndex: thread.tid)
            }
        }
    }

    /// The run's start and end (or, for a run that never completed, the last moment seen) across the whole trace.
    private mutating func writeRunMarkers() throws {
        let process = layout.processes[layout.workflowProcess]
        var markers: [(String, Int64)] = []
        if let began = run.began { markers.append(("workflow began", began)) }
        if let completed = run.completed {
            markers.append(("workflow completed", completed))
        } else if let lastSeen {
            markers.append(("workflow unfinished: last timestamp in the database", lastSeen))
        }
        let category = encoder.name("workflow")
        let run = run
        for (name, time) in markers where inside(time) {
            try encoder.instant(
                name: encoder.name(name), category: category, timestamp: time - window.origin, pid: process.pid, tid: nil,
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

    private mutating func writeBlockLifecycles() throws {
        guard let blocksProcess = layout.blocksProcess else { return }
        let pid = layout.processes[blocksProcess].pid
        let category = encoder.name("block")
        // Rows come by block, then time. Parsl up to 1.2 repeats the same status at every poll: one slice per
        // change of status, which lasts until the next change (or the end of the run).
        var pending: (key: TraceLayout.BlockKey, status: String, job: String?, time: Int64)?
        func close(_ end: Int64?) throws {
            guard let open = pending, let tid = layout.blockLifecycleThread[open.key] else { return }
            let until = end ?? max(lastSeen ?? open.time, open.time)
            guard overlaps(open.time, until) else { return }
            try encoder.slice(
                name: encoder.name(open.status), category: category, start: open.time - window.origin,
                duration: until - open.time, pid: pid, tid: tid, color: Self.blockColor(open.status)
            ) { args in
                args.string("executor", open.key.executor ?? "")
                args.string("block", open.key.block ?? "")
                if let job = open.job { args.string("job_id", job) }
            }
        }
        // The last slice of a block lasts until the run's last timestamp, which may be a block row's.
        if let range = try source.blockTimeRange() {
            see(range.first)
            see(range.last)
        }
        let lastSeen = lastSeen
        try source.blockRows { row in
            let time = row.time
            let key = TraceLayout.BlockKey(executor: row.name.executor, block: row.name.block)
            let status = row.status ?? ""
            let job = row.job
            if let open = pending, open.key == key {
                if open.status == status { return }
                try close(time)
            } else {
                try close(nil)
            }
            pending = (key, status, job, time)
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
        let category = encoder.name("status")
        var count = 0
        // Instants on the lane of a try that arrows may reach (`arrowsToStatus`): written once its final state is
        // known, with the arrows that end there.
        var held: [(index: Int, state: Int16, time: Int64, pid: Int, tid: Int)] = []
        try source.statusRows { row in
            let task = row.task
            let attempt = row.attempt
            let state = states.id(row.state)
            let time = row.time
            if let time { see(time) }
            // Final state: the rows arrive in rowid order, so a later row wins a tie.
            let rank: TrySlot.Flags = states.isTerminal(state) ? .terminalState : []
            func decide(_ slot: inout TrySlot) {
                let stored = slot.flags.intersection(.terminalState)
                if rank.rawValue != stored.rawValue {
                    guard rank.rawValue > stored.rawValue else { return }
                } else if slot.state >= 0 && (time ?? .min) < slot.stateTime {
                    return
                }
                slot.state = state
                slot.stateTime = time ?? .min
                slot.flags.remove(.terminalState)
                slot.flags.formUnion(rank)
            }
            var slot: TrySlot?
            var slotIndex = -1
            if let attempt {
                if let index = slots.index(task: task, try: attempt) {
                    try slots.update(index) { entry in
                        decide(&entry)
                        slot = entry
                    }
                    slotIndex = index
                }
            } else {
                // Eras without status.try_id: the row decides for every try of its task, and is drawn on the try
                // whose span holds it, else on the task's first.
                var tries: [(index: Int, slot: TrySlot)] = []
                for index in try slots.tries(of: task) {
                    try slots.update(index) { entry in
                        decide(&entry)
                        tries.append((index, entry))
                    }
                }
                if let time, let drawn = tries.first(where: { time >= $0.slot.start && time <= $0.slot.end }) ?? tries.first {
                    (slotIndex, slot) = (drawn.index, drawn.slot)
                }
            }
            guard let time, inside(time) else { return }
            let name = states.text(state)
            let timestamp = time - window.origin
            if let slot, slot.flags.contains(.placed) {
                if time >= slot.start && time <= slot.end {
                    if arrowsToStatus[slotIndex] != nil {
                        held.append((slotIndex, state, time, pid(slot), tid(slot)))
                        return
                    }
                    try encoder.instant(
                        name: name, category: category, timestamp: timestamp, pid: pid(slot), tid: tid(slot), scope: .thread)
                } else {
                    try encoder.instant(
                        name: name, category: category, timestamp: timestamp, pid: pid(slot), tid: nil, scope: .process
                    ) { args in
                        args.int("task", task)
                        if let attempt { args.int("try", attempt) }
                    }
                }
            } else {
                try encoder.instant(
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
        for instant in held {
            let slot = try slots.read(instant.index)
            var arriving: [UInt64] = []
            if instant.state == slot.state, instant.time == slot.stateTime {
                arrowsToStatus[instant.index]?.removeAll { arrow in
                    guard instant.time > arrow.from else { return false }
                    if Encoder.bindsFlowsToSlices {
                        arriving.append(arrow.id)
                    } else {
                        // One id per event, that of the slice the arrow leaves; other arrows stay flow events.
                        guard arriving.isEmpty else {
                            if instant.time < slot.end { statusArrowEnds[arrow.id] = instant.time }
                            return false
                        }
                        arriving.append(Self.statusArrowID(source: arrow.source))
                        statusArrowSources.insert(arrow.source)
                    }
                    arrowsBoundToStatus.insert(arrow.id)
                    return true
                }
            }
            try encoder.instant(
                name: states.text(instant.state), category: category, timestamp: instant.time - window.origin,
                pid: instant.pid, tid: instant.tid, arriving: arriving)
        }
        try guardLimit()
    }

    // MARK: - Tries

    private mutating func writeTries() throws {
        let ranCategory = encoder.name("try")
        let notRunCategory = encoder.name("try.not_run")
        let phaseCategory = encoder.name("phase")
        let waiting = encoder.name("waiting")
        let running = encoder.name("running")
        let executionCategory = encoder.name("execution")
        let runID = encoder.name(run.runID)
        var apps = TextCache<Encoder.Name>(make: encoder.name)
        try source.tryRows { row in
            let task = row.task
            let attempt = row.attempt
            let launched = row.launched
            let runningAt = row.running
            guard let index = slots.index(task: task, try: attempt) else { return }
            let slot = try slots.read(index)
            guard slot.flags.contains(.placed), overlaps(slot.start, slot.end) else { return }
            let pid = pid(slot)
            let tid = tid(slot)
            let open = slot.flags.contains(.open)
            let ran = slot.flags.contains(.ran)
            let state = slot.state >= 0 ? states.name(slot.state) : nil
            let name = row.app.withBytes { apps.text(for: $0) } ?? encoder.name("task \(task)")
            let launchedAt = ran ? launched : nil
            let phases = ran ? runningAt.map { Phases(launched: launchedAt, running: $0, end: slot.end) } : nil
            var flows =
                Encoder.bindsFlowsToSlices
                ? try sliceFlows(index: index, slot: slot, task: task, depends: row.depends)
                : try statusArrowsLeaving(index: index, slot: slot, task: task)
            try encoder.slice(
                name: name,
                category: ran ? ranCategory : notRunCategory,
                start: slot.start - window.origin,
                duration: slot.end - slot.start,
                pid: pid,
                tid: tid,
                color: open ? .yellow : Self.stateColor(state),
                flows: Self.take(&flows, on: .whole, phases: phases)
            ) { args in
                // Args without a value are left out.
                args.string("run", runID)
                args.int("task", task)
                args.int("try", attempt)
                row.app.withBytes { args.string("app", utf8: $0) }
                row.site.executor.withBytes { args.string("executor", utf8: $0) }
                row.site.block.withBytes { args.string("block", utf8: $0) }
                row.site.host.withBytes { args.string("host", utf8: $0) }
                if slot.workerPID != .min { args.int("worker_pid", Int64(slot.workerPID)) }
                // The model's final state (try_summary's), also for an open try: `unfinished` marks that.
                if state != nil { args.string("final_state", states.text(slot.state)) }
                row.failHistory.withBytes { if !$0.isEmpty { args.string("fail_reason", utf8: $0) } }
                if let dependencies = row.depends.withBytes(IDList.parse), !dependencies.isEmpty {
                    args.string("depends", dependencies.map(String.init).joined(separator: ","))
                }
                if slot.peakRSS != .min { args.int("peak_rss_bytes", slot.peakRSS) }
                if !slot.cpuHigh.isNaN {
                    args.double("cpu_seconds", ((slot.cpuHigh - slot.cpuLow) * 1_000_000).rounded() / 1_000_000)
                }
                if open { args.bool("unfinished", true) }
            }
            triesWritten += 1
            guard ran, let runningAt else { return }
            let runningFrom = Self.runningFrom(launched: launched, running: runningAt)
            if let launched, runningAt > launched {
                try encoder.slice(
                    name: waiting, category: phaseCategory, start: launched - window.origin,
                    duration: runningAt - launched, pid: pid, tid: tid, color: .threadStateRunnable,
                    flows: Self.take(&flows, on: .waiting, phases: phases))
            }
            if slot.end > runningFrom {
                try encoder.slice(
                    name: running, category: phaseCategory, start: runningFrom - window.origin,
                    duration: slot.end - runningFrom, pid: pid, tid: tid, color: open ? .yellow : .threadStateRunning,
                    flows: Self.take(&flows, on: .running, phases: phases))
            }
            // A slice of its own: kept when it overlaps the window, like the try.
            if slot.flags.contains(.executionOnWorkerLane), overlaps(runningFrom, slot.end) {
                try encoder.slice(
                    name: name, category: executionCategory, start: runningFrom - window.origin,
                    duration: slot.end - runningFrom, pid: pid,
                    tid: layout.workerTID(process: Int(slot.process), workerPID: slot.workerPID),
                    color: open ? .yellow : Self.stateColor(state)
                ) { args in
                    args.int("task", task)
                    args.int("try", attempt)
                }
                executionsOnWorkers += 1
            }
            if triesWritten & 1023 == 0 { try guardLimit() }
        }
        try guardLimit()
    }

    /// Where a try's waiting phase ends and its running phase (and execution) begins: an inverted pair (running
    /// stamped before launched) has no waiting phase.
    static func runningFrom(launched: Int64?, running: Int64) -> Int64 { launched.map { max($0, running) } ?? running }

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

    /// The placed tries of a task, in try order.
    private func placed(_ task: Int64) throws -> [(index: Int, slot: TrySlot)] {
        try slots.tries(of: task).map { ($0, try slots.read($0)) }.filter { $0.slot.flags.contains(.placed) }
    }

    /// Where an arrow from the dependency's last try `source` to the dependent's first try `target` starts and ends:
    /// 1 µs inside the slices (when they are long enough), so that it binds to these slices and not to a neighbour
    /// that ends or starts at the same microsecond.
    static func flowPoints(source: TrySlot, target: TrySlot) -> (from: Int64, to: Int64) {
        var from = leavingPoint(source)
        var to = reachingPoint(target)
        if to < from {
            // The dependent's slice began before the dependency ended (a dep_fail try is waiting from its
            // submission on): point at where the dependency ended. Readers drop arrows going back in time.
            to = min(max(from, target.start), target.end)
            // Still earlier only when the two clocks disagree: start the arrow as early as the source allows.
            if to < from { from = max(source.start, to) }
        }
        return (from, to)
    }

    /// The try an arrow from `task` leaves: its last, once it has ended (an unfinished try released nothing yet, and
    /// its end is only where the database stops), and when it overlaps the window.
    private func arrowSource(_ task: Int64) throws -> TrySlot? {
        guard let source = try placed(task).last?.slot, !source.flags.contains(.open), overlaps(source.start, source.end)
        else { return nil }
        return source
    }

    /// Where an arrow leaves the dependency's try: 1 µs before its end, when the try is long enough.
    static func leavingPoint(_ source: TrySlot) -> Int64 { source.end - source.start >= 2 ? source.end - 1 : source.start }

    /// Where an arrow reaches the dependent's try, unless it began first (`flowPoints`): 1 µs after its start.
    private static func reachingPoint(_ target: TrySlot) -> Int64 {
        target.end - target.start >= 2 ? target.start + 1 : target.start
    }

    /// Whether an arrow may end on the dependent's status instant rather than on its slice: Perfetto points every
    /// arrow from the earlier-starting of the two slices it joins, so an arrow bound to a dependent's try that
    /// began before its dependency ended (a dep_fail try waits from its submission on) shows going back from the
    /// dependent to its dependency. Such an arrow ends instead at the instant of the status that decided the try's
    /// final state (its `dep_fail`), when that is later than the arrow's start and on the try's lane
    /// (`writeStatuses`). The instant is bound by id in both formats: a JSON flow event at the instant's moment,
    /// the try's last, would lie on the slice's boundary, where catapult's floating-point times can miss it.
    static func mayEndOnStatus(source: TrySlot, target: TrySlot) -> Bool {
        reachingPoint(target) < leavingPoint(source)
    }

    /// One arrow per dependency edge, from the end of the dependency's last try to the start of the dependent's
    /// first try (`flowPoints`).
    private mutating func writeFlows() throws {
        let name = encoder.name("dependency")
        var id: UInt64 = 0
        try source.dependencyRows { row in
            let task = row.task
            guard let dependencies = row.depends.withBytes(IDList.parse), !dependencies.isEmpty,
                let (index, target) = try placed(task).first, overlaps(target.start, target.end)
            else { return }
            for dependency in dependencies {
                guard let source = try arrowSource(dependency) else { continue }
                id += 1
                let (from, to) = Self.flowPoints(source: source, target: target)
                if Self.mayEndOnStatus(source: source, target: target) {
                    arrowsToStatus[index, default: []].append(StatusArrow(id: id, from: from, source: dependency))
                    continue
                }
                try writeFlow(id: id, name: name, from: (from, source), to: (to, target))
            }
            if id & 1023 == 0 { try guardLimit() }
        }
        flowCount = Int(id)
        try guardLimit()
    }

    /// Where arrows are events of their own: the arrows that may have ended on a status instant and did not, as
    /// flow events (`writeFlows`), in the order of their ids. One that reached an instant which ends another arrow
    /// ends at the instant's moment, inside the try's slice: written after the instant, it binds to it in Perfetto.
    private mutating func writeUnboundStatusArrows() throws {
        let name = encoder.name("dependency")
        let unbound = arrowsToStatus.flatMap { index, arrows in arrows.map { (index, $0) } }.sorted { $0.1.id < $1.1.id }
        for (index, arrow) in unbound {
            let target = try slots.read(index)
            guard let source = try arrowSource(arrow.source) else { continue }
            var (from, to) = Self.flowPoints(source: source, target: target)
            if let end = statusArrowEnds[arrow.id] { (from, to) = (arrow.from, end) }
            try writeFlow(id: arrow.id, name: name, from: (from, source), to: (to, target))
        }
        try guardLimit()
    }

    /// An arrow as a flow event, from a moment on the lane of try `from.slot` to one on the lane of `to.slot`.
    private func writeFlow(
        id: UInt64, name: Encoder.Name, from: (time: Int64, slot: TrySlot), to: (time: Int64, slot: TrySlot)
    ) throws {
        try encoder.flow(
            id: id, name: name,
            from: TracePoint(timestamp: from.time - window.origin, pid: pid(from.slot), tid: tid(from.slot)),
            to: TracePoint(timestamp: to.time - window.origin, pid: pid(to.slot), tid: tid(to.slot)))
    }

    /// The id by which arrows from `source` end on status instants, where arrows are events of their own: one per
    /// source task (one id per event), above the sequential ids of the flow events (`writeFlows`) and below 2^53,
    /// which JavaScript readers hold exactly.
    static func statusArrowID(source: Int64) -> UInt64 { 1 << 52 | UInt64(bitPattern: source) & (1 << 52 - 1) }

    /// An arrow that may end on its dependent's status instant (`mayEndOnStatus`): its id, the moment it leaves, and
    /// its source task.
    private struct StatusArrow {
        var id: UInt64
        var from: Int64
        var source: Int64
    }

    /// A dependency edge from `source`, named by its arrow's id (`flowID`: its target and position).
    private struct FlowEdge {
        var source: Int64
        var id: UInt64

        var target: Int64 { Int64(bitPattern: id >> 16) }
    }

    /// For encoders that put arrows on slices: the edges of the run by source task, so that a dependency's try
    /// can name the arrows that leave it when it is written (its dependents are written later or earlier).
    /// Memory: 16 bytes per edge.
    /// Also finds the arrows that may end on a status instant (`mayEndOnStatus`), which the status pass binds.
    private mutating func collectDependents() throws {
        var edges: [FlowEdge] = []
        var toStatus: [Int: [StatusArrow]] = [:]
        try source.dependencyRows { row in
            guard let dependencies = row.depends.withBytes(IDList.parse) else { return }
            let task = row.task
            let target = try placed(task).first
            for (position, dependency) in dependencies.enumerated() where position <= Int(UInt16.max) {
                let id = Self.flowID(target: task, position: position)
                edges.append(FlowEdge(source: dependency, id: id))
                // As `sliceFlows` draws them: both tries in the window, the arrow ending inside the dependent's try.
                guard let target, overlaps(target.slot.start, target.slot.end), let source = try arrowSource(dependency),
                    Self.mayEndOnStatus(source: source, target: target.slot)
                else { continue }
                let from = Self.flowPoints(source: source, target: target.slot).from
                toStatus[target.index, default: []].append(StatusArrow(id: id, from: from, source: dependency))
            }
        }
        arrowsToStatus = toStatus
        edges.sort { ($0.source, $0.id) < ($1.source, $1.id) }
        dependents = edges
    }

    /// An arrow's id where it is bound to slices: from its dependent task and the dependency's position in the
    /// task's list (up to 65536), so that both ends find it without a table.
    static func flowID(target: Int64, position: Int) -> UInt64 { UInt64(bitPattern: target) &<< 16 | UInt64(position) }

    /// Which of a try's slices on its lane an arrow binds to.
    enum FlowSlice {
        case whole
        case waiting
        case running
    }

    /// The phases of a try that ran, as `writeTries` draws them.
    struct Phases {
        var launched: Int64?
        var running: Int64
        var end: Int64

        /// The innermost slice of the try that holds `time`, as a reader binding an arrow there would find it.
        func slice(at time: Int64) -> FlowSlice {
            let runningFrom = launched.map { max($0, running) } ?? running
            if end > runningFrom, time >= runningFrom, time <= end { return .running }
            if let launched, running > launched, time >= launched, time <= running { return .waiting }
            return .whole
        }
    }

    /// A try's arrows: those that leave it (it is the last placed try of a dependency) and those that reach it (the
    /// first placed try of a dependent), each with the moment it binds at, under the rules of `writeFlows`. Counts
    /// the arrows that reach it in `flowCount`.
    private mutating func sliceFlows(index: Int, slot: TrySlot, task: Int64, depends: TraceSource.Text) throws -> [(
        id: UInt64, outgoing: Bool, time: Int64
    )] {
        var lower = 0
        var upper = dependents.count
        while lower < upper {
            let middle = (lower + upper) / 2
            if dependents[middle].source < task { lower = middle + 1 } else { upper = middle }
        }
        let hasDependents = lower < dependents.count && dependents[lower].source == task
        let dependencies = depends.withBytes(IDList.parse) ?? []
        guard hasDependents || !dependencies.isEmpty else { return [] }
        var flows: [(id: UInt64, outgoing: Bool, time: Int64)] = []
        let tries = try placed(task)
        if tries.first?.index == index {
            for (position, dependency) in dependencies.enumerated() where position <= Int(UInt16.max) {
                guard let source = try arrowSource(dependency) else { continue }
                flowCount += 1
                let id = Self.flowID(target: task, position: position)
                let (from, to) = Self.flowPoints(source: source, target: slot)
                if to >= from, !arrowsBoundToStatus.contains(id) { flows.append((id, false, to)) }
            }
        }
        if tries.last?.index == index, !slot.flags.contains(.open) {
            while lower < dependents.count, dependents[lower].source == task {
                let edge = dependents[lower]
                lower += 1
                guard let target = try placed(edge.target).first?.slot, overlaps(target.start, target.end) else { continue }
                let (from, to) = Self.flowPoints(source: slot, target: target)
                if to >= from { flows.append((edge.id, true, from)) }
            }
        }
        return flows
    }

    /// Where arrows are events of their own: the id of the arrows that leave this try for status instants, when it
    /// is its task's last placed try and some arrow from the task was bound to an instant.
    private func statusArrowsLeaving(index: Int, slot: TrySlot, task: Int64) throws -> [(
        id: UInt64, outgoing: Bool, time: Int64
    )] {
        guard statusArrowSources.contains(task), try placed(task).last?.index == index else { return [] }
        return [(Self.statusArrowID(source: task), true, Self.leavingPoint(slot))]
    }

    /// The arrows of `flows` that bind to `slice`, taken out of it.
    static func take(
        _ flows: inout [(id: UInt64, outgoing: Bool, time: Int64)], on slice: FlowSlice, phases: Phases?
    ) -> TraceSliceFlows {
        guard !flows.isEmpty else { return .none }
        var taken = TraceSliceFlows()
        flows.removeAll { flow in
            guard (phases?.slice(at: flow.time) ?? .whole) == slice else { return false }
            if flow.outgoing { taken.outgoing.append(flow.id) } else { taken.incoming.append(flow.id) }
            return true
        }
        return taken
    }
}

/// Status names of a run, interned by their bytes (a handful of distinct values over many rows).
private struct StateNames<Name> {
    let make: (String) -> Name
    init(make: @escaping (String) -> Name) { self.make = make }
    private var bytes: [[UInt8]] = []
    private var names: [String] = []
    private var texts: [Name] = []
    private var terminal: [Bool] = []

    /// The id of a status row's state ("" for NULL).
    mutating func id(_ state: TraceSource.Text) -> Int16 {
        let found: Int16? = state.withBytes { value in
            for (index, known) in bytes.enumerated() where known.elementsEqual(value) { return Int16(index) }
            return nil
        } ?? nil
        if let found { return found }
        let name = state.string ?? ""
        if let index = names.firstIndex(of: name) { return Int16(index) }
        guard names.count < Int16.max else { return Int16(names.count - 1) }
        bytes.append(Array(name.utf8))
        names.append(name)
        texts.append(make(name))
        terminal.append(TaskState.isTerminalForTry(name))
        return Int16(names.count - 1)
    }

    func name(_ id: Int16) -> String { names[Int(id)] }
    func text(_ id: Int16) -> Name { texts[Int(id)] }
    func isTerminal(_ id: Int16) -> Bool { terminal[Int(id)] }
}


/// Names met row after row (apps), escaped once: a few distinct values are found by comparing bytes, without
/// making a String per row; past that, by a dictionary.
private struct TextCache<Name> {
    let make: (String) -> Name
    init(make: @escaping (String) -> Name) { self.make = make }
    private var recent: [([UInt8], Name)] = []
    private var all: [String: Name] = [:]

    mutating func text(for bytes: UnsafeBufferPointer<UInt8>) -> Name {
        for (known, text) in recent where known.elementsEqual(bytes) { return text }
        let string = String(decoding: bytes, as: UTF8.self)
        if let text = all[string] { return text }
        let text = make(string)
        all[string] = text
        if recent.count < 64 { recent.append((Array(bytes), text)) }
        return text
    }
}

/// The process of a try, found by the bytes of its executor and block without making Strings.
private struct ProcessCache {
    private struct Entry {
        var executor: [UInt8]?
        var block: [UInt8]?
        var ran: Bool
        var process: Int
    }

    private var byHash: [UInt64: [Entry]] = [:]

    mutating func process(_ site: TraceSource.TrySite, layout: inout TraceLayout, ran: Bool) -> Int {
        var hash: UInt64 = ran ? 0x9E37_79B9_7F4A_7C15 : 0xC2B2_AE3D_27D4_EB4F
        func mix(_ text: TraceSource.Text) {
            guard let bytes = text.withBytes({ $0 }) else {
                hash = (hash ^ 0xFF) &* 0x100_0000_01B3
                return
            }
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            hash = (hash ^ 0x1F) &* 0x100_0000_01B3
        }
        mix(site.executor)
        mix(site.block)
        func same(_ known: [UInt8]?, _ text: TraceSource.Text) -> Bool {
            guard let known else { return text.isNull }
            return text.withBytes { known.elementsEqual($0) } ?? false
        }
        if let entries = byHash[hash] {
            for entry in entries
            where entry.ran == ran && same(entry.executor, site.executor) && same(entry.block, site.block) {
                // A block's host is the first one its tries name.
                if ran, !site.block.isNull, layout.processes[entry.process].host == nil {
                    layout.setHost(entry.process, site.host.string)
                }
                return entry.process
            }
        }
        let process = layout.process(
            ran: ran, executor: site.executor.string, block: site.block.string, host: site.host.string)
        byHash[hash, default: []].append(
            Entry(
                executor: site.executor.withBytes { Array($0) }, block: site.block.withBytes { Array($0) }, ran: ran,
                process: process))
        return process
    }
}
