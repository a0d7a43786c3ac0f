import Testing

@testable import PerfettoFormat

/// The protobuf writer's bytes, decoded by hand here (a wire-format reader of a few lines) against the field
/// numbers of perfetto's protos/perfetto/trace/; scripts/checks/check-trace.sh decodes real traces with Perfetto's
/// own compiled protos and trace processor.
struct PerfettoTraceWriterTests {
    /// One field of a message: its number, and its varint, fixed64 or length-delimited payload.
    struct Field {
        var number: UInt32
        var wireType: UInt8
        var value: UInt64 = 0
        var bytes: [UInt8] = []

        var fields: [Field] { get throws { try PerfettoTraceWriterTests.decode(bytes) } }
        var string: String { String(decoding: bytes, as: UTF8.self) }
    }

    struct Malformed: Error {}

    static func varint(_ bytes: [UInt8], _ offset: inout Int) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count, shift < 64 else { throw Malformed() }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    static func decode(_ bytes: [UInt8]) throws -> [Field] {
        var fields: [Field] = []
        var offset = 0
        while offset < bytes.count {
            let key = try varint(bytes, &offset)
            var field = Field(number: UInt32(key >> 3), wireType: UInt8(key & 7))
            switch field.wireType {
            case 0: field.value = try varint(bytes, &offset)
            case 1:
                guard offset + 8 <= bytes.count else { throw Malformed() }
                for index in 0..<8 { field.value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
                offset += 8
            case 2:
                let length = Int(try varint(bytes, &offset))
                guard offset + length <= bytes.count else { throw Malformed() }
                field.bytes = Array(bytes[offset..<(offset + length)])
                offset += length
            default: throw Malformed()
            }
            fields.append(field)
        }
        return fields
    }

    /// The packets of a trace written by `body`, and the chunks handed to the output.
    private func packets(
        flushThreshold: Int = 1 << 20, _ body: (PerfettoTraceWriter) throws -> Void
    ) throws -> (packets: [[Field]], chunks: [[UInt8]]) {
        var chunks: [[UInt8]] = []
        let writer = PerfettoTraceWriter(sequenceID: 7, flushThreshold: flushThreshold) { chunks.append(Array($0)) }
        try body(writer)
        try writer.flush()
        let trace = try Self.decode(chunks.flatMap { $0 })
        #expect(trace.allSatisfy { $0.number == 1 && $0.wireType == 2 }, "a Trace holds only packets (field 1)")
        return (try trace.map { try $0.fields }, chunks)
    }

    /// The packets carrying a track event, with the event's fields.
    private func events(_ packets: [[Field]]) throws -> [(packet: [Field], event: [Field])] {
        try packets.compactMap { packet in try packet.first { $0.number == 11 }.map { (packet, try $0.fields) } }
    }

    // MARK: - Wire format

    @Test func varintsUseSevenBitsPerByteLeastSignificantFirst() {
        func encoded(_ value: UInt64) -> [UInt8] {
            var buffer = ProtoBuffer()
            buffer.varint(value)
            return Array(buffer.bytes)
        }
        #expect(encoded(0) == [0])
        #expect(encoded(127) == [0x7F])
        #expect(encoded(128) == [0x80, 0x01])
        #expect(encoded(300) == [0xAC, 0x02])
        #expect(encoded(UInt64.max) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        var buffer = ProtoBuffer()
        buffer.int(4, -1)
        #expect(Array(buffer.bytes) == [0x20] + [UInt8](repeating: 0xFF, count: 9) + [0x01], "int64 -1 is ten bytes")
        buffer = ProtoBuffer()
        buffer.double(5, 1.5)
        #expect(Array(buffer.bytes) == [0x29, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F], "doubles are fixed64, little-endian")
    }

    @Test(arguments: [0, 1, 127, 128, 300, 16_383, 16_384, 70_000])
    func nestedMessagesOfAnyLengthDecode(length: Int) throws {
        var buffer = ProtoBuffer()
        buffer.uint(1, 42)
        let start = buffer.beginMessage(2)
        (0..<length).map { UInt8(truncatingIfNeeded: $0) }.withUnsafeBytes { buffer.append($0) }
        buffer.endMessage(start)
        buffer.uint(3, 7)
        let fields = try Self.decode(Array(buffer.bytes))
        #expect(fields.map(\.number) == [1, 2, 3])
        #expect(fields[1].bytes == (0..<length).map { UInt8(truncatingIfNeeded: $0) })
        #expect(fields[2].value == 7)
    }

    // MARK: - Sequence

    @Test func theSequenceStartsWithClearedStateTheDefaultClockAndItsSnapshot() throws {
        let (packets, _) = try packets { _ in }
        #expect(packets.count == 2)
        let first = packets[0]
        #expect(first.first { $0.number == 10 }?.value == 7, "trusted_packet_sequence_id")
        #expect(first.first { $0.number == 13 }?.value == 1, "SEQ_INCREMENTAL_STATE_CLEARED")
        #expect(first.first { $0.number == 87 }?.value == 1, "first_packet_on_sequence")
        let defaults = try #require(first.first { $0.number == 59 })
        #expect(try defaults.fields.first { $0.number == 58 }?.value == 65, "timestamp_clock_id")
        let snapshot = try #require(packets[1].first { $0.number == 6 })
        let clocks = try snapshot.fields.filter { $0.number == 1 }.map { try $0.fields }
        #expect(clocks.map { $0.first { $0.number == 1 }?.value } == [64, 65, 66, 67, 68, 69, 70, 71, 72, 6])
        #expect(clocks.dropLast().allSatisfy { $0.first { $0.number == 4 }?.value == 1000 }, "unit_multiplier_ns")
        #expect(clocks[0].first { $0.number == 3 } == nil, "64 is absolute")
        #expect(clocks[1..<9].allSatisfy { $0.first { $0.number == 3 }?.value == 1 }, "65-72 are incremental")
        #expect(clocks.allSatisfy { $0.first { $0.number == 2 }?.value == 0 }, "all start at zero")
        #expect(packets[1].first { $0.number == 13 }?.value == 2, "SEQ_NEEDS_INCREMENTAL_STATE")
    }

    @Test func tracksAreDescribedWithTheirProcessThreadAndCounterFields() throws {
        let (packets, _) = try packets { writer in
            try writer.process(uuid: 1, pid: 3, name: "block 0", sortIndex: 3)
            try writer.thread(uuid: 2, parent: 1, pid: 3, tid: 4, name: "lane 1", order: 4)
            try writer.counterTrack(uuid: 3, parent: 1, name: "RSS", unit: .bytes)
            try writer.counterTrack(uuid: 4, parent: 1, name: "CPU", unit: .named("cores"))
            try writer.track(uuid: 5, parent: nil, name: "markers")
        }
        let tracks = try packets.dropFirst(2).map { try #require($0.first { $0.number == 60 }).fields }
        #expect(tracks.map { $0.first { $0.number == 1 }?.value } == [1, 2, 3, 4, 5], "uuid")
        let process = try #require(tracks[0].first { $0.number == 3 }).fields
        #expect(process.first { $0.number == 1 }?.value == 3, "pid")
        #expect(process.first { $0.number == 6 }?.string == "block 0", "process_name")
        #expect(tracks[0].first { $0.number == 11 }?.value == 3, "child_ordering EXPLICIT")
        let thread = try #require(tracks[1].first { $0.number == 4 }).fields
        #expect(thread.map(\.number) == [1, 2, 5])
        #expect(thread.map(\.value).prefix(2) == [3, 4], "pid, tid")
        #expect(thread.last?.string == "lane 1")
        #expect(tracks[1].first { $0.number == 5 }?.value == 1, "parent_uuid")
        #expect(tracks[1].first { $0.number == 12 }?.value == 4, "sibling_order_rank")
        #expect(try tracks[2].first { $0.number == 8 }?.fields.first { $0.number == 3 }?.value == 3, "UNIT_SIZE_BYTES")
        #expect(try tracks[3].first { $0.number == 8 }?.fields.first { $0.number == 6 }?.string == "cores")
        #expect(tracks[4].first { $0.number == 2 }?.string == "markers")
        #expect(tracks[4].first { $0.number == 5 } == nil, "no parent")
    }

    /// Each packet's time: deltas on the incremental clocks 65–72 (65 by default), absolute on clock 64.
    static func times(_ packets: [[Field]]) -> [UInt64?] {
        var clocks: [UInt64: UInt64] = [:]
        return packets.map { packet in
            guard let delta = packet.first(where: { $0.number == 8 })?.value else { return nil }
            let clock = packet.first { $0.number == 58 }?.value ?? 65
            if clock == 64 { return delta }
            clocks[clock, default: 0] += delta
            return clocks[clock]
        }
    }

    @Test func timestampsInAnyOrderAreDeltasOnTheLatestClockNotPastThem() throws {
        let written: [UInt64] = [100, 900, 150, 160, 950, 155, 2_000, 80, 70, 60, 50, 40, 30, 1_000_000]
        let (packets, _) = try packets { writer in
            for time in written { try writer.endSlice(track: 1, timestamp: time) }
        }
        let events = packets.dropFirst(2).map { $0 }
        #expect(Self.times(events).compactMap { $0 } == written)
        let deltas = events.map { $0.first { $0.number == 8 }?.value ?? 0 }
        let clocks = events.map { $0.first { $0.number == 58 }?.value ?? 65 }
        #expect(deltas.prefix(5) == [100, 800, 150, 10, 50], "150 opens a second clock; 950 follows 900")
        #expect(clocks.prefix(5) == [65, 65, 66, 66, 65])
        #expect(clocks[12] == 64 && deltas[12] == 30, "a time before every clock's is absolute")
        #expect(clocks[13] == 65 && deltas[13] == 998_000)
    }

    // MARK: - Events and interning

    @Test func namesAndCategoriesAreInternedInThePacketThatFirstUsesThem() throws {
        let (packets, _) = try packets { writer in
            let name = writer.string("square")
            let category = writer.string("try")
            try writer.beginSlice(track: 9, timestamp: 1_000, name: name, category: category)
            try writer.endSlice(track: 9, timestamp: 1_500)
            try writer.instant(track: 9, timestamp: 1_200, name: name, category: name)
        }
        let events = try events(packets)
        #expect(events.count == 3)
        let (begin, beginEvent) = events[0]
        #expect(begin.first { $0.number == 8 }?.value == 1_000, "timestamp, in the sequence's clock")
        #expect(begin.first { $0.number == 13 }?.value == 2, "SEQ_NEEDS_INCREMENTAL_STATE")
        #expect(beginEvent.first { $0.number == 9 }?.value == 1, "TYPE_SLICE_BEGIN")
        #expect(beginEvent.first { $0.number == 11 }?.value == 9, "track_uuid")
        #expect(beginEvent.first { $0.number == 10 }?.value == 1, "name_iid")
        #expect(beginEvent.first { $0.number == 3 }?.value == 1, "category_iids")
        let interned = try #require(begin.first { $0.number == 12 }).fields
        let names = try interned.filter { $0.number == 2 }.map { try $0.fields }
        let categories = try interned.filter { $0.number == 1 }.map { try $0.fields }
        #expect(names.map { [$0[0].value] + [UInt64($0[1].string.count)] } == [[1, 6]])
        #expect(names.first?.last?.string == "square")
        #expect(categories.first?.last?.string == "try")

        let (end, endEvent) = events[1]
        #expect(endEvent.first { $0.number == 9 }?.value == 2, "TYPE_SLICE_END")
        #expect(endEvent.first { $0.number == 10 } == nil, "an end names nothing")
        #expect(end.first { $0.number == 12 } == nil, "nothing new to intern")

        // The same string as a category for the first time: interned in that table only.
        let (instant, instantEvent) = events[2]
        #expect(instantEvent.first { $0.number == 9 }?.value == 3, "TYPE_INSTANT")
        #expect(instantEvent.first { $0.number == 10 }?.value == 1)
        #expect(instantEvent.first { $0.number == 3 }?.value == 2)
        let more = try #require(instant.first { $0.number == 12 }).fields
        #expect(more.map(\.number) == [1])
        #expect(try more[0].fields.last?.string == "square")
    }

    @Test func debugAnnotationsCarryInternedNamesAndTypedValues() throws {
        let invalid: [UInt8] = [0x61, 0xFF, 0x62]
        let (packets, _) = try packets { writer in
            let name = writer.string("n")
            let state = writer.string("exec_done")
            for _ in 0..<2 {
                try writer.instant(track: 1, timestamp: 5, name: name, category: name) { args in
                    args.int("task", -3)
                    args.double("cpu", 0.25)
                    args.bool("open", true)
                    args.string("final_state", state)
                    "vm-host".utf8CString.dropLast().map { UInt8(bitPattern: $0) }.withUnsafeBufferPointer {
                        args.string("host", utf8: $0)
                    }
                    invalid.withUnsafeBufferPointer { args.string("reason", utf8: $0) }
                    args.string("plain", "text")
                }
            }
        }
        let events = try events(packets)
        #expect(events.count == 2)
        var annotationNames: [UInt64: String] = [:]
        var strings: [UInt64: String] = [:]
        for (index, (packet, event)) in events.enumerated() {
            for table in try packet.first(where: { $0.number == 12 })?.fields ?? [] {
                let entry = try table.fields
                if table.number == 3 { annotationNames[entry[0].value] = entry[1].string }
                if table.number == 29 { strings[entry[0].value] = entry[1].string }
            }
            let annotations = try event.filter { $0.number == 4 }.map { try $0.fields }
            var decoded: [String: String] = [:]
            for annotation in annotations {
                let nameIID = try #require(annotation.first { $0.number == 1 }).value
                let key = try #require(annotationNames[nameIID])
                let value = try #require(annotation.first { $0.number != 1 })
                decoded[key] =
                    switch value.number {
                    case 4: "int \(Int64(bitPattern: value.value))"
                    case 5: "double \(Double(bitPattern: value.value))"
                    case 2: "bool \(value.value)"
                    case 6: "string \(value.string)"
                    case 17: "iid \(strings[value.value] ?? "unresolved")"
                    default: "field \(value.number)"
                    }
            }
            #expect(
                decoded == [
                    "task": "int -3", "cpu": "double 0.25", "open": "bool 1", "final_state": "iid exec_done",
                    "host": "iid vm-host", "plain": "string text",
                    // Repaired, the value no longer matches the bytes it was interned by: written out after.
                    "reason": index == 0 ? "iid a\u{FFFD}b" : "string a\u{FFFD}b",
                ])
        }
        #expect(try events[1].packet.first { $0.number == 12 } == nil, "the second event interns nothing new")
    }

    @Test func countersAreVarintsOrDoublesAndFlowsAreIDsOnTheirSlices() throws {
        let (packets, _) = try packets { writer in
            let name = writer.string("task")
            try writer.counter(track: 3, timestamp: 10, value: Int64(123_456_789))
            try writer.counter(track: 3, timestamp: 11, value: 0.125)
            try writer.beginSlice(track: 4, timestamp: 12, name: name, category: name, flows: [77, 1 << 40])
            try writer.endSlice(track: 4, timestamp: 13)
            try writer.beginSlice(track: 5, timestamp: 14, name: name, category: name)
            try writer.endSlice(track: 5, timestamp: 15, terminatingFlows: [77, 1 << 40])
        }
        let events = try events(packets).map(\.event)
        #expect(events[0].first { $0.number == 9 }?.value == 4, "TYPE_COUNTER")
        #expect(events[0].first { $0.number == 30 }?.value == 123_456_789, "counter_value")
        #expect(events[1].first { $0.number == 44 }.map { Double(bitPattern: $0.value) } == 0.125)
        // flow_ids (47) on the begin, terminating_flow_ids (48) on the end: repeated fixed64, one field per id.
        #expect(events[2].filter { $0.number == 47 }.map(\.value) == [77, 1 << 40])
        #expect(events[2].filter { $0.number == 47 }.allSatisfy { $0.wireType == 1 })
        #expect(events[5].filter { $0.number == 48 }.map(\.value) == [77, 1 << 40])
        #expect(events[3].allSatisfy { $0.number != 47 && $0.number != 48 })
        #expect(events.allSatisfy { event in !event.contains { $0.number == 6 } }, "no legacy event")
    }

    @Test func chunksHoldWholePacketsSoSequencesMayShareAnOutput() throws {
        let (packets, chunks) = try packets(flushThreshold: 1024) { writer in
            let name = writer.string("t")
            for index in 0..<2_000 {
                try writer.beginSlice(track: 1, timestamp: UInt64(index) * 10, name: name, category: name) {
                    $0.int("task", Int64(index))
                }
                try writer.endSlice(track: 1, timestamp: UInt64(index) * 10 + 5)
            }
            #expect(writer.eventCount == 4_000)
        }
        #expect(chunks.count > 10)
        for chunk in chunks { #expect(throws: Never.self) { try Self.decode(chunk) } }
        #expect(packets.count == 4_002)
    }
}
