import Dispatch
import Synchronization
import TraceEventFormat

/// The resource and node counters of a run, written on a thread of their own with a connection of their own
/// while the run writer's thread writes statuses, tries and flows: the two halves take about as long, and on two
/// cores the trace is done in about the time of one. The counters need no per-try slot (a sample's block comes
/// from its try row), only the finished layout and the time window, which the run writer hands over (`begin`).
///
/// Its thread first adds up each try's resource samples into the slots (the layout needs the worker pids; the
/// run writer's thread meanwhile has SQLite sort its tries), then reads the block ids of the node rows (the
/// layout needs them before naming processes), starts the sorted resource query, and waits for `begin` before
/// writing anything.
final class TraceCounterThread<Encoder: TraceEncoder>: @unchecked Sendable {
    // @unchecked: the fields below are written by one thread before a semaphore signal and read by the other after
    // the matching wait (`nodeBlocks` → nodeBlocksReady; `layout`, `window` → begun; the results → finished).

    private let source: TraceSource
    private let encoder: Encoder
    private let budget: TraceEventBudget
    /// Touched by this thread only until `totalsReady` is signalled.
    private let slots: TrySlots
    private let totalsReady = DispatchSemaphore(value: 0)

    private var nodeBlocks: [(block: String?, host: String?)] = []
    private var layout: TraceLayout?
    private var window = TraceWindow(first: 0, origin: 0, since: .min, until: .max)
    private var seenRange: (first: Int64, last: Int64) = (.max, .min)
    private var failure: (any Error)?

    private let nodeBlocksReady = DispatchSemaphore(value: 0)
    private let begun = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let cancelled = Atomic<Bool>(false)
    private var running = false

    init(source: TraceSource, encoder: Encoder, budget: TraceEventBudget, slots: TrySlots) {
        self.source = source
        self.encoder = encoder
        self.budget = budget
        self.slots = slots
    }

    func start() {
        running = true
        startDedicatedThread { [self] in
            do {
                try addResourceTotals()
            } catch {
                failure = error
            }
            totalsReady.signal()
            do {
                if failure == nil {
                    try source.nodeBlocks { row in nodeBlocks.append((row.block, row.host)) }
                }
            } catch {
                failure = error
            }
            nodeBlocksReady.signal()
            if failure == nil {
                do {
                    try writeCounters()
                } catch {
                    failure = error
                }
            }
            finished.signal()
        }
    }

    /// Waits until every try's resource totals are in the slots, which then belong to the caller's thread.
    func waitForResourceTotals() {
        totalsReady.wait()
        totalsReady.signal()
    }

    /// What each try's resource samples add up to, as try_summary has it: the worker's pid (largest), peak
    /// resident memory and CPU seconds used (change of the cumulative user+system seconds).
    private func addResourceTotals() throws {
        try source.resourceTotals { row in
            guard let index = slots.index(task: row.task, try: row.attempt, create: true) else { return }
            let pid = row.pid
            let resident = row.resident
            let user = row.userSeconds
            let system = row.systemSeconds
            try slots.update(index) { slot in
                if let pid, slot.workerPID == .min || pid > slot.workerPID { slot.workerPID = pid }
                if let resident, let bytes = Int64(exactly: resident.rounded(.towardZero)), bytes > slot.peakRSS {
                    slot.peakRSS = bytes
                }
                if let user, let system {
                    let seconds = user + system
                    if slot.cpuLow.isNaN || seconds < slot.cpuLow { slot.cpuLow = seconds }
                    if slot.cpuHigh.isNaN || seconds > slot.cpuHigh { slot.cpuHigh = seconds }
                }
            }
        }
    }

    /// Each block id of the node rows with the first host they name; waits for the thread to read them.
    func blocksOfNodeRows() -> [(block: String?, host: String?)] {
        nodeBlocksReady.wait()
        nodeBlocksReady.signal()
        return nodeBlocks
    }

    /// Lets the thread write, once the layout is final and the metadata written.
    func begin(layout: TraceLayout, window: TraceWindow) {
        self.layout = layout
        self.window = window
        begun.signal()
    }

    /// Waits for the thread; afterwards, the earliest and latest timestamps it met. Stops it early (without a
    /// result) when `cancel` is set, e.g. because the other thread failed.
    func join(cancel: Bool = false) throws -> (first: Int64, last: Int64) {
        guard running else { return seenRange }
        running = false
        if cancel {
            cancelled.store(true, ordering: .releasing)
            begun.signal()
        }
        finished.wait()
        if let failure { throw failure }
        return seenRange
    }

    private struct Cancelled: Error {}

    private var waitedForBegin = false

    private func awaitBegin() throws {
        if !waitedForBegin {
            begun.wait()
            waitedForBegin = true
        }
        if cancelled.load(ordering: .acquiring) { throw Cancelled() }
    }

    private func see(_ time: Int64) {
        if time < seenRange.first { seenRange.first = time }
        if time > seenRange.last { seenRange.last = time }
    }

