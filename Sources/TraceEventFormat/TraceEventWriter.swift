/// Writes a Chrome trace-event file in the JSON object form, as a stream:
///
///     {"traceEvents":[
///     {event},
///     ...
///     ],"displayTimeUnit":"ms","otherData":{...}}
///
/// Events go into a reusable buffer that is handed to `output` whenever it passes `flushThreshold` bytes, so memory
/// stays at about one buffer however long the trace. The caller owns the destination (file, temporary name and
/// rename, compression). Times are integer microseconds, the unit of the format. One event per line keeps the file
/// greppable and costs one byte per event.
///
/// Reader rules that the API cannot enforce and callers must keep (Perfetto drops or misplaces events otherwise):
/// slices on one thread nest and never partially overlap; `tid` is never 0; flow ids are unique in the trace.
public final class TraceEventWriter {
    public typealias Output = (UnsafeRawBufferPointer) throws -> Void

    private var buffer: ByteBuffer
    private let output: Output
    private let flushThreshold: Int
    private var finished = false

    /// Events written so far.
    public private(set) var eventCount = 0
    /// Bytes handed to `output` so far.
    public private(set) var bytesFlushed = 0

    /// Events continue a list opened elsewhere (see `fragment`): no header, no trailer, a separator before each.
    private let continuesList: Bool

    public init(flushThreshold: Int = 1 << 20, output: @escaping Output) {
        self.flushThreshold = max(flushThreshold, 1024)
        self.output = output
        continuesList = false
        buffer = ByteBuffer(capacity: self.flushThreshold + 4096)
        buffer.append("{\"traceEvents\":[\n")
    }

    private init(fragmentWithFlushThreshold flushThreshold: Int, output: @escaping Output) {
        self.flushThreshold = max(flushThreshold, 1024)
        self.output = output
        continuesList = true
        buffer = ByteBuffer(capacity: self.flushThreshold + 4096)
    }

    /// A writer of more events for the list of another writer, e.g. on another thread: each chunk it hands to
    /// `output` is whole events, each preceded by a separator, so chunks of both writers may interleave in any
    /// order as long as they all come after the other writer's first flushed event and before its `finish`.
    /// End it with `flush()`.
    public static func fragment(flushThreshold: Int = 1 << 20, output: @escaping Output) -> TraceEventWriter {
        TraceEventWriter(fragmentWithFlushThreshold: flushThreshold, output: output)
    }

    deinit {
        buffer.deallocate()
    }

    // MARK: - Events

    /// A complete event (`ph: "X"`): a slice from `timestamp` lasting `duration` µs.
    public func complete(
        name: String,
        category: String,
        timestamp: Int64,
        duration: Int64,
        pid: Int,
        tid: Int,
        color: TraceColor? = nil,
        flow: TraceFlowBinding? = nil,
        args: TraceArgs? = nil
    ) throws {
        precondition(duration >= 0, "a slice cannot have a negative duration")
        try event { buffer in
            Self.head(name: name, category: category, phase: "X", timestamp: timestamp, pid: pid, into: &buffer)
            buffer.append(",\"dur\":")
            buffer.append(decimal: duration)
            Self.tid(tid, into: &buffer)
            if let color { Self.color(color, into: &buffer) }
            if let flow { Self.flow(flow, into: &buffer) }
            if let args { Self.object(key: ",\"args\":", args, into: &buffer) }
        }
    }

    /// An instant event (`ph: "i"`). `tid` is needed for the thread scope only.
    public func instant(
        name: String,
        category: String,
        timestamp: Int64,
        pid: Int,
        tid: Int?,
        scope: TraceInstantScope = .thread,
        color: TraceColor? = nil,
        args: TraceArgs? = nil
    ) throws {
        try event { buffer in
            Self.head(name: name, category: category, phase: "i", timestamp: timestamp, pid: pid, into: &buffer)
            if let tid { Self.tid(tid, into: &buffer) }
            switch scope {
            case .thread: buffer.append(",\"s\":\"t\"")
            case .process: buffer.append(",\"s\":\"p\"")
            case .global: buffer.append(",\"s\":\"g\"")
            }
            if let color { Self.color(color, into: &buffer) }
            if let args { Self.object(key: ",\"args\":", args, into: &buffer) }
        }
    }

