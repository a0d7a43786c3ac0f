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

struct TryKey: Hashable {
    var task: Int64
    var attempt: Int64
}

struct TraceTry {
    var taskID: Int64
    var tryID: Int64
    var app: Int32
    var executor: Int32
    var block: Int32
    var host: Int32
    var finalState: Int32
    var workerPID: Int64
    var launched: Int64
    var running: Int64
    var returned: Int64
    var peakRSS: Int64
    var cpuSeconds: Double
    var failReason: String?
    var unfinishedState: Bool

    // Set by the layout.
    var start: Int64 = 0
    var end: Int64 = 0
    var open = false
    var process: Int32 = -1
    var tid: Int32 = 0

    var ran: Bool { running != traceMissing }
}

struct TraceStatus {
    var taskID: Int64
    var tryID: Int64
    var state: Int32
    var time: Int64
}

struct TraceResource {
    var taskID: Int64
    var tryID: Int64
    var time: Int64
    var pid: Int64
    var residentBytes: Double
    /// User plus system seconds, cumulative for the worker process; NaN when either is missing.
    var cpuSeconds: Double
}

struct TraceBlockRow {
    var executor: Int32
    var block: Int32
    var status: Int32
    var jobID: Int32
    var time: Int64
}

struct TraceNodeRow {
    var block: Int32
    var uid: Int32
    var host: Int32
    var active: Bool
    var workers: Int64
    var time: Int64
}

/// Everything buffered for one run.
final class TraceRunData {
    let run: WorkflowRun
    var strings = StringTable()
    var tries: [TraceTry] = []
    var statuses: [TraceStatus] = []
    var resources: [TraceResource] = []
    var blocks: [TraceBlockRow] = []
    var nodes: [TraceNodeRow] = []
    /// Dependencies per task, from the first try seen (all tries of a task carry the same list).
    var dependencies: [Int64: [Int64]] = [:]
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
        if !span.dependsOn.isEmpty, dependencies[span.taskID] == nil { dependencies[span.taskID] = span.dependsOn }
        let reason = span.failReason.flatMap { $0.isEmpty ? nil : $0 }
        tries.append(
            TraceTry(
                taskID: span.taskID,
                tryID: span.tryID,
                app: strings.intern(span.app),
                executor: strings.intern(span.executor),
                block: strings.intern(span.blockID),
                host: strings.intern(span.hostname),
                finalState: strings.intern(span.finalState),
                workerPID: span.workerPID ?? traceMissing,
                launched: span.launched ?? traceMissing,
                running: span.running ?? traceMissing,
                returned: span.returned ?? traceMissing,
                peakRSS: span.peakRSSBytes ?? traceMissing,
                cpuSeconds: span.cpuSeconds ?? .nan,
                failReason: reason,
                unfinishedState: span.isUnfinished
            )
        )
    }

    func add(_ change: StatusChange) {
        guard let time = change.time else { return }
        see(time)
        statuses.append(
            TraceStatus(
                taskID: change.taskID,
                tryID: change.tryID ?? traceMissing,
                state: strings.intern(change.state),
                time: time
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
                taskID: sample.taskID,
                tryID: sample.tryID ?? traceMissing,
                time: time,
                pid: sample.pid ?? traceMissing,
                residentBytes: sample.residentBytes ?? .nan,
                cpuSeconds: cpu
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
        nodes.append(
            TraceNodeRow(
                block: strings.intern(snapshot.blockID),
                uid: strings.intern(snapshot.uid),
                host: strings.intern(snapshot.hostname),
                active: snapshot.active ?? true,
                workers: snapshot.workerCount ?? 0,
                time: time
            )
        )
    }
}