    private func inside(_ time: Int64) -> Bool { time >= window.since && time <= window.until }

    private var counted = 0

    private func guardLimit() throws {
        if cancelled.load(ordering: .acquiring) { throw Cancelled() }
        try budget.add(encoder.eventCount - counted)
        counted = encoder.eventCount
    }

    private func writeCounters() throws {
        do {
            try writeResourceCounters()
            try awaitBegin()
            try writeNodeCounters()
            try guardLimit()
            try encoder.flush()
        } catch is Cancelled {
            return
        }
    }

    /// A worker's counters on its block's process.
    private struct Track: Hashable {
        var process: Int
        var pid: Int64
    }

    private struct Worker {
        var memory: Encoder.Name
        var cpu: Encoder.Name
        var previous: (time: Int64, seconds: Double)?
    }

    /// A block's connected managers, and what its counters last showed.
    private struct Block {
        var managers: [String?: Int64] = [:]  // manager uid → workers, while active
        var written: (managers: Int64, workers: Int64)?
    }

    /// Resident memory and CPU rate per worker process, on its block's process. The CPU rate is the change of the
    /// worker's cumulative user+system seconds over the change of time since its previous sample; a counter that
    /// goes backwards (a new process reusing the pid) gives no rate.
    private func writeResourceCounters() throws {
        let category = encoder.name("resource")
        var workers: [Track: Worker] = [:]
        var processes: [TraceLayout.BlockKey: Int?] = [:]
        var count = 0
        // The sort happens at the first row, while the other thread lays the run out.
        try source.resourceRows { row in
            try awaitBegin()
            let time = row.time
            see(time)
            // Samples of tries that ran on a block; the pid was reported with the tries' totals.
            guard let pid = row.pid, !row.block.isNull, row.tryRunning != nil, let layout else { return }
            let key = TraceLayout.BlockKey(executor: row.executor.string, block: row.block.string)
            let cached = processes[key]
            let process = cached ?? layout.existingBlockProcess(key)
            if cached == nil { processes[key] = process }
            guard let process else { return }
            let track = Track(process: process, pid: pid)
            var worker =
                workers[track] ?? Worker(memory: encoder.name("RSS worker \(pid)"), cpu: encoder.name("CPU worker \(pid)"))
            let processPID = layout.processes[process].pid
            if inside(time), let resident = row.resident {
                try encoder.counter(
                    name: worker.memory, category: category, timestamp: time - window.origin, pid: processPID,
                    unit: .bytes, value: resident, decimals: nil)
            }
            if let user = row.userSeconds, let system = row.systemSeconds {
                let seconds = user + system
                if let last = worker.previous, time > last.time, seconds >= last.seconds, inside(time) {
                    let rate = (seconds - last.seconds) / (Double(time - last.time) / 1_000_000)
                    try encoder.counter(
                        name: worker.cpu, category: category, timestamp: time - window.origin, pid: processPID,
                        unit: .cores, value: rate, decimals: 3)
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
        guard let layout else { return }
        let category = encoder.name("node")
        let managersName = encoder.name("managers")
        let workersName = encoder.name("workers")
        var blocks: [String?: Block] = [:]
        var count = 0
        try source.nodeRows { row in
            let time = row.time
            see(time)
            let blockID = row.block
            guard let process = layout.processForBlockID[blockID] else { return }
            var block = blocks[blockID] ?? Block()
            if row.active ?? true {
                block.managers[row.manager] = row.workers ?? 0
            } else {
                block.managers[row.manager] = nil
            }
            defer { blocks[blockID] = block }
            guard inside(time) else { return }
            let managers = Int64(block.managers.count)
            let workers = block.managers.values.reduce(0, +)
            let pid = layout.processes[process].pid
            let timestamp = time - window.origin
            if block.written?.managers != managers {
                try encoder.counter(
                    name: managersName, category: category, timestamp: timestamp, pid: pid,
                    unit: .count(series: "active"), value: Double(managers), decimals: nil)
            }
            if block.written?.workers != workers {
                try encoder.counter(
                    name: workersName, category: category, timestamp: timestamp, pid: pid,
                    unit: .count(series: "connected"), value: Double(workers), decimals: nil)
            }
            block.written = (managers, workers)
            count += 1
            if count & 4095 == 0 { try guardLimit() }
        }
    }
}

/// The --max-events limit, shared by the threads that write one trace.
final class TraceEventBudget: Sendable {
    private let limit: Int
    private let used = Atomic<Int>(0)
    /// Names the trace in the error: the database and the run.
    private let subject: String

    init(limit: Int, subject: String) {
        self.limit = limit
        self.subject = subject
    }

    /// Counts `events` more; throws once the trace has more than the limit.
    func add(_ events: Int) throws {
        let total = used.add(events, ordering: .relaxed).newValue
        guard limit > 0, total > limit else { return }
        throw ExportError(
            .limitExceeded,
            "\(subject): the trace has more than --max-events \(limit) events; "
                + "narrow it with --since/--until or raise --max-events (0 means no limit)"
        )
    }
}
