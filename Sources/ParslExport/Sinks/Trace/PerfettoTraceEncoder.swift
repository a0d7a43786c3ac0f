import PerfettoFormat
import Synchronization
import TraceEventFormat

/// The trace as Perfetto protobuf (`PerfettoTraceWriter`): each process, thread and counter a track descriptor,
/// slices as begin/end pairs on their thread's track, instants on their thread, process or a top-level track,
/// counters on counter tracks of their process (named as Perfetto names JSON counters: "<name> <series>"), flows
/// as `flow_ids` on the begin of the slice they leave and `terminating_flow_ids` on the end of the slice they reach
/// (the layout picks the slices the JSON trace's flow events bind to). Timestamps stay microseconds
/// (the writer's clock has a 1000 ns unit), so both encodings give the same times in Perfetto.
///
/// Each thread of the layout has its own encoder and packet sequence; they share the track uuids (`Tracks`).
final class PerfettoTraceEncoder: TraceEncoder {
    /// A string interned by this encoder's writer, with its text (counter tracks are named from it).
    struct Name {
        let string: PerfettoString
        let text: String
    }

    /// Track uuids of one trace. Processes and threads are declared by the main encoder before the counter thread
    /// begins (`TraceCounterThread.begin` orders the two), so the counter encoder only reads them; the one track
    /// the main encoder may add later has its uuid reserved, so uuids do not depend on how the threads interleave.
    final class Tracks: @unchecked Sendable {
        let global: UInt64 = 1
        private let next = Atomic<UInt64>(2)
        fileprivate var processes: [Int: UInt64] = [:]

        func newUUID() -> UInt64 { next.add(1, ordering: .relaxed).oldValue }
    }

    let writer: PerfettoTraceWriter
    private let tracks: Tracks
    /// Layout events, counted as the JSON encoder counts them (a slice is one, an arrow two), so --max-events means
    /// one thing.
    private(set) var eventCount = 0
    private var threads: [Int64: UInt64] = [:]
    private var counters: [Int64: UInt64] = [:]
    private var globalTrackDescribed = false

    init(_ writer: PerfettoTraceWriter, tracks: Tracks) {
        self.writer = writer
        self.tracks = tracks
    }

    func name(_ text: String) -> Name { Name(string: writer.string(text), text: text) }

    static var bindsFlowsToSlices: Bool { true }

    private static func key(_ a: Int, _ b: Int) -> Int64 { Int64(a) << 32 | Int64(UInt32(truncatingIfNeeded: b)) }

    private static func time(_ micros: Int64) throws -> UInt64 {
        guard micros >= 0 else {
            throw ExportError(
                .dataError, "a timestamp before 1970 cannot be written in a protobuf trace with --absolute; leave it out")
        }
        return UInt64(micros)
    }

    // MARK: - Tracks

    func process(pid: Int, name: String, sortIndex: Int) throws {
        let uuid = tracks.newUUID()
        tracks.processes[pid] = uuid
        try writer.process(uuid: uuid, pid: Int32(clamping: pid), name: name, sortIndex: Int32(clamping: sortIndex))
    }

    func thread(pid: Int, tid: Int, name: String, sortIndex: Int) throws {
        let uuid = tracks.newUUID()
        threads[Self.key(pid, tid)] = uuid
        try writer.thread(
            uuid: uuid, parent: try processTrack(pid), pid: Int32(clamping: pid), tid: Int32(clamping: tid), name: name,
            order: Int32(clamping: sortIndex))
    }

    private func processTrack(_ pid: Int) throws -> UInt64 {
        guard let uuid = tracks.processes[pid] else { preconditionFailure("process \(pid) used before it was named") }
        return uuid
    }

    private func threadTrack(_ pid: Int, _ tid: Int) throws -> UInt64 {
        guard let uuid = threads[Self.key(pid, tid)] else {
            preconditionFailure("thread \(pid)/\(tid) used before it was named")
        }
        return uuid
    }

    private func instantTrack(pid: Int, tid: Int?, scope: TraceInstantScope) throws -> UInt64 {
        switch scope {
        case .thread: return try threadTrack(pid, tid ?? pid)
        case .process: return try processTrack(pid)
        case .global:
            if !globalTrackDescribed {
                try writer.track(uuid: tracks.global, parent: nil, name: "workflow markers")
                globalTrackDescribed = true
            }
            return tracks.global
        }
    }

    // MARK: - Events

