import Foundation
import Testing

@testable import TraceEventFormat

struct TraceEventWriterTests {
    /// Runs `body` against a writer collecting into memory; returns the bytes and how many chunks were flushed.
    private func write(
        flushThreshold: Int = 1 << 18,
        _ body: (TraceEventWriter) throws -> Void
    ) throws -> (bytes: [UInt8], chunks: Int) {
        var bytes: [UInt8] = []
        var chunks = 0
        let writer = TraceEventWriter(flushThreshold: flushThreshold) { chunk in
            bytes.append(contentsOf: chunk)
            chunks += 1
        }
        try body(writer)
        return (bytes, chunks)
    }

    private func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    private func events(_ bytes: [UInt8]) throws -> [[String: Any]] {
        try #require(try object(bytes)["traceEvents"] as? [[String: Any]])
    }

    // MARK: - Container

    @Test func emptyTraceIsTheObjectForm() throws {
        let (bytes, _) = try write { try $0.finish(otherData: ["run_id": "r1", "events": 0]) }
        let root = try object(bytes)
        #expect((root["traceEvents"] as? [Any])?.isEmpty == true)
        #expect(root["displayTimeUnit"] as? String == "ms")
        let other = try #require(root["otherData"] as? [String: Any])
        #expect(other["run_id"] as? String == "r1")
        #expect(other["events"] as? Int == 0)
        #expect(String(decoding: bytes.prefix(16), as: UTF8.self) == #"{"traceEvents":["#)
    }

    @Test func nothingIsWrittenUntilFlushOrFinish() throws {
        var flushed = 0
        let writer = TraceEventWriter { flushed += $0.count }
        try writer.instant(name: "a", category: "c", timestamp: 1, pid: 1, tid: 1)
        #expect(flushed == 0)
        try writer.finish()
        #expect(flushed > 0)
        #expect(writer.bytesFlushed == flushed)
    }

    @Test func smallThresholdFlushesManyChunksThatConcatenateToValidJSON() throws {
        let (bytes, chunks) = try write(flushThreshold: 1024) { writer in
            for index in 0..<1000 {
                try writer.complete(
                    name: "task \(index)",
                    category: "try",
                    timestamp: Int64(index) * 10,
                    duration: 5,
                    pid: 1,
                    tid: 1 + index % 3
                )
            }
            try writer.finish()
            #expect(writer.eventCount == 1000)
        }
        #expect(chunks > 10)
        #expect(try events(bytes).count == 1000)
    }

    @Test func anEventLargerThanTheBufferIsWrittenWhole() throws {
        let long = String(repeating: "x\"", count: 100_000)
        let (bytes, _) = try write(flushThreshold: 1024) { writer in
            try writer.instant(name: long, category: "c", timestamp: 0, pid: 1, tid: 1)
            try writer.finish()
        }
        #expect(try events(bytes).first?["name"] as? String == long)
    }

    // MARK: - Events

    @Test func completeEventCarriesEveryField() throws {
        let (bytes, _) = try write { writer in
            try writer.complete(
                name: "sleep_task",
                category: "try",
                timestamp: 1_700_000_000_000_000,
                duration: 1234,
                pid: 3,
                tid: 7,
                color: .terrible,
                flow: TraceFlowBinding(id: 9, outgoing: true, incoming: false),
                args: ["task": 12, "app": "sleep_task", "ok": false, "rate": 0.5, "reason": nil]
            )
            try writer.finish()
        }
        let event = try #require(try events(bytes).first)
        #expect(event["ph"] as? String == "X")
        #expect(event["name"] as? String == "sleep_task")
        #expect(event["cat"] as? String == "try")
        #expect((event["ts"] as? NSNumber)?.int64Value == 1_700_000_000_000_000)
        #expect(event["dur"] as? Int == 1234)
        #expect(event["pid"] as? Int == 3)
        #expect(event["tid"] as? Int == 7)
        #expect(event["cname"] as? String == "terrible")
        #expect(event["bind_id"] as? Int == 9)
        #expect(event["flow_out"] as? Bool == true)
        #expect(event["flow_in"] == nil)
        let args = try #require(event["args"] as? [String: Any])
        #expect(args["task"] as? Int == 12)
        #expect(args["ok"] as? Bool == false)
        #expect(args["rate"] as? Double == 0.5)
        #expect(args["reason"] is NSNull)
    }

    @Test func argsKeepTheirOrder() throws {
        var args = TraceArgs()
        for key in ["z", "a", "m", "b"] { args.append(key, .int(1)) }
        let (bytes, _) = try write { writer in
            try writer.instant(name: "i", category: "c", timestamp: 0, pid: 1, tid: 1, args: args)
            try writer.finish()
        }
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#""args":{"z":1,"a":1,"m":1,"b":1}"#))
    }

