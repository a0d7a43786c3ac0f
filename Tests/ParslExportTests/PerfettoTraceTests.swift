import Foundation
import Testing

@testable import ParslExport

/// The protobuf trace of small real databases: its packet structure against a golden file, the same slices as the
/// JSON trace of the same export, and slices that Perfetto reads as written. The packets are decoded here by hand
/// (field numbers from perfetto's protos/perfetto/trace/). Regenerate the golden file with
/// PARSL_EXPORT_UPDATE_GOLDEN=1 after an intended change.
@Suite("Perfetto trace")
struct PerfettoTraceTests {
    static let golden: String = {
        var path = #filePath
        for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fixtures/golden/trace-parsl-2026.10.26-htex.pftrace.txt"
    }()

    // MARK: - Wire format

    struct Field {
        var number: UInt32
        var value: UInt64 = 0
        var bytes: [UInt8] = []

        var fields: [Field] { get throws { try PerfettoTraceTests.decode(bytes) } }
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    struct Malformed: Error {}

    static func decode(_ bytes: [UInt8]) throws -> [Field] {
        var fields: [Field] = []
        var offset = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard offset < bytes.count, shift < 64 else { throw Malformed() }
                value |= UInt64(bytes[offset] & 0x7F) << shift
                offset += 1
                if bytes[offset - 1] & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while offset < bytes.count {
            let key = try varint()
            var field = Field(number: UInt32(key >> 3))
            switch key & 7 {
            case 0: field.value = try varint()
            case 1:
                guard offset + 8 <= bytes.count else { throw Malformed() }
                for index in 0..<8 { field.value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
                offset += 8
            case 2:
                let length = Int(try varint())
                guard offset + length <= bytes.count else { throw Malformed() }
                field.bytes = Array(bytes[offset..<(offset + length)])
                offset += length
            default: throw Malformed()
            }
            fields.append(field)
        }
        return fields
    }

    // MARK: - Reading a trace

    /// A track event with its names resolved.
    struct Event {
        var sequence: UInt64
        var timestamp: UInt64
        var type: UInt64
        var track: UInt64
        var name: String?
        var category: String?
        var annotations: [(String, String)]
        /// The flow arrows that leave (flow_ids) and reach (terminating_flow_ids) the event's slice.
        var flowsOut: [UInt64] = []
        var flowsIn: [UInt64] = []
    }

    struct Trace {
        var tracks: [UInt64: String] = [:]
        var parents: [UInt64: UInt64] = [:]
        var threads: [UInt64: [Int]] = [:]  // uuid → [pid, tid]
        var events: [Event] = []
        var sequences: [UInt64: [String]] = [:]  // what each sequence's first two packets set up
        var interned: [UInt64: [UInt32: Int]] = [:]  // sequence → InternedData field → entries
        var unresolved = 0
    }

    static func read(_ bytes: [UInt8]) throws -> Trace {
        var trace = Trace()
        var tables: [UInt64: [UInt32: [UInt64: String]]] = [:]
        var clocks: [UInt64: [UInt64: UInt64]] = [:]  // sequence → incremental clock → its time
        for packetField in try decode(bytes) {
            #expect(packetField.number == 1)
            let packet = try packetField.fields
            let sequence = try #require(packet.first { $0.number == 10 }).value
            if let interned = packet.first(where: { $0.number == 12 }) {
                for entry in try interned.fields {
                    let pair = try entry.fields
                    tables[sequence, default: [:]][entry.number, default: [:]][pair[0].value] = pair[1].text
                    trace.interned[sequence, default: [:]][entry.number, default: 0] += 1
                }
            }
            if trace.sequences[sequence, default: []].count < 2 {
                trace.sequences[sequence, default: []].append(
                    packet.filter { $0.number != 10 }.map { "\($0.number)" + ($0.bytes.isEmpty ? "=\($0.value)" : "{}") }
                        .joined(separator: " "))
            }
            if let descriptor = packet.first(where: { $0.number == 60 }) {
                let fields = try descriptor.fields
                let uuid = try #require(fields.first { $0.number == 1 }).value
                if let parent = fields.first(where: { $0.number == 5 }) { trace.parents[uuid] = parent.value }
                func text(_ fields: [Field], _ number: UInt32) -> String {
                    fields.first(where: { $0.number == number }).map(\.text) ?? ""
                }
                if let process = try fields.first(where: { $0.number == 3 })?.fields {
                    let pid = process.first(where: { $0.number == 1 })?.value ?? 0
                    trace.tracks[uuid] = "process \(pid) " + text(process, 6)
                } else if let thread = try fields.first(where: { $0.number == 4 })?.fields {
                    trace.threads[uuid] = thread.filter { $0.number <= 2 }.map { Int($0.value) }
                    trace.tracks[uuid] = "thread " + text(thread, 5)
                } else if let counter = try fields.first(where: { $0.number == 8 })?.fields {
                    let unit = counter.first(where: { $0.number == 3 }).map { "\($0.value)" } ?? text(counter, 6)
                    trace.tracks[uuid] = "counter " + text(fields, 2) + " (unit " + unit + ")"
                } else {
                    trace.tracks[uuid] = "track " + text(fields, 2)
                }
            }
            // Deltas on the incremental clocks (65 by default), absolute times on clock 64.
            var time: UInt64?
            if let delta = packet.first(where: { $0.number == 8 })?.value {
                let clock = packet.first { $0.number == 58 }?.value ?? 65
                if clock == 64 {
                    time = delta
                } else {
                    clocks[sequence, default: [:]][clock, default: 0] += delta
                    time = clocks[sequence]?[clock]
                }
            }
            guard let eventField = packet.first(where: { $0.number == 11 }) else { continue }
            let fields = try eventField.fields
            func lookup(_ table: UInt32, _ iid: UInt64?) -> String? {
                guard let iid else { return nil }
                if let text = tables[sequence]?[table]?[iid] { return text }
                trace.unresolved += 1
                return nil
            }
            var annotations: [(String, String)] = []
            for annotation in try fields.filter({ $0.number == 4 }).map({ try $0.fields }) {
                let key = lookup(3, annotation.first { $0.number == 1 }?.value) ?? "?"
                let value = try #require(annotation.first { $0.number != 1 })
                let text =
                    switch value.number {
                    case 4: "\(Int64(bitPattern: value.value))"
                    case 5: "\(Double(bitPattern: value.value))"
                    case 2: value.value == 1 ? "true" : "false"
                    case 6: value.text
                    case 17: lookup(29, value.value) ?? "?"
                    default: "field \(value.number)"
                    }
                annotations.append((key, text))
            }
            trace.events.append(
                Event(
                    sequence: sequence,
                    timestamp: try #require(time),
                    type: fields.first { $0.number == 9 }?.value ?? 0,
                    track: try #require(fields.first { $0.number == 11 }).value,
                    name: lookup(2, fields.first { $0.number == 10 }?.value),
                    category: lookup(1, fields.first { $0.number == 3 }?.value),
                    annotations: annotations,
                    flowsOut: fields.filter { $0.number == 47 }.map(\.value),
                    flowsIn: fields.filter { $0.number == 48 }.map(\.value)))
        }
        return trace
    }

    private func export(_ database: String, _ format: TraceFormat) throws -> [UInt8] {
        let path = temporaryDirectory() + "/trace." + format.fileExtension
        let options = TraceSink.Options(output: path, outputIsDirectory: false, format: format)
        let request = ExportRequest(databasePath: database, latestRun: true, tables: [])
        _ = try ExportPipeline(request: request).run(into: TraceSink(options: options))
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Slices as written: each begin with the next end on its track, in writing order per sequence.
    private func slices(_ trace: Trace) -> [(track: UInt64, start: UInt64, end: UInt64, event: Event, endEvent: Event)] {
        var open: [UInt64: [Event]] = [:]
        var slices: [(UInt64, UInt64, UInt64, Event, Event)] = []
        for event in trace.events {
            if event.type == 1 { open[event.track, default: []].append(event) }
            if event.type == 2, let begin = open[event.track]?.popLast() {
                slices.append((event.track, begin.timestamp, event.timestamp, begin, event))
            }
        }
        return slices
    }

    // MARK: - Tests

    /// Tracks by name, events by track, type, category and name, what the sequences set up and intern, and one
    /// try slice with its annotations.
    private func structure(_ trace: Trace) -> String {
        var lines: [String] = []
        for (sequence, setup) in trace.sequences.sorted(by: { $0.key < $1.key }) {
            lines.append("sequence \(sequence): " + setup.joined(separator: " | "))
            let interned = (trace.interned[sequence] ?? [:]).sorted { $0.key < $1.key }
            lines.append("  interned " + interned.map { "field \($0.key): \($0.value)" }.joined(separator: ", "))
        }
        // Lanes, workers and their counters by kind: one line for all the lanes of a process.
        func path(_ uuid: UInt64) -> String {
            let name = (trace.tracks[uuid] ?? "undescribed").replacing(/(lane|worker) \d+/) { "\($0.1) N" }
            return trace.parents[uuid].map { path($0) + " / " + name } ?? name
        }
        var tracks: [String: Int] = [:]
        for uuid in trace.tracks.keys { tracks[path(uuid), default: 0] += 1 }
        for (name, count) in tracks.sorted(by: { $0.key < $1.key }) { lines.append("\(name): \(count)") }
        var counts: [String: Int] = [:]
        var flows: [String: Int] = [:]
        let types = [1: "B", 2: "E", 3: "I", 4: "C"]
        for event in trace.events {
            // Tries are named after apps, statuses after states: keep those.
            let key = "\(path(event.track)) | \(types[Int(event.type)] ?? "?") \(event.category ?? "") \(event.name ?? "")"
            counts[key, default: 0] += 1
            if !event.flowsOut.isEmpty { flows[key + " | flow_ids", default: 0] += event.flowsOut.count }
            if !event.flowsIn.isEmpty { flows[key + " | terminating_flow_ids", default: 0] += event.flowsIn.count }
        }
        for (key, count) in counts.sorted(by: { $0.key < $1.key }) { lines.append("  \(key): \(count)") }
        for (key, count) in flows.sorted(by: { $0.key < $1.key }) { lines.append("  \(key): \(count)") }
        let sample = trace.events.first {
            $0.category == "try" && $0.annotations.contains { $0 == ("task", "0") } && $0.annotations.contains { $0 == ("try", "0") }
        }
        lines.append(
            "try 0.0: "
                + (sample.map { event in
                    "ts \(event.timestamp) \(event.name ?? "") "
                        + event.annotations.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
                } ?? "missing"))
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func structureMatchesTheGoldenFile() throws {
        let trace = try Self.read(try export(Fixtures.htex2026, .perfetto))
        #expect(trace.unresolved == 0, "interned ids used before they were defined")
        let actual = structure(trace)
        if ProcessInfo.processInfo.environment["PARSL_EXPORT_UPDATE_GOLDEN"] != nil {
            try actual.write(toFile: Self.golden, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: Self.golden, encoding: .utf8)
        #expect(
            actual == expected,
            "differs from \(Self.golden); regenerate with PARSL_EXPORT_UPDATE_GOLDEN=1 if intended"
        )
    }

    /// Every slice of the JSON trace, with the same thread, times, name, category and args, and no other.
    @Test(arguments: [Fixtures.htex2026, Fixtures.threads2026])
    func sameSlicesAsTheJSONTrace(database: String) throws {
        let trace = try Self.read(try export(database, .perfetto))
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(try export(database, .json))) as? [String: Any])
        let events = try #require(json["traceEvents"] as? [[String: Any]])
        func describe(_ args: [(String, String)]) -> String {
            args.map { "\($0.0)=\($0.1)" }.sorted().joined(separator: ",")
        }
        var expected: [String] = []
        // A status instant that an arrow ends on is a zero-length slice in JSON, an instant in protobuf.
        for event in events where event["ph"] as? String == "X" && event["cat"] as? String != "status" {
            let args = (event["args"] as? [String: Any] ?? [:]).map { key, value in
                // JSON numbers (and booleans) read back as one type; the protobuf has int, double and bool.
                (key, (value as? Double).map { $0 == $0.rounded() ? "\(Int64($0))" : "\($0)" } ?? "\(value)")
            }
            let start = event["ts"] as? Int ?? -1
            expected.append(
                "\(event["pid"] as? Int ?? 0)/\(event["tid"] as? Int ?? 0) \(start) \(start + (event["dur"] as? Int ?? 0)) "
                    + "\(event["cat"] as? String ?? "") \(event["name"] as? String ?? "") \(describe(args))")
        }
        let actual = slices(trace).map { slice in
            let thread = trace.threads[slice.track] ?? []
            let args = slice.event.annotations.map { key, value in
                (key, ["true": "1", "false": "0"][value] ?? Double(value).map { $0 == $0.rounded() ? "\(Int64($0))" : "\($0)" } ?? value)
            }
            return "\(thread.first ?? 0)/\(thread.last ?? 0) \(slice.start) \(slice.end) "
                + "\(slice.event.category ?? "") \(slice.event.name ?? "") \(describe(args))"
        }
        #expect(expected.count > 100)
        #expect(actual.sorted() == expected.sorted())
    }

    /// Every dependency arrow of the JSON trace is one flow id, named by the begin of a slice that holds the arrow's
    /// start (on the same thread) and by the end of a later slice that holds its end: the JSON's flow events bind to
    /// the slices open where they are, the protobuf's ids name such slices directly.
    @Test(arguments: [Fixtures.htex2026, Fixtures.threads2026])
    func sameArrowsAsTheJSONTrace(database: String) throws {
        let trace = try Self.read(try export(database, .perfetto))
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(try export(database, .json))) as? [String: Any])
        let events = try #require(json["traceEvents"] as? [[String: Any]])
        typealias End = (thread: [Int], start: UInt64, end: UInt64)
        var outs: [UInt64: [End]] = [:]
        var ins: [UInt64: [End]] = [:]
        let all = slices(trace)
        for slice in all {
            let end: End = (trace.threads[slice.track] ?? [], slice.start, slice.end)
            for id in slice.event.flowsOut { outs[id, default: []].append(end) }
            for id in slice.endEvent.flowsIn { ins[id, default: []].append(end) }
            #expect(slice.event.flowsIn.isEmpty && slice.endEvent.flowsOut.isEmpty, "ids go out at begins, in at ends")
        }
        // An arrow that ends on a status instant: the JSON's ends in the try that holds the instant.
        for event in trace.events where event.type == 3 && !event.flowsIn.isEmpty {
            let holder = try #require(all.first { slice in
                slice.track == event.track && ["try", "try.not_run"].contains(slice.event.category)
                    && slice.start <= event.timestamp && event.timestamp <= slice.end
            })
            for id in event.flowsIn { ins[id, default: []].append((trace.threads[event.track] ?? [], holder.start, holder.end)) }
        }
        #expect(Set(outs.keys) == Set(ins.keys))
        #expect(outs.values.allSatisfy { $0.count == 1 } && ins.values.allSatisfy { $0.count == 1 }, "ids are unique")
        var arrows = outs.keys.compactMap { id in outs[id]?.first.flatMap { out in ins[id]?.first.map { (out, $0) } } }
        #expect(arrows.allSatisfy { $0.0.start <= $0.1.end }, "no arrow ends before it starts")
        var points: [String: (thread: [Int], time: UInt64)] = [:]
        var unmatched = 0
        var count = 0
        // Arrows bound by id (`bind_id`): from the slice with `flow_out` to each zero-length slice with `flow_in`.
        var producers: [String: (thread: [Int], time: UInt64)] = [:]
        var consumers: [(id: String, point: ([Int], UInt64))] = []
        for event in events {
            let point = ([event["pid"] as? Int ?? 0, event["tid"] as? Int ?? 0], UInt64(event["ts"] as? Int ?? 0))
            if let bound = event["bind_id"] {
                if event["flow_out"] as? Bool == true { producers["\(bound)"] = point }
                if event["flow_in"] as? Bool == true { consumers.append(("\(bound)", point)) }
            }
            guard ["s", "f"].contains(event["ph"] as? String) else { continue }
            let id = "\(event["id"] ?? "")"
            guard event["ph"] as? String == "f", let from = points.removeValue(forKey: id) else {
                points[id] = point
                continue
            }
            count += 1
            let match = arrows.firstIndex { out, into in
                out.thread == from.thread && out.start <= from.time && from.time <= out.end
                    && into.thread == point.0 && into.start <= point.1 && point.1 <= into.end
            }
            if let match { arrows.remove(at: match) } else { unmatched += 1 }
        }
        for (id, point) in consumers {
            guard let from = producers[id] else {
                unmatched += 1
                continue
            }
            count += 1
            let match = arrows.firstIndex { out, into in
                out.thread == from.thread && out.start == from.time
                    && into.thread == point.0 && into.start <= point.1 && point.1 <= into.end
            }
            if let match { arrows.remove(at: match) } else { unmatched += 1 }
        }
        #expect(count > 0 || database == Fixtures.threads2026)
        #expect(unmatched == 0)
        #expect(arrows.isEmpty, "arrows the JSON trace does not have")
    }

    /// Perfetto points an arrow from the earlier-starting of the two slices it binds (its FlowTracker), whatever
    /// the ids say. In the HTEX run three dep_fail tries were waiting before their dependency ended, two of them
    /// from before its last try began: their arrows end on their `dep_fail` instants, not on their slices.
    @Test func arrowsReachASliceThatStartsNoEarlierThanTheOneTheyLeave() throws {
        let trace = try Self.read(try export(Fixtures.htex2026, .perfetto))
        var leaves: [UInt64: UInt64] = [:]
        var reaches: [UInt64: UInt64] = [:]
        for slice in slices(trace) {
            for id in slice.event.flowsOut { leaves[id] = slice.start }
            for id in slice.endEvent.flowsIn { reaches[id] = slice.start }
        }
        var onInstants: [String] = []
        for event in trace.events where event.type == 3 && !event.flowsIn.isEmpty {
            for id in event.flowsIn { reaches[id] = event.timestamp }
            onInstants.append(event.name ?? "")
        }
        #expect(leaves.count == 34 && Set(leaves.keys) == Set(reaches.keys))
        let backwards = leaves.filter { id, start in reaches[id].map { $0 < start } ?? true }
        #expect(backwards.isEmpty, "arrows Perfetto would draw backwards: \(backwards.keys.sorted())")
        #expect(onInstants == ["dep_fail", "dep_fail", "dep_fail"])
    }

    /// Perfetto sorts events by time (keeping the writing order among equal times) and pairs begins and ends on a
    /// track as a stack: what it reads must be what was written, or two slices overlapped.
    @Test(arguments: [Fixtures.htex2026, Fixtures.threads2026])
    func slicesReadAsWritten(database: String) throws {
        let trace = try Self.read(try export(database, .perfetto))
        let written = Set(slices(trace).map { "\($0.track) \($0.start) \($0.end)" })
        var read = Set<String>()
        var stacks: [UInt64: [UInt64]] = [:]
        let ordered = trace.events.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }
        for (_, event) in ordered {
            if event.type == 1 { stacks[event.track, default: []].append(event.timestamp) }
            if event.type == 2, let start = stacks[event.track]?.popLast() {
                read.insert("\(event.track) \(start) \(event.timestamp)")
            }
        }
        #expect(written.count > 100)
        #expect(read == written)
        #expect(stacks.values.allSatisfy { $0.isEmpty })
    }

    /// The file name picks the format unless --format says; a contradiction is a usage error; a directory gets
    /// JSON unless --format perfetto; --max-events holds for protobuf only when given.
    @Test func theCommandLinePicksTheFormat() throws {
        let directory = temporaryDirectory()
        func trace(_ arguments: [String]) throws -> Binary.Result {
            try Binary.run(["trace", Fixtures.htex2026, "--latest", "--quiet"] + arguments)
        }
        func head(_ path: String) throws -> [UInt8] { Array(try readFile(path).prefix(2)) }

        #expect(try trace(["-o", directory + "/a.pftrace"]).status == 0)
        #expect(try head(directory + "/a.pftrace").first == 0x0A, "a Trace starts with a packet (field 1, bytes)")
        #expect(try trace(["-o", directory + "/b.json"]).status == 0)
        #expect(try head(directory + "/b.json") == Array("{\"".utf8))
        #expect(try trace(["-o", directory + "/c.pftrace.gz"]).status == 0)
        #expect(try head(directory + "/c.pftrace.gz") == [0x1F, 0x8B])

        let contradiction = try trace(["-o", directory + "/d.json", "--format", "perfetto"])
        #expect(contradiction.status == 64)
        #expect(contradiction.stderr.contains("--format perfetto does not match"), "\(contradiction.stderr)")

        #expect(try trace(["-o", directory + "/json/"]).status == 0)
        #expect(try trace(["-o", directory + "/protobuf/", "--format", "perfetto"]).status == 0)
        let run = "1e437788-0aa0-4ea1-b699-5597f67ef52f"
        #expect(try head(directory + "/json/trace-\(run).json.gz") == [0x1F, 0x8B])
        #expect(try head(directory + "/protobuf/trace-\(run).pftrace.gz") == [0x1F, 0x8B])

        let limited = try trace(["-o", directory + "/e.pftrace", "--max-events", "100"])
        #expect(limited.status == 69)
        #expect(access(directory + "/e.pftrace", F_OK) != 0, "no file left behind")
    }
}