    func slice(
        name: Name, category: Name, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?,
        flows: TraceSliceFlows, args: (inout Args) -> Void
    ) throws {
        let track = try threadTrack(pid, tid)
        try writer.beginSlice(
            track: track, timestamp: try Self.time(start), name: name.string, category: category.string,
            flows: flows.outgoing
        ) { annotations in
            var writer = Args(annotations: annotations)
            args(&writer)
        }
        try writer.endSlice(
            track: track, timestamp: try Self.time(start + duration), terminatingFlows: flows.incoming)
        eventCount += 1 + 2 * flows.incoming.count
    }

    func slice(
        name: Name, category: Name, start: Int64, duration: Int64, pid: Int, tid: Int, color: TraceColor?,
        flows: TraceSliceFlows
    ) throws {
        let track = try threadTrack(pid, tid)
        try writer.beginSlice(
            track: track, timestamp: try Self.time(start), name: name.string, category: category.string,
            flows: flows.outgoing)
        try writer.endSlice(
            track: track, timestamp: try Self.time(start + duration), terminatingFlows: flows.incoming)
        eventCount += 1 + 2 * flows.incoming.count
    }

    func instant(
        name: Name, category: Name, timestamp: Int64, pid: Int, tid: Int?, scope: TraceInstantScope,
        args: (inout Args) -> Void
    ) throws {
        try writer.instant(
            track: try instantTrack(pid: pid, tid: tid, scope: scope), timestamp: try Self.time(timestamp),
            name: name.string, category: category.string
        ) { annotations in
            var writer = Args(annotations: annotations)
            args(&writer)
        }
        eventCount += 1
    }

    func instant(name: Name, category: Name, timestamp: Int64, pid: Int, tid: Int?, scope: TraceInstantScope) throws {
        try writer.instant(
            track: try instantTrack(pid: pid, tid: tid, scope: scope), timestamp: try Self.time(timestamp),
            name: name.string, category: category.string)
        eventCount += 1
    }

    func instant(name: Name, category: Name, timestamp: Int64, pid: Int, tid: Int, arriving: [UInt64]) throws {
        try writer.instant(
            track: try threadTrack(pid, tid), timestamp: try Self.time(timestamp), name: name.string,
            category: category.string, terminatingFlows: arriving)
        eventCount += 1 + 2 * arriving.count
    }

    func counter(
        name: Name, category: Name, timestamp: Int64, pid: Int, unit: TraceCounterUnit, value: Double, decimals: Int?
    ) throws {
        let key = Self.key(pid, name.string.index)
        let track: UInt64
        if let known = counters[key] {
            track = known
        } else {
            track = tracks.newUUID()
            counters[key] = track
            let perfettoUnit: PerfettoCounterUnit =
                switch unit {
                case .bytes: .bytes
                case .cores: .named("cores")
                case .count: .count
                }
            try writer.counterTrack(
                uuid: track, parent: try processTrack(pid), name: name.text + " " + unit.series.description,
                unit: perfettoUnit)
        }
        let value = decimals.map { TraceEventWriter.rounded(value, decimals: $0) } ?? value
        let time = try Self.time(timestamp)
        // Whole numbers (bytes, counts) as varints: smaller than a double's eight bytes.
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            try writer.counter(track: track, timestamp: time, value: Int64(value))
        } else {
            try writer.counter(track: track, timestamp: time, value: value)
        }
        eventCount += 1
    }

    func flow(id: UInt64, name: Name, from: TracePoint, to: TracePoint) throws {
        preconditionFailure("arrows come with their slices (bindsFlowsToSlices)")
    }

    func flush() throws { try writer.flush() }

    /// Perfetto's trace has no place for free-form metadata: the run's id and times are in the args of the
    /// workflow markers.
    func finish(metadata: TraceArgs) throws { try writer.flush() }

    /// Debug annotations (`debug.<key>` args in Perfetto).
    struct Args: TraceArgumentWriter {
        typealias Name = PerfettoTraceEncoder.Name
        var annotations: PerfettoAnnotations

        mutating func int(_ key: StaticString, _ value: Int64) { annotations.int(key, value) }
        /// A whole number as an integer, as the JSON trace writes it (without a fraction) and Perfetto reads it.
        mutating func double(_ key: StaticString, _ value: Double) {
            if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
                annotations.int(key, Int64(value))
            } else {
                annotations.double(key, value)
            }
        }
        mutating func string(_ key: StaticString, _ value: String) { annotations.string(key, value) }
        mutating func string(_ key: StaticString, _ value: Name) { annotations.string(key, value.string) }
        mutating func string(_ key: StaticString, utf8: UnsafeBufferPointer<UInt8>) {
            annotations.string(key, utf8: utf8)
        }
        mutating func bool(_ key: StaticString, _ value: Bool) { annotations.bool(key, value) }
    }
}
