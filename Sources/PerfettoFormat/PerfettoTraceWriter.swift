/// Writes a Perfetto trace (`perfetto.protos.Trace`: a stream of length-delimited `TracePacket`s) packet by packet,
/// with the message and field numbers of Perfetto's `protos/perfetto/trace/`. Packets go into a buffer that is
/// handed to `output` whenever it passes `flushThreshold` bytes; a trace is any concatenation of such chunks, so
/// writers of different packet sequences may share one output as long as each hands over whole chunks.
///
/// One writer is one trusted packet sequence. Its first packets clear the sequence's incremental state, set the
/// default clock and describe the sequence's clocks (`ClockSnapshot`), all in units of `timeUnitNanoseconds` with
/// their zero at zero on BOOTTIME: one absolute clock and a few incremental ones, whose packets carry the time since
/// the previous packet on the same clock. Timestamps may come in any order: each packet goes on the incremental
/// clock that is latest without being past it (interleaved runs of rising times, such as slice begins and ends,
/// each keep a clock of their own), and on the absolute clock when every incremental one is past it. Small deltas
/// instead of absolute times make the trace about a third smaller once compressed.
/// Event names, categories, annotation names and repeated annotation strings are interned: each is written once,
/// in the `interned_data` of the first packet that uses it.
///
/// Reader rules that the API cannot enforce: tracks are described before their events and their uuids are unique
/// in the trace; slice begins and ends on one track form a stack (the reader sorts events by time and keeps the
/// writing order among equal times), so slices on one track must nest.
public final class PerfettoTraceWriter {
    public typealias Output = (UnsafeRawBufferPointer) throws -> Void

    /// Sequence-scoped clocks (Perfetto reserves 64–127 for these): one absolute, then the incremental ones, the
    /// first of which is the default.
    static let absoluteClock: UInt64 = 64
    static let incrementalClocks: Int = 8
    static let bootTimeClock: UInt64 = 6

    /// Distinct short string values interned by their bytes at most.
    static let internedValueLimit = 8192

