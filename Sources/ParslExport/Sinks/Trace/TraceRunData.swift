/// What the trace sink keeps of one run until it can lay the run out: compact copies of the domain events, with
/// repeated strings interned, so that memory grows by a few dozen bytes per row rather than per event object.

/// A missing timestamp or id in the compact records.
let traceMissing = Int64.min

/// Interns repeated strings (apps, executors, hosts, states) as small integers.
struct StringTable {
    private var indexes: [String: Int32] = [:]
    private(set) var strings: [String] = []

    mutating func intern(_ string: String?) -> Int32 {
        guard let string else { return -1 }
        if let index = indexes[string] { return index }
        let index = Int32(strings.count)
        strings.append(string)
        indexes[string] = index
        return index
    }

    subscript(index: Int32) -> String? { index >= 0 ? strings[Int(index)] : nil }
}

/// Field order and widths keep the records small: they are held for every row of the run until it is written.
struct TraceTry {
    var launched: Int64
    var running: Int64
    var returned: Int64
    var peakRSS: Int64
    var cpuSeconds: Double
    var taskID: Int32
    var tryID: Int32
    var workerPID: Int32
    var app: Int32
    var executor: Int32
    var block: Int32
    var host: Int32
    var finalState: Int32
    /// Index into `TraceRunData.failReasons`, or -1.
    var failReason: Int32
    /// The task's dependencies: `TraceRunData.dependencyIDs[dependencyStart..<dependencyStart + dependencyCount]`.
    var dependencyStart: Int32
    var dependencyCount: Int32
    var unfinishedState: Bool

    // Set by the layout.
    var open = false
    var process: Int32 = -1
    var tid: Int32 = 0
    var start: Int64 = 0
    var end: Int64 = 0

    var ran: Bool { running != traceMissing }
}

struct TraceStatus {
    var time: Int64
    var taskID: Int32
    /// Narrower still: statuses are the most numerous rows. Retries and distinct strings stay far below 2^15.
    var tryID: Int16
    var state: Int16
}

struct TraceResource {
    var time: Int64
    var residentBytes: Double
    /// User plus system seconds, cumulative for the worker process; NaN when either is missing.
    var cpuSeconds: Double
    var taskID: Int32
    var tryID: Int32
    var pid: Int32
}

struct TraceBlockRow {
    var executor: Int32
    var block: Int32
    var status: Int32
    var jobID: Int32
    var time: Int64
}

struct TraceNodeRow {
    var time: Int64
    var block: Int32
    var uid: Int32
    var workers: Int32
    var active: Bool
}

/// Narrows an id to the compact field, keeping "missing" (and values out of range) recognisable.
@inline(__always)
func compact(_ value: Int64?) -> Int32 {
    guard let value, value > Int64(Int32.min), value <= Int64(Int32.max) else { return Int32.min }
    return Int32(value)
}

let compactMissing = Int32.min

/// Narrows to 16 bits, -1 (missing) for anything that does not fit.
@inline(__always)
func compact16(_ value: Int64?) -> Int16 {
    guard let value, value >= 0, value <= Int64(Int16.max) else { return -1 }
    return Int16(value)
}

/// Everything buffered for one run.
final class TraceRunData {
    let run: WorkflowRun
    var strings = StringTable()
    var tries = ChunkedArray<TraceTry>()
    var statuses = ChunkedArray<TraceStatus>()
    var resources = ChunkedArray<TraceResource>()
    var blocks: [TraceBlockRow] = []
    var nodes = ChunkedArray<TraceNodeRow>()
    var failReasons: [String] = []
    var dependencyIDs: [Int64] = []
    /// The first host each block id's node rows name, for blocks that have no tries.
    var nodeHosts: [Int32: Int32] = [:]
    /// The earliest and latest timestamps of the run in any table: the time origin and the end of open spans.
    private(set) var firstSeen = Int64.max
    private(set) var lastSeen = Int64.min

    init(run: WorkflowRun) {
        self.run = run
        see(run.began)
        see(run.completed)
    }

    @inline(__always)
    private func see(_ time: Int64?) {
        guard let time else { return }
        if time < firstSeen { firstSeen = time }
        if time > lastSeen { lastSeen = time }
    }

    var hasTime: Bool { firstSeen <= lastSeen }

    func add(_ span: TrySpan) {
        see(span.launched)
        see(span.running)
        see(span.returned)
        var reason: Int32 = -1
        if let text = span.failReason, !text.isEmpty {
            reason = Int32(failReasons.count)
            failReasons.append(text)
        }
        let dependencyStart = Int32(dependencyIDs.count)
        dependencyIDs += span.dependsOn
        tries.append(
            TraceTry(
                launched: span.launched ?? traceMissing,
                running: span.running ?? traceMissing,
                returned: span.returned ?? traceMissing,
                peakRSS: span.peakRSSBytes ?? traceMissing,
                cpuSeconds: span.cpuSeconds ?? .nan,
                taskID: compact(span.taskID),
                tryID: compact(span.tryID),
                workerPID: compact(span.workerPID),
                app: strings.intern(span.app),
                executor: strings.intern(span.executor),
                block: strings.intern(span.blockID),
                host: strings.intern(span.hostname),
                finalState: strings.intern(span.finalState),
                failReason: reason,
                dependencyStart: dependencyStart,
                dependencyCount: Int32(span.dependsOn.count),
                unfinishedState: span.isUnfinished
            )
        )
    }

    func dependencies(of entry: TraceTry) -> ArraySlice<Int64> {
        let start = Int(entry.dependencyStart)
        return dependencyIDs[start..<start + Int(entry.dependencyCount)]
    }

    func add(_ change: StatusChange) {
        guard let time = change.time else { return }
        see(time)
        statuses.append(
            TraceStatus(
                time: time,
                taskID: compact(change.taskID),
                tryID: compact16(change.tryID),
                state: compact16(Int64(strings.intern(change.state)))
            )
        )
    }

    func add(_ sample: ResourceSample) {
        guard let time = sample.time else { return }
        see(time)
        var cpu = Double.nan
        if let user = sample.cpuUserSeconds, let system = sample.cpuSystemSeconds { cpu = user + system }
        resources.append(
            TraceResource(
                time: time,
                residentBytes: sample.residentBytes ?? .nan,
                cpuSeconds: cpu,
                taskID: compact(sample.taskID),
                tryID: compact(sample.tryID),
                pid: compact(sample.pid)
            )
        )
    }

    func add(_ transition: BlockTransition) {
        guard let time = transition.time else { return }
        see(time)
        blocks.append(
            TraceBlockRow(
                executor: strings.intern(transition.executor),
                block: strings.intern(transition.blockID),
                status: strings.intern(transition.status),
                jobID: strings.intern(transition.jobID),
                time: time
            )
        )
    }

    func add(_ snapshot: NodeSnapshot) {
        guard let time = snapshot.time else { return }
        see(time)
        let block = strings.intern(snapshot.blockID)
        if nodeHosts[block] == nil, let host = snapshot.hostname { nodeHosts[block] = strings.intern(host) }
        nodes.append(
            TraceNodeRow(
                time: time,
                block: block,
                uid: strings.intern(snapshot.uid),
                workers: compact(snapshot.workerCount ?? 0),
                active: snapshot.active ?? true
            )
        )
    }
}