    /// A counter event (`ph: "C"`): each entry of `values` is one series of the counter track `name` of process
    /// `pid`. Values should be numbers; readers reject counters without any.
    public func counter(
        name: String,
        category: String,
        timestamp: Int64,
        pid: Int,
        id: UInt64? = nil,
        values: TraceArgs
    ) throws {
        precondition(!values.isEmpty, "a counter event needs at least one series")
        try event { buffer in
            Self.head(name: name, category: category, phase: "C", timestamp: timestamp, pid: pid, into: &buffer)
            if let id {
                buffer.append(",\"id\":")
                buffer.append(decimal: Int64(bitPattern: id))
            }
            Self.object(key: ",\"args\":", values, into: &buffer)
        }
    }

    /// A counter event with a single series.
    public func counter(
        name: String,
        category: String,
        timestamp: Int64,
        pid: Int,
        series: StaticString,
        value: Double
    ) throws {
        try event { buffer in
            Self.head(name: name, category: category, phase: "C", timestamp: timestamp, pid: pid, into: &buffer)
            buffer.append(",\"args\":{")
            Self.staticKey(series, into: &buffer)
            buffer.append(json: value)
            buffer.append(UInt8(ascii: "}"))
        }
    }

    // MARK: - Events with pre-escaped names and args written in place

    /// A complete event whose name and category were escaped once (`TraceText`), with args written straight into
    /// the output by `args` (nothing is built per event).
    public func complete(
        name: TraceText,
        category: TraceText,
        timestamp: Int64,
        duration: Int64,
        pid: Int,
        tid: Int,
        color: TraceColor? = nil,
        flow: TraceFlowBinding? = nil,
        args: (inout TraceArgsWriter) -> Void
    ) throws {
        precondition(duration >= 0, "a slice cannot have a negative duration")
        try event { buffer in
            Self.head(name: name, category: category, phase: "X", timestamp: timestamp, pid: pid, into: &buffer)
            buffer.append(",\"dur\":")
            buffer.append(decimal: duration)
            Self.tid(tid, into: &buffer)
            if let color { Self.color(color, into: &buffer) }
            if let flow { Self.flow(flow, into: &buffer) }
            Self.args(args, into: &buffer)
        }
    }

    /// A complete event without args.
    public func complete(
        name: TraceText,
        category: TraceText,
        timestamp: Int64,
        duration: Int64,
        pid: Int,
        tid: Int,
        color: TraceColor? = nil,
        flow: TraceFlowBinding? = nil
    ) throws {
        precondition(duration >= 0, "a slice cannot have a negative duration")
        try event { buffer in
            Self.head(name: name, category: category, phase: "X", timestamp: timestamp, pid: pid, into: &buffer)
            buffer.append(",\"dur\":")
            buffer.append(decimal: duration)
            Self.tid(tid, into: &buffer)
            if let color { Self.color(color, into: &buffer) }
            if let flow { Self.flow(flow, into: &buffer) }
        }
    }

    /// A slice's flow binding (`bind_id` with `flow_out`/`flow_in`): readers bind the arrow to this very slice.
    @inline(__always)
    private static func flow(_ flow: TraceFlowBinding, into buffer: inout ByteBuffer) {
        buffer.append(",\"bind_id\":")
        buffer.append(decimal: Int64(bitPattern: flow.id))
        if flow.outgoing { buffer.append(",\"flow_out\":true") }
        if flow.incoming { buffer.append(",\"flow_in\":true") }
    }

    /// An instant event with a pre-escaped name; `tid` is needed for the thread scope only.
    public func instant(
        name: TraceText,
        category: TraceText,
        timestamp: Int64,
        pid: Int,
        tid: Int?,
        scope: TraceInstantScope = .thread,
        args: ((inout TraceArgsWriter) -> Void)? = nil
    ) throws {
        try event { buffer in
            Self.head(name: name, category: category, phase: "i", timestamp: timestamp, pid: pid, into: &buffer)
            if let tid { Self.tid(tid, into: &buffer) }
            Self.scope(scope, into: &buffer)
            if let args { Self.args(args, into: &buffer) }
        }
    }

    /// A single-series counter event with a pre-escaped name. `decimals` rounds the value (e.g. 3 for a rate in
    /// cores), which keeps the text short where more digits would only be noise.
    public func counter(
        name: TraceText,
        category: TraceText,
        timestamp: Int64,
        pid: Int,
        series: StaticString,
        value: Double,
        decimals: Int? = nil
    ) throws {
        try event { buffer in
            Self.head(name: name, category: category, phase: "C", timestamp: timestamp, pid: pid, into: &buffer)
            buffer.append(",\"args\":{")
            Self.staticKey(series, into: &buffer)
            buffer.append(json: decimals.map { Self.rounded(value, decimals: $0) } ?? value)
            buffer.append(UInt8(ascii: "}"))
        }
    }