    /// Each incremental clock's value: the time of the last packet on it.
    private let clockTimes: UnsafeMutableBufferPointer<UInt64> = {
        let times = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: incrementalClocks)
        times.initialize(repeating: 0)
        return times
    }()

    /// The packets not yet handed over. Out of line, behind an addressor: a stored property of a class is checked
    /// for exclusive access at run time on every touch, which cost a tenth of the writing time.
    private let bufferStorage: UnsafeMutablePointer<ProtoBuffer> = .allocate(capacity: 1)
    private var buffer: ProtoBuffer {
        unsafeAddress { UnsafePointer(bufferStorage) }
        unsafeMutableAddress { bufferStorage }
    }
    private let output: Output
    private let flushThreshold: Int
    private let sequenceID: UInt64

    /// Packets written so far, the first ones (sequence state, clock) included.
    public private(set) var packetCount = 0
    /// Track events written so far.
    public private(set) var eventCount = 0
    /// Bytes handed to `output` so far.
    public private(set) var bytesFlushed = 0

    // Interning: each string has one slot; its iid in each table is assigned on first use (0: not yet).
    private var strings: [[UInt8]] = []
    private var nameIIDs: [UInt64] = []
    private var categoryIIDs: [UInt64] = []
    private var valueIIDs: [UInt64] = []
    private var nextNameIID: UInt64 = 1
    private var nextCategoryIID: UInt64 = 1
    private var nextValueIID: UInt64 = 1
    /// Annotation keys by the address of their static text: a few dozen, found faster by a scan than by hashing.
    private var annotationKeys: [UInt] = []
    private var annotationNameIIDs: [UInt64] = []
    private var nextAnnotationNameIID: UInt64 = 1
    /// Short strings from bytes (`PerfettoAnnotations.string(_:utf8:)`) by their hash, to intern repeated values.
    private var stringsByHash: [UInt64: PerfettoString] = [:]
    /// Interned entries first used by the packet being written: (InternedData field, iid, what to write).
    private var pending: [(field: UInt32, iid: UInt64, text: PendingText)] = []

    private enum PendingText {
        case slot(Int)
        case key(StaticString)
    }

    /// Starts the sequence `sequenceID` (non-zero, unique among the writers of one trace).
    public init(
        sequenceID: UInt32, timeUnitNanoseconds: UInt64 = 1000, flushThreshold: Int = 1 << 20,
        output: @escaping Output
    ) {
        precondition(sequenceID != 0, "sequence id 0 is reserved")
        self.sequenceID = UInt64(sequenceID)
        self.flushThreshold = max(flushThreshold, 1024)
        self.output = output
        bufferStorage.initialize(to: ProtoBuffer(capacity: self.flushThreshold + 65536))

        var packet = beginPacket()
        buffer.uint(Field.Packet.sequenceFlags, Field.Packet.incrementalStateCleared)
        buffer.bool(Field.Packet.firstPacketOnSequence, true)
        let defaults = buffer.beginMessage(Field.Packet.traceDefaults)
        buffer.uint(Field.Defaults.timestampClockID, Self.absoluteClock + 1)
        buffer.endMessage(defaults)
        endPacket(&packet)

        packet = beginPacket()
        let snapshot = buffer.beginMessage(Field.Packet.clockSnapshot)
        for clock in Self.absoluteClock...(Self.absoluteClock + UInt64(Self.incrementalClocks)) {
            let entry = buffer.beginMessage(Field.ClockSnapshot.clocks)
            buffer.uint(Field.Clock.clockID, clock)
            buffer.uint(Field.Clock.timestamp, 0)
            if clock != Self.absoluteClock { buffer.bool(Field.Clock.isIncremental, true) }
            buffer.uint(Field.Clock.unitMultiplierNanoseconds, timeUnitNanoseconds)
            buffer.endMessage(entry)
        }
        let boot = buffer.beginMessage(Field.ClockSnapshot.clocks)
        buffer.uint(Field.Clock.clockID, Self.bootTimeClock)
        buffer.uint(Field.Clock.timestamp, 0)
        buffer.endMessage(boot)
        buffer.endMessage(snapshot)
        endPacket(&packet)
    }

    deinit {
        bufferStorage.deinitialize(count: 1)
        bufferStorage.deallocate()
        clockTimes.deallocate()
    }

    // MARK: - Strings

    /// A string to be interned on first use as an event name, category or annotation value.
    public func string(_ text: String) -> PerfettoString { addSlot(Array(text.utf8)) }

    private func addSlot(_ bytes: [UInt8]) -> PerfettoString {
        strings.append(bytes)
        nameIIDs.append(0)
        categoryIIDs.append(0)
        valueIIDs.append(0)
        return PerfettoString(slot: Int32(strings.count - 1))
    }

    private func iid(name: PerfettoString) -> UInt64 {
        let slot = Int(name.slot)
        if nameIIDs[slot] == 0 {
            nameIIDs[slot] = nextNameIID
            nextNameIID += 1
            pending.append((Field.Interned.eventNames, nameIIDs[slot], .slot(slot)))
        }
        return nameIIDs[slot]
    }

    private func iid(category: PerfettoString) -> UInt64 {
        let slot = Int(category.slot)
        if categoryIIDs[slot] == 0 {
            categoryIIDs[slot] = nextCategoryIID
            nextCategoryIID += 1
            pending.append((Field.Interned.eventCategories, categoryIIDs[slot], .slot(slot)))
        }
        return categoryIIDs[slot]
    }

    private func iid(value: PerfettoString) -> UInt64 {
        let slot = Int(value.slot)
        if valueIIDs[slot] == 0 {
            valueIIDs[slot] = nextValueIID
            nextValueIID += 1
            pending.append((Field.Interned.annotationStringValues, valueIIDs[slot], .slot(slot)))
        }
        return valueIIDs[slot]
    }

    private func iid(key: StaticString) -> UInt64 {
        let address = UInt(bitPattern: key.utf8Start)
        for index in annotationKeys.indices where annotationKeys[index] == address { return annotationNameIIDs[index] }
        let iid = nextAnnotationNameIID
        nextAnnotationNameIID += 1
        annotationKeys.append(address)
        annotationNameIIDs.append(iid)
        pending.append((Field.Interned.annotationNames, iid, .key(key)))
        return iid
    }

    // MARK: - Tracks

    /// A process: its track, named `name`, ordered by `sortIndex` among processes where the reader supports it.
    public func process(uuid: UInt64, pid: Int32, name: String, sortIndex: Int32? = nil) throws {
        try descriptor(uuid: uuid, parent: nil, name: nil, explicitChildOrder: true) {
            let process = $0.beginMessage(Field.Track.process)
            $0.int(Field.Process.pid, Int64(pid))
            $0.string(Field.Process.processName, name)
            if let sortIndex { $0.int(Field.Process.legacySortIndex, Int64(sortIndex)) }
            $0.endMessage(process)
        }
    }

    /// A thread of process `pid` (whose track is `parent`), placed by `order` among its siblings.
    public func thread(uuid: UInt64, parent: UInt64, pid: Int32, tid: Int32, name: String, order: Int32? = nil) throws {
        try descriptor(uuid: uuid, parent: parent, name: nil, order: order) {
            let thread = $0.beginMessage(Field.Track.thread)
            $0.int(Field.Thread.pid, Int64(pid))
            $0.int(Field.Thread.tid, Int64(tid))
            $0.string(Field.Thread.threadName, name)
            $0.endMessage(thread)
        }
    }

    /// A track for slices and instants of its own, under `parent` or at the top.
    public func track(uuid: UInt64, parent: UInt64?, name: String) throws {
        try descriptor(uuid: uuid, parent: parent, name: name) { _ in }
    }

    /// A counter track under `parent` (a process, say).
    public func counterTrack(uuid: UInt64, parent: UInt64?, name: String, unit: PerfettoCounterUnit) throws {
        try descriptor(uuid: uuid, parent: parent, name: name) {
            let counter = $0.beginMessage(Field.Track.counter)
            switch unit {
            case .unspecified: break
            case .nanoseconds: $0.uint(Field.Counter.unit, 1)
            case .count: $0.uint(Field.Counter.unit, 2)
            case .bytes: $0.uint(Field.Counter.unit, 3)
            case .named(let name): $0.string(Field.Counter.unitName, name)
            }
            $0.endMessage(counter)
        }
    }

    private func descriptor(
        uuid: UInt64, parent: UInt64?, name: String?, order: Int32? = nil, explicitChildOrder: Bool = false,
        body: (inout ProtoBuffer) -> Void
    ) throws {
        var packet = beginPacket()
        let track = buffer.beginMessage(Field.Packet.trackDescriptor)
        buffer.uint(Field.Track.uuid, uuid)
        if let parent { buffer.uint(Field.Track.parentUUID, parent) }
        if let name { buffer.string(Field.Track.name, name) }
        if explicitChildOrder { buffer.uint(Field.Track.childOrdering, 3) }
        if let order { buffer.int(Field.Track.siblingOrderRank, Int64(order)) }
        body(&buffer)
        buffer.endMessage(track)
        endPacket(&packet)
        try flushIfFull()
    }

    // MARK: - Events

    /// The start of a slice on `track`; `annotations` become its args (`debug.<key>`). Flow arrows leave the slice for
    /// each id of `flows`, to the slice whose end names the id in its `terminatingFlows` (`endSlice`); ids are unique
    /// in the trace, and the reader takes them in time order, so the end must not come before this begin.
    public func beginSlice(
        track: UInt64, timestamp: UInt64, name: PerfettoString, category: PerfettoString, flows: [UInt64] = [],
        annotations: (inout PerfettoAnnotations) -> Void
    ) throws {
        try event(
            type: 1, track: track, timestamp: timestamp, name: name, category: category, flows: flows,
            annotations: annotations)
    }

    public func beginSlice(
        track: UInt64, timestamp: UInt64, name: PerfettoString, category: PerfettoString, flows: [UInt64] = []
    ) throws {
        try event(type: 1, track: track, timestamp: timestamp, name: name, category: category, flows: flows) { _ in }
    }

    /// The end of the innermost open slice on `track`, where the flow arrows `terminatingFlows` arrive.
    public func endSlice(track: UInt64, timestamp: UInt64, terminatingFlows: [UInt64] = []) throws {
        try event(
            type: 2, track: track, timestamp: timestamp, name: nil, category: nil, terminatingFlows: terminatingFlows
        ) { _ in }
    }

    /// A zero-length slice on `track`.
    public func instant(
        track: UInt64, timestamp: UInt64, name: PerfettoString, category: PerfettoString,
        annotations: (inout PerfettoAnnotations) -> Void
    ) throws {
        try event(type: 3, track: track, timestamp: timestamp, name: name, category: category, annotations: annotations)
    }

    /// A zero-length slice on `track`, where the flow arrows `terminatingFlows` arrive (as at a slice's end).
    public func instant(
        track: UInt64, timestamp: UInt64, name: PerfettoString, category: PerfettoString, terminatingFlows: [UInt64] = []
    ) throws {
        try event(
            type: 3, track: track, timestamp: timestamp, name: name, category: category,
            terminatingFlows: terminatingFlows
        ) { _ in }
    }

    /// A sample of the counter track `track`.
    public func counter(track: UInt64, timestamp: UInt64, value: Int64) throws {
        try counterEvent(track: track, timestamp: timestamp) { $0.int(Field.Event.counterValue, value) }
    }

    public func counter(track: UInt64, timestamp: UInt64, value: Double) throws {
        try counterEvent(track: track, timestamp: timestamp) { $0.double(Field.Event.doubleCounterValue, value) }
    }

    @inline(__always)
    private func event(
        type: UInt64, track: UInt64, timestamp: UInt64, name: PerfettoString?, category: PerfettoString?,
        flows: [UInt64] = [], terminatingFlows: [UInt64] = [], annotations: (inout PerfettoAnnotations) -> Void
    ) throws {
        var packet = beginPacket(timestamp: timestamp)
        let event = buffer.beginMessage(Field.Packet.trackEvent)
        buffer.uint(Field.Event.type, type)
        buffer.uint(Field.Event.trackUUID, track)
        if let category { buffer.uint(Field.Event.categoryIIDs, iid(category: category)) }
        if let name { buffer.uint(Field.Event.nameIID, iid(name: name)) }
        for id in flows { buffer.fixed64(Field.Event.flowIDs, id) }
        for id in terminatingFlows { buffer.fixed64(Field.Event.terminatingFlowIDs, id) }
        var writer = PerfettoAnnotations(writer: self)
        annotations(&writer)
        buffer.endMessage(event)
        endPacket(&packet)
        eventCount += 1
        try flushIfFull()
    }

    private func counterEvent(track: UInt64, timestamp: UInt64, value: (inout ProtoBuffer) -> Void) throws {
        var packet = beginPacket(timestamp: timestamp)
        let event = buffer.beginMessage(Field.Packet.trackEvent)
        buffer.uint(Field.Event.type, 4)
        buffer.uint(Field.Event.trackUUID, track)
        value(&buffer)
        buffer.endMessage(event)
        endPacket(&packet)
        eventCount += 1
        try flushIfFull()
    }

    // MARK: - Annotations (called by PerfettoAnnotations)

    fileprivate func annotation(_ key: StaticString, _ value: (inout ProtoBuffer) -> Void) {
        let start = buffer.beginMessage(Field.Event.debugAnnotations)
        buffer.uint(Field.Annotation.nameIID, iid(key: key))
        value(&buffer)
        buffer.endMessage(start)
    }

    fileprivate func annotation(_ key: StaticString, interned value: PerfettoString) {
        let iid = iid(value: value)
        annotation(key) { $0.uint(Field.Annotation.stringValueIID, iid) }
    }

    fileprivate func annotation(_ key: StaticString, utf8 value: UnsafeBufferPointer<UInt8>) {
        guard value.count <= 64 else {
            annotation(key) { Self.validString(Field.Annotation.stringValue, value, into: &$0) }
            return
        }
        // Values like an app, a host or a block repeat from event to event: intern them by their bytes.
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in value { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        if let known = stringsByHash[hash] {
            if strings[Int(known.slot)].elementsEqual(value) {
                annotation(key, interned: known)
            } else {
                annotation(key) { Self.validString(Field.Annotation.stringValue, value, into: &$0) }
            }
            return
        }
        // Past a few thousand distinct values (fail reasons of a million-task run), the table would cost more
        // memory than interning saves bytes: the rest are written out.
        guard stringsByHash.count < Self.internedValueLimit else {
            annotation(key) { Self.validString(Field.Annotation.stringValue, value, into: &$0) }
            return
        }
        let interned =
            value.allSatisfy({ $0 < 0x80 }) ? addSlot(Array(value)) : string(String(decoding: value, as: UTF8.self))
        // A value that was not valid UTF-8 is stored repaired; its hash then never matches its slot's bytes.
        stringsByHash[hash] = interned
        annotation(key, interned: interned)
    }

    /// A string field from bytes, any ill-formed UTF-8 replaced by U+FFFD (readers reject invalid strings).
    private static func validString(_ field: UInt32, _ value: UnsafeBufferPointer<UInt8>, into buffer: inout ProtoBuffer) {
        if value.allSatisfy({ $0 < 0x80 }) {
            buffer.bytes(field, UnsafeRawBufferPointer(value))
        } else {
            buffer.string(field, String(decoding: value, as: UTF8.self))
        }
    }

    // MARK: - Packets

    private struct OpenPacket {
        let start: Int
    }

    @inline(__always)
    private func beginPacket(timestamp: UInt64? = nil) -> OpenPacket {
        let start = buffer.beginMessage(Field.Trace.packet)
        if let timestamp { self.timestamp(timestamp) }
        buffer.uint(Field.Packet.trustedPacketSequenceID, sequenceID)
        return OpenPacket(start: start)
    }

    /// Adds what the packet interned for the first time, and the flag that it depends on the sequence's state.
    /// The packet's time on the incremental clock that is latest without being past it, else on the absolute clock.
    @inline(__always)
    private func timestamp(_ time: UInt64) {
        var chosen = -1
        for clock in 0..<Self.incrementalClocks where clockTimes[clock] <= time {
            if chosen < 0 || clockTimes[clock] > clockTimes[chosen] { chosen = clock }
        }
        guard chosen >= 0 else {
            buffer.uint(Field.Packet.timestamp, time)
            buffer.uint(Field.Packet.timestampClockID, Self.absoluteClock)
            return
        }
        buffer.uint(Field.Packet.timestamp, time - clockTimes[chosen])
        clockTimes[chosen] = time
        if chosen > 0 { buffer.uint(Field.Packet.timestampClockID, Self.absoluteClock + 1 + UInt64(chosen)) }
    }

    @inline(__always)
    private func endPacket(_ packet: inout OpenPacket) {
        if packetCount > 0 { buffer.uint(Field.Packet.sequenceFlags, Field.Packet.needsIncrementalState) }
        if !pending.isEmpty {
            let interned = buffer.beginMessage(Field.Packet.internedData)
            for entry in pending {
                let message = buffer.beginMessage(entry.field)
                buffer.uint(1, entry.iid)  // iid in EventName, EventCategory, DebugAnnotationName, InternedString
                switch entry.text {
                case .slot(let slot): buffer.bytes(2, strings[slot])
                case .key(let key):
                    key.withUTF8Buffer { buffer.bytes(2, UnsafeRawBufferPointer($0)) }
                }
                buffer.endMessage(message)
            }
            buffer.endMessage(interned)
            pending.removeAll(keepingCapacity: true)
        }
        buffer.endMessage(packet.start)
        packetCount += 1
    }

    @inline(__always)
    private func flushIfFull() throws {
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Hands the buffered packets to `output` now.
    public func flush() throws {
        guard buffer.count > 0 else { return }
        try output(buffer.bytes)
        bytesFlushed += buffer.count
        buffer.removeAll()
    }
}

/// A string of one writer, interned on first use (see `PerfettoTraceWriter.string`).
public struct PerfettoString: Hashable, Sendable {
    let slot: Int32

    /// A number unique among the strings of its writer, from 0.
    public var index: Int { Int(slot) }
}

/// What a counter track counts.
public enum PerfettoCounterUnit: Sendable, Equatable {
    case unspecified
    case nanoseconds
    case count
    case bytes
    /// A unit Perfetto has no constant for, shown by name.
    case named(String)
}

/// Writes the debug annotations of one event in place, in call order; keys are static text, interned.
public struct PerfettoAnnotations {
    // Lives only while the writer calls the closure that fills it.
    private unowned(unsafe) let writer: PerfettoTraceWriter

    fileprivate init(writer: PerfettoTraceWriter) { self.writer = writer }

    public mutating func int(_ key: StaticString, _ value: Int64) {
        writer.annotation(key) { $0.int(Field.Annotation.intValue, value) }
    }

    public mutating func double(_ key: StaticString, _ value: Double) {
        writer.annotation(key) { $0.double(Field.Annotation.doubleValue, value) }
    }

    public mutating func bool(_ key: StaticString, _ value: Bool) {
        writer.annotation(key) { $0.bool(Field.Annotation.boolValue, value) }
    }

    public mutating func string(_ key: StaticString, _ value: String) {
        writer.annotation(key) { $0.string(Field.Annotation.stringValue, value) }
    }

    /// An interned string value: written once in the trace, referred to by its iid after.
    public mutating func string(_ key: StaticString, _ value: PerfettoString) {
        writer.annotation(key, interned: value)
    }

    /// A string from raw bytes (e.g. a database column), any ill-formed UTF-8 replaced by U+FFFD; short values
    /// are interned.
    public mutating func string(_ key: StaticString, utf8: UnsafeBufferPointer<UInt8>) {
        writer.annotation(key, utf8: utf8)
    }
}

/// Field numbers, from perfetto's protos/perfetto/trace/.
enum Field {
    enum Trace {
        static let packet: UInt32 = 1
    }

    enum Packet {
        static let timestamp: UInt32 = 8
        static let timestampClockID: UInt32 = 58
        static let trustedPacketSequenceID: UInt32 = 10
        static let trackEvent: UInt32 = 11
        static let internedData: UInt32 = 12
        static let sequenceFlags: UInt32 = 13
        static let clockSnapshot: UInt32 = 6
        static let traceDefaults: UInt32 = 59
        static let trackDescriptor: UInt32 = 60
        static let firstPacketOnSequence: UInt32 = 87
        // TracePacket.SequenceFlags
        static let incrementalStateCleared: UInt64 = 1
        static let needsIncrementalState: UInt64 = 2
    }

    enum Defaults {
        static let timestampClockID: UInt32 = 58
    }

    enum ClockSnapshot {
        static let clocks: UInt32 = 1
    }

    enum Clock {
        static let clockID: UInt32 = 1
        static let timestamp: UInt32 = 2
        static let isIncremental: UInt32 = 3
        static let unitMultiplierNanoseconds: UInt32 = 4
    }

    enum Track {
        static let uuid: UInt32 = 1
        static let name: UInt32 = 2
        static let process: UInt32 = 3
        static let thread: UInt32 = 4
        static let parentUUID: UInt32 = 5
        static let counter: UInt32 = 8
        static let childOrdering: UInt32 = 11
        static let siblingOrderRank: UInt32 = 12
    }

    enum Process {
        static let pid: UInt32 = 1
        static let legacySortIndex: UInt32 = 3
        static let processName: UInt32 = 6
    }

    enum Thread {
        static let pid: UInt32 = 1
        static let tid: UInt32 = 2
        static let threadName: UInt32 = 5
    }

    enum Counter {
        static let unit: UInt32 = 3
        static let unitName: UInt32 = 6
    }

    enum Event {
        static let categoryIIDs: UInt32 = 3
        static let debugAnnotations: UInt32 = 4
        static let type: UInt32 = 9
        static let nameIID: UInt32 = 10
        static let trackUUID: UInt32 = 11
        static let counterValue: UInt32 = 30
        static let doubleCounterValue: UInt32 = 44
        static let flowIDs: UInt32 = 47  // repeated fixed64
        static let terminatingFlowIDs: UInt32 = 48  // repeated fixed64
    }

    enum Annotation {
        static let nameIID: UInt32 = 1
        static let boolValue: UInt32 = 2
        static let intValue: UInt32 = 4
        static let doubleValue: UInt32 = 5
        static let stringValue: UInt32 = 6
        static let stringValueIID: UInt32 = 17
    }

    enum Interned {
        static let eventCategories: UInt32 = 1
        static let eventNames: UInt32 = 2
        static let annotationNames: UInt32 = 3
        static let annotationStringValues: UInt32 = 29
    }
}
