import TraceEventFormat

/// The trace as Chrome trace-event JSON (`TraceEventWriter`): pids and tids as they are, slices as complete
/// events, flows as `s`/`f` pairs bound to their enclosing slices, the trace's metadata as `otherData`. An arrow
/// that ends on a status instant is bound by id instead (`bind_id`): the slice it leaves carries the id with
/// `flow_out`, and the instant becomes a zero-length slice carrying it with `flow_in`.
final class JSONTraceEncoder: TraceEncoder {
    let writer: TraceEventWriter

    init(_ writer: TraceEventWriter) { self.writer = writer }

    func name(_ text: String) -> TraceText { TraceText(text) }

    var eventCount: Int { writer.eventCount }

    /// Flows are `s`/`f` events that bind to the slices enclosing them.
    static var bindsFlowsToSlices: Bool { false }

    func process(pid: Int, name: String, sortIndex: Int) throws {
        try writer.processName(pid: pid, name)
        try writer.processSortIndex(pid: pid, sortIndex)
    }

    func thread(pid: Int, tid: Int, name: String, sortIndex: Int) throws {
        try writer.threadName(pid: pid, tid: tid, name)
        try writer.threadSortIndex(pid: pid, tid: tid, sortIndex)
    }

    func slice(
        name: TraceText, category: TraceText, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?,
        flows: TraceSliceFlows, args: (inout TraceArgsWriter) -> Void
    ) throws {
        try writer.complete(
            name: name, category: category, timestamp: start, duration: duration, pid: pid, tid: tid, color: color,
            flow: Self.binding(flows), args: args)
    }

    func slice(
        name: TraceText, category: TraceText, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?,
        flows: TraceSliceFlows
    ) throws {
        try writer.complete(
            name: name, category: category, timestamp: start, duration: duration, pid: pid, tid: tid, color: color,
            flow: Self.binding(flows))
    }

    /// The id a slice's arrows leave it by: one event holds one id, which every instant that ends one of its
    /// arrows names.
    private static func binding(_ flows: TraceSliceFlows) -> TraceFlowBinding? {
        precondition(flows.outgoing.count <= 1 && flows.incoming.isEmpty, "one bound arrow id per slice, leaving it")
        return flows.outgoing.first.map { TraceFlowBinding(id: $0, outgoing: true, incoming: false) }
    }

    func instant(
        name: TraceText, category: TraceText, timestamp: Int64, pid: Int, tid: Int?, scope: TraceInstantScope,
        args: (inout TraceArgsWriter) -> Void
    ) throws {
        try withoutActuallyEscaping(args) { args in
            try writer.instant(
                name: name, category: category, timestamp: timestamp, pid: pid, tid: tid, scope: scope, args: args)
        }
    }

    func instant(
        name: TraceText, category: TraceText, timestamp: Int64, pid: Int, tid: Int?, scope: TraceInstantScope
    ) throws {
        try writer.instant(name: name, category: category, timestamp: timestamp, pid: pid, tid: tid, scope: scope)
    }

    func instant(name: TraceText, category: TraceText, timestamp: Int64, pid: Int, tid: Int, arriving: [UInt64]) throws {
        guard let id = arriving.first else {
            try writer.instant(name: name, category: category, timestamp: timestamp, pid: pid, tid: tid, scope: .thread)
            return
        }
        precondition(arriving.count == 1, "one bound arrow id per instant")
        // Readers take a thread instant as a zero-length slice; only a slice event can carry the binding.
        try writer.complete(
            name: name, category: category, timestamp: timestamp, duration: 0, pid: pid, tid: tid,
            flow: TraceFlowBinding(id: id, outgoing: false, incoming: true))
    }

    func counter(
        name: TraceText, category: TraceText, timestamp: Int64, pid: Int, unit: TraceCounterUnit, value: Double,
        decimals: Int?
    ) throws {
        try writer.counter(
            name: name, category: category, timestamp: timestamp, pid: pid, series: unit.series, value: value,
            decimals: decimals)
    }

    func flow(id: UInt64, name: TraceText, from: TracePoint, to: TracePoint) throws {
        try writer.flowStart(id: id, name: name, category: name, timestamp: from.timestamp, pid: from.pid, tid: from.tid)
        try writer.flowEnd(id: id, name: name, category: name, timestamp: to.timestamp, pid: to.pid, tid: to.tid)
    }

    func flush() throws { try writer.flush() }

    func finish(metadata: TraceArgs) throws { try writer.finish(otherData: metadata) }
}

extension TraceArgsWriter: TraceArgumentWriter {
    typealias Name = TraceText
}