    /// `value` rounded to `decimals` places (at most 15).
    public static func rounded(_ value: Double, decimals: Int) -> Double {
        var scale = 1.0
        for _ in 0..<max(0, min(decimals, 15)) { scale *= 10 }
        let scaled = (value * scale).rounded()
        return scaled.isFinite ? scaled / scale : value
    }

    /// The start (`ph: "s"`) of a flow arrow with pre-escaped name and category; see `flowStart(id:name:...)`.
    public func flowStart(id: UInt64, name: TraceText, category: TraceText, timestamp: Int64, pid: Int, tid: Int) throws {
        try event { buffer in
            Self.head(name: name, category: category, phase: "s", timestamp: timestamp, pid: pid, into: &buffer)
            Self.tid(tid, into: &buffer)
            buffer.append(",\"id\":")
            buffer.append(decimal: Int64(bitPattern: id))
        }
    }

    /// The end (`ph: "f"`, `bp: "e"`) of a flow arrow with pre-escaped name and category.
    public func flowEnd(id: UInt64, name: TraceText, category: TraceText, timestamp: Int64, pid: Int, tid: Int) throws {
        try event { buffer in
            Self.head(name: name, category: category, phase: "f", timestamp: timestamp, pid: pid, into: &buffer)
            Self.tid(tid, into: &buffer)
            buffer.append(",\"id\":")
            buffer.append(decimal: Int64(bitPattern: id))
            buffer.append(",\"bp\":\"e\"")
        }
    }

    @inline(__always)
    private static func scope(_ scope: TraceInstantScope, into buffer: inout ByteBuffer) {
        switch scope {
        case .thread: buffer.append(",\"s\":\"t\"")
        case .process: buffer.append(",\"s\":\"p\"")
        case .global: buffer.append(",\"s\":\"g\"")
        }
    }

    @inline(__always)
    private static func args(_ body: (inout TraceArgsWriter) -> Void, into buffer: inout ByteBuffer) {
        buffer.append(",\"args\":{")
        var writer = TraceArgsWriter(buffer: buffer)
        body(&writer)
        buffer = writer.buffer
        buffer.append(UInt8(ascii: "}"))
    }

    /// The start of a flow arrow (`ph: "s"`). It binds to the slice open on (`pid`, `tid`) at `timestamp`, so put
    /// `timestamp` strictly inside that slice. `id`, `name` and `category` must match the finishing event.
    public func flowStart(id: UInt64, name: String, category: String, timestamp: Int64, pid: Int, tid: Int) throws {
        try flowStart(
            id: id, name: TraceText(name), category: TraceText(category), timestamp: timestamp, pid: pid, tid: tid)
    }

    /// The end of a flow arrow (`ph: "f"` with `bp: "e"`): it binds to the slice enclosing `timestamp` on
    /// (`pid`, `tid`) rather than to the next slice that starts there.
    public func flowEnd(id: UInt64, name: String, category: String, timestamp: Int64, pid: Int, tid: Int) throws {
        try flowEnd(
            id: id, name: TraceText(name), category: TraceText(category), timestamp: timestamp, pid: pid, tid: tid)
    }

    // MARK: - Metadata (`ph: "M"`)

    public func processName(pid: Int, _ name: String) throws {
        try metadata("process_name", pid: pid, tid: nil) { buffer in
            buffer.append("\"name\":")
            JSONStringEscaper.appendQuoted(name, to: &buffer)
        }
    }

    /// Processes are ordered by ascending index, then by pid.
    public func processSortIndex(pid: Int, _ index: Int) throws {
        try metadata("process_sort_index", pid: pid, tid: nil) { buffer in
            buffer.append("\"sort_index\":")
            buffer.append(decimal: Int64(index))
        }
    }

    public func threadName(pid: Int, tid: Int, _ name: String) throws {
        try metadata("thread_name", pid: pid, tid: tid) { buffer in
            buffer.append("\"name\":")
            JSONStringEscaper.appendQuoted(name, to: &buffer)
        }
    }

    /// Threads of a process are ordered by ascending index, then by tid.
    public func threadSortIndex(pid: Int, tid: Int, _ index: Int) throws {
        try metadata("thread_sort_index", pid: pid, tid: tid) { buffer in
            buffer.append("\"sort_index\":")
            buffer.append(decimal: Int64(index))
        }
    }

    private func metadata(
        _ name: StaticString,
        pid: Int,
        tid: Int?,
        body: (inout ByteBuffer) -> Void
    ) throws {
        try event { buffer in
            buffer.append("{\"name\":\"")
            buffer.append(name)
            buffer.append("\",\"ph\":\"M\",\"pid\":")
            buffer.append(decimal: Int64(pid))
            if let tid { Self.tid(tid, into: &buffer) }
            buffer.append(",\"args\":{")
            body(&buffer)
            buffer.append(UInt8(ascii: "}"))
        }
    }

