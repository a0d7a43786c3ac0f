/// A value in an event's `args`, a counter's series or the trace's `otherData`.
public enum TraceValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    /// Non-finite doubles are written as `null`: JSON has no NaN or infinity.
    case double(Double)
    case bool(Bool)
    case null
}

extension TraceValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension TraceValue {
    /// `.null` when `value` is nil.
    public static func string(_ value: String?) -> TraceValue { value.map { .string($0) } ?? .null }
    /// `.null` when `value` is nil.
    public static func int(_ value: Int?) -> TraceValue { value.map { .int(Int64($0)) } ?? .null }
}

/// An ordered list of key/value pairs, written as a JSON object in this order.
///
/// Keep one and reuse it (`removeAll()` keeps its storage), so that building args per event does not allocate.
/// Keys should be unique; the writer does not check.
public struct TraceArgs: Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    public private(set) var values: [TraceValue] = []

    public init() {}

    public init(minimumCapacity: Int) {
        keys.reserveCapacity(minimumCapacity)
        values.reserveCapacity(minimumCapacity)
    }

    public init(dictionaryLiteral elements: (String, TraceValue)...) {
        for (key, value) in elements { append(key, value) }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public mutating func append(_ key: String, _ value: TraceValue) {
        keys.append(key)
        values.append(value)
    }

    /// Empties the list, keeping its storage for the next event.
    public mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
    }
}

/// A colour name that chrome://tracing (catapult) knows; any other `cname` makes it reject the event.
/// Perfetto ignores `cname` and colours by name.
public enum TraceColor: String, Sendable, CaseIterable {
    case good, bad, terrible, yellow, olive, black, grey, white
    case genericWork = "generic_work"
    case threadStateRunning = "thread_state_running"
    case threadStateRunnable = "thread_state_runnable"
    case threadStateSleeping = "thread_state_sleeping"
    case threadStateIOWait = "thread_state_iowait"
    case threadStateUninterruptible = "thread_state_uninterruptible"
    case threadStateUnknown = "thread_state_unknown"
    case railResponse = "rail_response"
    case railAnimation = "rail_animation"
    case railIdle = "rail_idle"
    case railLoad = "rail_load"
    case startup
    case cqBuildRunning = "cq_build_running"
    case cqBuildPassed = "cq_build_passed"
    case cqBuildFailed = "cq_build_failed"
    case cqBuildAbandoned = "cq_build_abandoned"
    case cqBuildAttemptPassed = "cq_build_attempt_passed"
    case cqBuildAttemptFailed = "cq_build_attempt_failed"
}

/// Where an instant event (`ph: "i"`) is drawn.
public enum TraceInstantScope: Sendable {
    /// On its thread, as a zero-length slice.
    case thread
    /// On its process's track.
    case process
    /// On a track of its own spanning the whole trace.
    case global
}

/// Flow events of the newer form (`bind_id`), put on the slice event itself: Perfetto and catapult bind the arrow to
/// that slice, whatever else is open at its moment. One id per event; many slices may end an arrow of one id.
public struct TraceFlowBinding: Sendable, Equatable {
    public var id: UInt64
    /// The slice starts an arrow with this id.
    public var outgoing: Bool
    /// The slice ends an arrow with this id.
    public var incoming: Bool

    public init(id: UInt64, outgoing: Bool, incoming: Bool) {
        self.id = id
        self.outgoing = outgoing
        self.incoming = incoming
    }
}

/// A name, category or value that is written many times (an app, a state, a counter track), escaped and quoted
/// once, so that writing it is a copy.
public struct TraceText: Sendable, Hashable {
    let json: [UInt8]

    public init(_ text: String) {
        json = Array(JSONStringEscaper.quoted(text).utf8)
    }
}

/// Writes the members of one event's `args` object straight into the output, in call order. Keys are static
/// text; each key should be used once per event (the writer does not check).
public struct TraceArgsWriter {
    var buffer: ByteBuffer
    private var count = 0

    init(buffer: ByteBuffer) { self.buffer = buffer }

    @inline(__always)
    mutating func key(_ key: StaticString) {
        if count > 0 { buffer.append(UInt8(ascii: ",")) }
        count += 1
        buffer.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { JSONStringEscaper.appendEscaped(UnsafeRawBufferPointer($0), to: &buffer) }
        buffer.append("\":")
    }

    public mutating func int(_ key: StaticString, _ value: Int64) {
        self.key(key)
        buffer.append(decimal: value)
    }

    /// A JSON number; `null` when not finite.
    public mutating func double(_ key: StaticString, _ value: Double) {
        self.key(key)
        buffer.append(json: value)
    }

    public mutating func string(_ key: StaticString, _ value: String) {
        self.key(key)
        JSONStringEscaper.appendQuoted(value, to: &buffer)
    }

    public mutating func string(_ key: StaticString, _ value: TraceText) {
        self.key(key)
        value.json.withUnsafeBytes { buffer.append($0) }
    }

    public mutating func bool(_ key: StaticString, _ value: Bool) {
        self.key(key)
        buffer.append(value ? "true" : "false")
    }

    public mutating func null(_ key: StaticString) {
        self.key(key)
        buffer.append("null")
    }
}

extension TraceArgsWriter {
    /// A string from raw bytes (e.g. a database column), any ill-formed UTF-8 replaced by U+FFFD.
    public mutating func string(_ key: StaticString, utf8: UnsafeBufferPointer<UInt8>) {
        self.key(key)
        JSONStringEscaper.appendQuoted(validating: UnsafeRawBufferPointer(utf8), to: &buffer)
    }
}
