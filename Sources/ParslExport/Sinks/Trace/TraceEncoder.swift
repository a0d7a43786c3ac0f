import TraceEventFormat

/// What the trace's layout writes, whatever the file format: processes and their threads, slices, instants,
/// counters and flow arrows, addressed by pid and tid. The layout (`TraceRunWriter`, `TraceCounterThread`) decides
/// where things go and keeps the rules every reader needs: slices on one thread nest and never partially overlap,
/// a process and its threads are declared before their first event, flow ids are unique in the trace, a flow's
/// ends lie inside the slices they bind to. An encoder only turns these calls into bytes.
///
/// Times are microseconds on the layout's time axis (since the run's first event, or epoch with --absolute).
/// `SendableMetatype`: the counter thread, generic over its encoder, runs on a thread of its own.
protocol TraceEncoder: AnyObject, SendableMetatype {
    /// A name, category or string value written many times, prepared once (escaped text, an interning slot).
    associatedtype Name
    /// Writes the key/value annotations of one event in place.
    associatedtype Args: TraceArgumentWriter where Args.Name == Name

    func name(_ text: String) -> Name

    /// Flow arrows are ids on the slices at their ends (`TraceSliceFlows`), not events of their own: the layout
    /// passes each slice its arrows instead of calling `flow`.
    static var bindsFlowsToSlices: Bool { get }

    /// Events written so far (what --max-events counts).
    var eventCount: Int { get }

    func process(pid: Int, name: String, sortIndex: Int) throws
    func thread(pid: Int, tid: Int, name: String, sortIndex: Int) throws

    /// A slice from `start` lasting `duration`, on a thread, with the flow arrows bound to it (when
    /// `bindsFlowsToSlices`).
    func slice(
        name: Name, category: Name, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?,
        flows: TraceSliceFlows, args: (inout Args) -> Void) throws
    func slice(
        name: Name, category: Name, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?,
        flows: TraceSliceFlows) throws

    /// A moment on a thread (`tid`, thread scope), on a process, or across the whole trace.
    func instant(
        name: Name, category: Name, timestamp: Int64, pid: Int, tid: Int?, scope: TraceInstantScope,
        args: (inout Args) -> Void) throws
    func instant(name: Name, category: Name, timestamp: Int64, pid: Int, tid: Int?, scope: TraceInstantScope) throws
    /// A moment on a thread where the arrows `arriving` end. Where arrows are events of their own
    /// (`bindsFlowsToSlices` false), at most one id: that of the slice the arrow leaves (its `flows.outgoing`).
    func instant(name: Name, category: Name, timestamp: Int64, pid: Int, tid: Int, arriving: [UInt64]) throws

    /// A sample of the counter `name` of process `pid`, in `unit`; `decimals` rounds it.
    func counter(
        name: Name, category: Name, timestamp: Int64, pid: Int, unit: TraceCounterUnit, value: Double,
        decimals: Int?) throws

    /// An arrow from the slice enclosing `from` to the slice enclosing `to` (unless `bindsFlowsToSlices`).
    func flow(id: UInt64, name: Name, from: TracePoint, to: TracePoint) throws

    /// Hands what is buffered to the output.
    func flush() throws
    /// Ends the trace; `metadata` describes the whole trace where the format has a place for it.
    func finish(metadata: TraceArgs) throws
}

extension TraceEncoder {
    func slice(
        name: Name, category: Name, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?,
        args: (inout Args) -> Void
    ) throws {
        try slice(
            name: name, category: category, start: start, duration: duration, pid: pid, tid: tid, color: color,
            flows: .none, args: args)
    }

    func slice(name: Name, category: Name, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?) throws {
        try slice(
            name: name, category: category, start: start, duration: duration, pid: pid, tid: tid, color: color,
            flows: .none)
    }
}

/// The ids of the flow arrows that leave a slice and that arrive at it. Where arrows are events of their own
/// (`bindsFlowsToSlices` false), only arrows that end on a status instant are ids: at most one, leaving.
struct TraceSliceFlows {
    var outgoing: [UInt64] = []
    var incoming: [UInt64] = []

    static let none = TraceSliceFlows()
}

/// A moment on a thread.
struct TracePoint {
    var timestamp: Int64
    var pid: Int
    var tid: Int
}

/// What a counter counts: its JSON series key, and its unit where the format has units.
enum TraceCounterUnit {
    case bytes
    /// Cores in use: CPU seconds per second.
    case cores
    /// Things of a kind; `series` names them ("active", "connected").
    case count(series: StaticString)

    var series: StaticString {
        switch self {
        case .bytes: "bytes"
        case .cores: "cores"
        case .count(let series): series
        }
    }
}

/// The annotations of one event, written in call order; keys are static text, each used once per event.
protocol TraceArgumentWriter {
    associatedtype Name
    mutating func int(_ key: StaticString, _ value: Int64)
    mutating func double(_ key: StaticString, _ value: Double)
    mutating func string(_ key: StaticString, _ value: String)
    mutating func string(_ key: StaticString, _ value: Name)
    /// A string from raw bytes (e.g. a database column), any ill-formed UTF-8 replaced by U+FFFD.
    mutating func string(_ key: StaticString, utf8: UnsafeBufferPointer<UInt8>)
    mutating func bool(_ key: StaticString, _ value: Bool)
}

/// What the --since/--until window resolved to: the origin subtracted from every timestamp, and [since, until] in
/// the database's clock. Events outside it are left out; slices are kept when they overlap it.
struct TraceWindow {
    var first: Int64
    var origin: Int64
    var since: Int64
    var until: Int64
}