    // MARK: - Finishing

    /// Closes the event list, writes the trailing keys and hands everything left to `output`. `otherData` is shown
    /// by chrome://tracing under "Metadata"; Perfetto ignores it.
    public func finish(displayTimeUnit: StaticString = "ms", otherData: TraceArgs = TraceArgs()) throws {
        precondition(!finished, "finish() called twice")
        precondition(!continuesList, "a fragment ends with flush(), not finish()")
        finished = true
        buffer.append("\n],\"displayTimeUnit\":\"")
        buffer.append(displayTimeUnit)
        buffer.append(UInt8(ascii: "\""))
        Self.object(key: ",\"otherData\":", otherData, into: &buffer)
        buffer.append("}\n")
        try flush()
    }

    /// Hands the buffered bytes to `output` now.
    public func flush() throws {
        guard buffer.count > 0 else { return }
        try output(buffer.bytes)
        bytesFlushed += buffer.count
        buffer.removeAll()
    }

    // MARK: - Encoding

    @inline(__always)
    private func event(_ body: (inout ByteBuffer) -> Void) throws {
        precondition(!finished, "event written after finish()")
        if eventCount > 0 || continuesList { buffer.append(",\n") }
        body(&buffer)
        buffer.append(UInt8(ascii: "}"))
        eventCount += 1
        if buffer.count >= flushThreshold { try flush() }
    }

    @inline(__always)
    private static func head(
        name: String,
        category: String,
        phase: StaticString,
        timestamp: Int64,
        pid: Int,
        into buffer: inout ByteBuffer
    ) {
        buffer.append("{\"name\":")
        JSONStringEscaper.appendQuoted(name, to: &buffer)
        buffer.append(",\"cat\":")
        JSONStringEscaper.appendQuoted(category, to: &buffer)
        tail(phase: phase, timestamp: timestamp, pid: pid, into: &buffer)
    }

    @inline(__always)
    private static func head(
        name: TraceText,
        category: TraceText,
        phase: StaticString,
        timestamp: Int64,
        pid: Int,
        into buffer: inout ByteBuffer
    ) {
        buffer.append("{\"name\":")
        name.json.withUnsafeBytes { buffer.append($0) }
        buffer.append(",\"cat\":")
        category.json.withUnsafeBytes { buffer.append($0) }
        tail(phase: phase, timestamp: timestamp, pid: pid, into: &buffer)
    }

    @inline(__always)
    private static func tail(phase: StaticString, timestamp: Int64, pid: Int, into buffer: inout ByteBuffer) {
        buffer.append(",\"ph\":\"")
        buffer.append(phase)
        buffer.append("\",\"ts\":")
        buffer.append(decimal: timestamp)
        buffer.append(",\"pid\":")
        buffer.append(decimal: Int64(pid))
    }

    @inline(__always)
    private static func tid(_ tid: Int, into buffer: inout ByteBuffer) {
        buffer.append(",\"tid\":")
        buffer.append(decimal: Int64(tid))
    }

    @inline(__always)
    private static func color(_ color: TraceColor, into buffer: inout ByteBuffer) {
        buffer.append(",\"cname\":\"")
        var name = color.rawValue
        name.withUTF8 { buffer.append($0) }
        buffer.append(UInt8(ascii: "\""))
    }

    private static func staticKey(_ key: StaticString, into buffer: inout ByteBuffer) {
        buffer.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { JSONStringEscaper.appendEscaped(UnsafeRawBufferPointer($0), to: &buffer) }
        buffer.append("\":")
    }

    private static func object(key: StaticString, _ args: TraceArgs, into buffer: inout ByteBuffer) {
        buffer.append(key)
        buffer.append(UInt8(ascii: "{"))
        for index in 0..<args.count {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            JSONStringEscaper.appendQuoted(args.keys[index], to: &buffer)
            buffer.append(UInt8(ascii: ":"))
            value(args.values[index], into: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    @inline(__always)
    private static func value(_ value: TraceValue, into buffer: inout ByteBuffer) {
        switch value {
        case .string(let text): JSONStringEscaper.appendQuoted(text, to: &buffer)
        case .int(let number): buffer.append(decimal: number)
        case .double(let number): buffer.append(json: number)
        case .bool(let flag): buffer.append(flag ? "true" : "false")
        case .null: buffer.append("null")
        }
    }
}