    @Test func reusedArgsDoNotLeakIntoTheNextEvent() throws {
        var args = TraceArgs(minimumCapacity: 4)
        let (bytes, _) = try write { writer in
            args.append("first", "yes")
            try writer.instant(name: "a", category: "c", timestamp: 0, pid: 1, tid: 1, args: args)
            args.removeAll()
            args.append("second", "yes")
            try writer.instant(name: "b", category: "c", timestamp: 1, pid: 1, tid: 1, args: args)
            try writer.finish()
        }
        let second = try #require(try events(bytes).last?["args"] as? [String: Any])
        #expect(Array(second.keys) == ["second"])
    }

    @Test func instantScopes() throws {
        let (bytes, _) = try write { writer in
            try writer.instant(name: "t", category: "c", timestamp: 0, pid: 1, tid: 2)
            try writer.instant(name: "p", category: "c", timestamp: 0, pid: 1, tid: 2, scope: .process)
            try writer.instant(name: "g", category: "c", timestamp: 0, pid: 1, tid: 2, scope: .global)
            try writer.finish()
        }
        #expect(try events(bytes).map { $0["s"] as? String } == ["t", "p", "g"])
        #expect(try events(bytes).allSatisfy { $0["ph"] as? String == "i" })
    }

    @Test func counterSeries() throws {
        let (bytes, _) = try write { writer in
            try writer.counter(name: "memory", category: "resource", timestamp: 5, pid: 2, values: ["rss": 1.5e9])
            try writer.counter(name: "cpu", category: "resource", timestamp: 6, pid: 2, series: "rate", value: 0.25)
            try writer.counter(name: "n", category: "c", timestamp: 7, pid: 2, id: 4, values: ["a": 1, "b": 2])
            try writer.finish()
        }
        let all = try events(bytes)
        #expect(all.allSatisfy { $0["ph"] as? String == "C" && $0["tid"] == nil })
        #expect((all[0]["args"] as? [String: Any])?["rss"] as? Double == 1.5e9)
        #expect((all[1]["args"] as? [String: Any])?["rate"] as? Double == 0.25)
        #expect(all[2]["id"] as? Int == 4)
    }

    @Test func flowEventsPairUpAndTheEndBindsToTheEnclosingSlice() throws {
        let (bytes, _) = try write { writer in
            try writer.flowStart(id: 42, name: "dep", category: "flow", timestamp: 10, pid: 1, tid: 2)
            try writer.flowEnd(id: 42, name: "dep", category: "flow", timestamp: 20, pid: 3, tid: 4)
            try writer.finish()
        }
        let all = try events(bytes)
        #expect(all.map { $0["ph"] as? String } == ["s", "f"])
        #expect(all.map { $0["id"] as? Int } == [42, 42])
        #expect(all[0]["bp"] == nil)
        #expect(all[1]["bp"] as? String == "e")
    }

    @Test func metadataEvents() throws {
        let (bytes, _) = try write { writer in
            try writer.processName(pid: 1, "htex \"block\" 0")
            try writer.processSortIndex(pid: 1, -3)
            try writer.threadName(pid: 1, tid: 5, "worker 1234")
            try writer.threadSortIndex(pid: 1, tid: 5, 2)
            try writer.finish()
        }
        let all = try events(bytes)
        #expect(all.allSatisfy { $0["ph"] as? String == "M" && $0["ts"] == nil })
        #expect(
            all.map { $0["name"] as? String } == [
                "process_name", "process_sort_index", "thread_name", "thread_sort_index",
            ]
        )
        #expect((all[0]["args"] as? [String: Any])?["name"] as? String == "htex \"block\" 0")
        #expect((all[1]["args"] as? [String: Any])?["sort_index"] as? Int == -3)
        #expect(all[0]["tid"] == nil)
        #expect(all[2]["tid"] as? Int == 5)
    }

    // MARK: - Numbers

    @Test(arguments: [Int64.min, -1, 0, 9, 10, 99, 100, 1_000_000_007, Int64.max])
    func integersAreExact(value: Int64) throws {
        let (bytes, _) = try write { writer in
            try writer.instant(name: "i", category: "c", timestamp: value, pid: 1, tid: 1)
            try writer.finish()
        }
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"ts\":\(value),"))
    }

    @Test(arguments: [
        (0.1, "0.1"), (-2.5, "-2.5"), (3.0, "3"), (1e300, "1e+300"), (-0.0, "0"), (Double.nan, "null"),
        (Double.infinity, "null"), (0.12345678901234567, "0.12345678901234566"),
        (9_007_199_254_740_993.0, "9007199254740992.0"),
        (1e16, "1e+16"),
    ])
    func doublesAreShortestRoundTripOrNull(value: Double, expected: String) throws {
        let (bytes, _) = try write { writer in
            try writer.instant(name: "i", category: "c", timestamp: 0, pid: 1, tid: 1, args: ["v": .double(value)])
            try writer.finish()
        }
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""args":{"v":\#(expected)}"#))
    }
}
