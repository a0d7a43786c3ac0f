import CParslSQLite
import Foundation
import Testing

@testable import ParslExport

/// The trace of a small real database: its structure against a golden file, and the rules Perfetto needs checked
/// event by event. Regenerate the golden file with PARSL_EXPORT_UPDATE_GOLDEN=1 after an intended change.
@Suite("Trace sink")
struct TraceSinkTests {
    static let golden: String = {
        var path = #filePath
        for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fixtures/golden/trace-parsl-2026.10.26-htex.txt"
    }()

    private func trace(_ database: String, _ configure: (inout TraceSink.Options) -> Void = { _ in }) throws -> (
        text: String, events: [[String: Any]], other: [String: Any]
    ) {
        let path = temporaryDirectory() + "/trace.json"
        var options = TraceSink.Options(output: path, outputIsDirectory: false)
        configure(&options)
        let request = ExportRequest(databasePath: database, latestRun: true, tables: [])
        _ = try ExportPipeline(request: request).run(into: TraceSink(options: options))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (
            String(decoding: data, as: UTF8.self),
            try #require(root["traceEvents"] as? [[String: Any]]),
            try #require(root["otherData"] as? [String: Any])
        )
    }

    /// A text summary of the trace's structure: processes and threads by name, event counts by kind per process,
    /// the trace-level keys, and one try event verbatim (exact bytes of the format).
    private func structure(_ text: String, _ events: [[String: Any]], _ other: [String: Any]) -> String {
        var lines: [String] = []
        var processNames: [Int: String] = [:]
        var threads: [Int: [(Int, String)]] = [:]
        var counts: [Int: [String: Int]] = [:]
        for event in events {
            let pid = event["pid"] as? Int ?? -1
            let args = event["args"] as? [String: Any] ?? [:]
            switch (event["ph"] as? String, event["name"] as? String) {
            case ("M", "process_name"): processNames[pid] = args["name"] as? String
            case ("M", "thread_name"):
                threads[pid, default: []].append((event["tid"] as? Int ?? -1, args["name"] as? String ?? ""))
            case ("M", _): break
            case (let phase?, let name?):
                let category = event["cat"] as? String ?? ""
                // Try slices are named after apps; statuses after states; counters after workers: keep those.
                let key = "\(phase) \(category) \(category == "dependency" ? "" : name)"
                counts[pid, default: [:]][key, default: 0] += 1
            default: lines.append("malformed event \(event)")
            }
        }
        for pid in processNames.keys.sorted() {
            lines.append("process \(pid) \(processNames[pid]!)")
            for (tid, name) in threads[pid, default: []] { lines.append("  thread \(tid) \(name)") }
            for (key, count) in (counts[pid] ?? [:]).sorted(by: { $0.key < $1.key }) {
                lines.append("  \(key): \(count)")
            }
        }
        for key in other.keys.sorted() where key != "exporter" {
            lines.append("otherData \(key) = \(other[key]!)")
        }
        let sample = text.split(separator: "\n").first {
            $0.contains(#""ph":"X""#) && $0.contains(#""task":0,"try":0,"#)
        }
        lines.append("try 0.0: " + String(sample ?? "missing"))
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func structureMatchesTheGoldenFile() throws {
        let (text, events, other) = try trace(Fixtures.htex2026)
        let actual = structure(text, events, other)
        if ProcessInfo.processInfo.environment["PARSL_EXPORT_UPDATE_GOLDEN"] != nil {
            try actual.write(toFile: Self.golden, atomically: true, encoding: .utf8)
            // A run that rewrites the golden file compares nothing: it must not pass.
            Issue.record("rewrote \(Self.golden); run again without PARSL_EXPORT_UPDATE_GOLDEN")
        }
        let expected = try String(contentsOfFile: Self.golden, encoding: .utf8)
        #expect(
            actual == expected,
            "differs from \(Self.golden); regenerate with PARSL_EXPORT_UPDATE_GOLDEN=1 if intended"
        )
    }

    @Test(arguments: [Fixtures.htex2026, Fixtures.threads2026])
    func metadataComesOnceBeforeFirstUseAndTidIsNeverZero(database: String) throws {
        let (_, events, _) = try trace(database)
        var processes = Set<Int>()
        var threads = Set<[Int]>()
        for event in events {
            let pid = try #require(event["pid"] as? Int)
            let tid = event["tid"] as? Int
            #expect(tid != 0)
            if event["ph"] as? String == "M" {
                if event["name"] as? String == "process_name" { #expect(processes.insert(pid).inserted) }
                if event["name"] as? String == "thread_name" { #expect(threads.insert([pid, tid ?? -1]).inserted) }
                continue
            }
            #expect(processes.contains(pid), "process \(pid) used before it is named")
            if let tid, event["s"] as? String ?? "t" == "t" {
                #expect(threads.contains([pid, tid]), "thread \(pid)/\(tid) used before it is named")
            }
        }
    }

    @Test(arguments: [Fixtures.htex2026, Fixtures.threads2026])
    func slicesNestAndNeverPartiallyOverlapOnAThread(database: String) throws {
        let (_, events, _) = try trace(database)
        var byThread: [[Int]: [(start: Int, end: Int)]] = [:]
        for event in events where event["ph"] as? String == "X" {
            let start = try #require(event["ts"] as? Int)
            let duration = try #require(event["dur"] as? Int)
            #expect(duration >= 0)
            byThread[[event["pid"] as? Int ?? 0, event["tid"] as? Int ?? 0], default: []].append(
                (start, start + duration)
            )
        }
        for (thread, slices) in byThread {
            var open: [Int] = []  // ends of the enclosing slices
            for slice in slices.sorted(by: { ($0.start, -$0.end) < ($1.start, -$1.end) }) {
                while let end = open.last, end <= slice.start { open.removeLast() }
                if let end = open.last { #expect(slice.end <= end, "partial overlap on \(thread) at \(slice.start)") }
                open.append(slice.end)
            }
        }
    }

    /// Perfetto lists a thread whose tid equals its pid first, as the main thread, ignoring the sort index.
    @Test(arguments: [Fixtures.htex2026, Fixtures.threads2026])
    func noThreadHasItsProcessesPid(database: String) throws {
        let (_, events, _) = try trace(database)
        for event in events where event["tid"] != nil {
            #expect(event["tid"] as? Int != event["pid"] as? Int, "\(event)")
        }
    }

    /// Worker lanes show what each worker process ran: an execution slice per try whose resource rows name the
    /// worker, on the thread named after that pid, from the try's running time to its return, never overlapping.
    @Test func executionsSitOnTheLaneOfTheirWorker() throws {
        let (_, events, other) = try trace(Fixtures.htex2026)
        var threadNames: [[Int]: String] = [:]
        var tries: [[Int]: [String: Any]] = [:]
        for event in events {
            let key = [event["pid"] as? Int ?? 0, event["tid"] as? Int ?? 0]
            let args = event["args"] as? [String: Any] ?? [:]
            if event["name"] as? String == "thread_name" { threadNames[key] = args["name"] as? String }
            if event["cat"] as? String == "try", let task = args["task"] as? Int, let attempt = args["try"] as? Int {
                tries[[task, attempt]] = event
            }
        }
        let executions = events.filter { $0["cat"] as? String == "execution" }
        let withWorker = tries.values.filter { ($0["args"] as? [String: Any])?["worker_pid"] != nil }.count
        #expect(executions.count == other["executions_on_worker_lanes"] as? Int)
        // The fixture's workers ran their tasks one at a time: nearly every try shows on its worker's lane.
        #expect(executions.count * 10 >= withWorker * 9, "\(executions.count) executions for \(withWorker) tries")
        for execution in executions {
            let args = try #require(execution["args"] as? [String: Any])
            let owner = try #require(tries[[args["task"] as? Int ?? -1, args["try"] as? Int ?? -1]])
            let pid = try #require((owner["args"] as? [String: Any])?["worker_pid"] as? Int)
            let thread = [execution["pid"] as? Int ?? 0, execution["tid"] as? Int ?? 0]
            #expect(threadNames[thread] == "worker \(pid)")
            #expect(execution["pid"] as? Int == owner["pid"] as? Int)
            #expect(execution["name"] as? String == owner["name"] as? String)
            let end = (execution["ts"] as? Int ?? 0) + (execution["dur"] as? Int ?? 0)
            #expect(end == (owner["ts"] as? Int ?? 0) + (owner["dur"] as? Int ?? 0))
        }
    }

    @Test func countsAgreeWithSQLite() throws {
        let (_, events, other) = try trace(Fixtures.htex2026)
        func count(_ phase: String, _ category: String) -> Int64 {
            Int64(events.filter { $0["ph"] as? String == phase && $0["cat"] as? String == category }.count)
        }
        let db = Fixtures.htex2026
        #expect(
            count("X", "try") == Oracle.scalar(db, "SELECT count(*) FROM try WHERE task_try_time_running IS NOT NULL")
        )
        #expect(
            count("X", "try.not_run")
                == Oracle.scalar(db, "SELECT count(*) FROM try WHERE task_try_time_running IS NULL")
        )
        // Status instants that arrows end on are zero-length slices (only slice events carry a flow binding).
        #expect(count("i", "status") + count("X", "status") == Oracle.scalar(db, "SELECT count(*) FROM status"))
        #expect(count("X", "status") == Int64(events.filter { $0["flow_in"] as? Bool == true }.count))
        // Three dep_fail tries were waiting before their dependency ended: their arrows are bound by id, from a
        // slice that starts before the instant (Perfetto points an arrow from the earlier-starting slice).
        var leaving: [Int: Int] = [:]
        for event in events where event["flow_out"] as? Bool == true {
            leaving[event["bind_id"] as? Int ?? -1] = event["ts"] as? Int
        }
        let arriving = events.filter { $0["flow_in"] as? Bool == true }
        #expect(arriving.count == 3)
        for event in arriving {
            let start = try #require(leaving[event["bind_id"] as? Int ?? -1])
            #expect(start <= event["ts"] as? Int ?? -1)
        }
        #expect(count("C", "node") == Oracle.nodeCounterChanges(db))
        #expect(count("C", "resource") > Oracle.scalar(db, "SELECT count(*) FROM resource"))  // memory + CPU rate
        #expect(count("s", "dependency") == count("f", "dependency"))
        #expect(other["run_id"] as? String == "1e437788-0aa0-4ea1-b699-5597f67ef52f")
    }

    @Test func timesAreRelativeByDefaultAndEpochWithAbsolute() throws {
        let relative = try trace(Fixtures.htex2026)
        let absolute = try trace(Fixtures.htex2026) { $0.absoluteTime = true }
        let origin = try #require(relative.other["time_origin_us"] as? Int)
        let relativeStamps = relative.events.compactMap { $0["ts"] as? Int }
        let absoluteStamps = absolute.events.compactMap { $0["ts"] as? Int }
        #expect(relativeStamps.min() == 0)
        #expect(absoluteStamps.min() == origin)
        #expect(relativeStamps.count == absoluteStamps.count)
    }

    /// The origin is the run's first timestamp in any table, even when that is not the run's start (the writer
    /// first assumes it is, and writes the run again when a pass meets an earlier time).
    @Test func theOriginIsTheEarliestTimestampInAnyTable() throws {
        let path = temporaryDirectory() + "/early-block.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        #expect(Oracle.execute(path, "UPDATE block SET timestamp = '2026-11-24 23:30:30.000001' WHERE rowid = 1"))
        let (_, events, other) = try trace(path)
        #expect(other["time_origin"] as? String == "2026-11-24 23:30:30.000001")
        #expect(events.compactMap { $0["ts"] as? Int }.min() == 0)
        let began = try #require(
            events.first { $0["name"] as? String == "workflow began" }?["ts"] as? Int)
        #expect(began == 3_700_965)
    }

    /// Per-try slots that do not fit in memory go to a temporary file and come back unchanged.
    @Test func slotsPagedToDiskGiveTheSameTrace() throws {
        let inMemory = try trace(Fixtures.htex2026)
        let paged = try trace(Fixtures.htex2026) {
            $0.slotCachePages = 2
            $0.slotsPerPage = 16
        }
        #expect(paged.text == inMemory.text)
    }

    /// A JSON trace larger than Perfetto's UI opens is written, with a warning that names the file and the way out;
    /// a protobuf trace of the same size, or a JSON one under the threshold, gets none.
    @Test func aJSONTraceTooLargeForPerfettosUIIsWrittenWithAWarning() throws {
        func warnings(_ format: TraceFormat, threshold: Int) throws -> (lines: [String], bytes: Int, path: String) {
            let path = temporaryDirectory() + "/trace." + format.fileExtension
            var options = TraceSink.Options(output: path, outputIsDirectory: false, format: format, maxEvents: 0)
            options.openableJSONEvents = threshold
            let request = ExportRequest(databasePath: Fixtures.htex2026, latestRun: true, tables: [])
            let summary = try ExportPipeline(request: request).run(into: TraceSink(options: options))
            #expect(summary.files == [path])
            return (summary.warnings.lines, try readFile(path).count, path)
        }
        let small = try warnings(.json, threshold: 100)
        #expect(small.bytes > 0)
        let line = try #require(small.lines.first)
        #expect(small.lines.count == 1)
        #expect(line.hasPrefix(small.path + ": "))
        #expect(line.contains("--format perfetto"))
        #expect(try warnings(.json, threshold: TraceSink.largestOpenableJSONEvents).lines.isEmpty)
        #expect(try warnings(.perfetto, threshold: 100).lines.isEmpty)
    }

    @Test(arguments: [Fixtures.htex2026, Fixtures.threads2026])
    func sortingAStagedCopyGivesTheSameTrace(database: String) throws {
        // Staged reads (for a database a run may still be writing) against direct sorts, event for event; the
        // counter thread interleaves its events with the others', so compare them sorted.
        let direct = try trace(database) { $0.stageSortedReads = false }
        let staged = try trace(database) { $0.stageSortedReads = true }
        func lines(_ text: String) -> [Substring] { text.split(separator: "\n").sorted() }
        #expect(lines(staged.text) == lines(direct.text))
        #expect(staged.events.count > 100)
    }

    @Test func windowKeepsOnlyOverlappingSlicesAndInsideInstants() throws {
        let (_, events, other) = try trace(Fixtures.htex2026) {
            $0.since = .offset(10_000_000)
            $0.until = .offset(20_000_000)
        }
        #expect(other["window_since"] != nil)
        let tries = events.filter { ($0["cat"] as? String)?.hasPrefix("try") == true }
        #expect(!tries.isEmpty)
        for event in tries {
            let start = event["ts"] as? Int ?? 0
            #expect(start <= 20_000_000 && start + (event["dur"] as? Int ?? 0) >= 10_000_000)
        }
        for event in events where ["i", "C"].contains(event["ph"] as? String) {
            #expect((10_000_000...20_000_000).contains(event["ts"] as? Int ?? -1))
        }
    }

    @Test func maxEventsStopsWithTheLimitErrorAndLeavesNoFile() throws {
        let directory = temporaryDirectory()
        let options = TraceSink.Options(output: directory + "/t.json", outputIsDirectory: false, maxEvents: 50)
        let request = ExportRequest(databasePath: Fixtures.htex2026, tables: [])
        #expect {
            _ = try ExportPipeline(request: request).run(into: TraceSink(options: options))
        } throws: { error in
            (error as? ExportError)?.code == .limitExceeded && "\(error)".contains("--max-events")
        }
        #expect(try listDirectory(directory).isEmpty)
    }

    @Test func aCrashedRunShowsItsRunningTriesOpenUntilTheLastTimestamp() throws {
        // The fixture cut at the middle of its run: the state a crashed workflow leaves behind.
        let path = temporaryDirectory() + "/crashed.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        let cut = "2026-11-24 23:31:00"
        for sql in [
            "UPDATE workflow SET time_completed = NULL",
            "DELETE FROM status WHERE timestamp > '\(cut)'",
            "DELETE FROM resource WHERE timestamp > '\(cut)'",
            "DELETE FROM node WHERE timestamp > '\(cut)'",
            "DELETE FROM block WHERE timestamp > '\(cut)'",
            "DELETE FROM try WHERE task_try_time_launched > '\(cut)'",
            "UPDATE try SET task_try_time_running = NULL WHERE task_try_time_running > '\(cut)'",
            "UPDATE try SET task_try_time_returned = NULL WHERE task_try_time_returned > '\(cut)'",
        ] {
            #expect(Oracle.execute(path, sql))
        }
        let openInDatabase = Oracle.scalar(
            path,
            "SELECT count(*) FROM try WHERE task_try_time_running IS NOT NULL AND task_try_time_returned IS NULL"
        )
        #expect(openInDatabase > 0)
        let (_, events, other) = try trace(path)
        #expect(other["unfinished_run"] as? Bool == true)
        let open = events.filter {
            ($0["args"] as? [String: Any])?["unfinished"] as? Bool == true && $0["cat"] as? String == "try"
        }
        #expect(Int64(open.count) == openInDatabase)
        let lastStamp = events.filter { $0["ph"] as? String != "M" }.map {
            ($0["ts"] as? Int ?? 0) + ($0["dur"] as? Int ?? 0)
        }.max()
        #expect(events.compactMap { $0["ts"] as? Int }.min() == 0)
        for event in open {
            #expect((event["ts"] as? Int ?? 0) + (event["dur"] as? Int ?? 0) == lastStamp)
            // The latest state the try reached, as in try_summary; never a terminal one.
            let state = (event["args"] as? [String: Any])?["final_state"] as? String
            #expect(state != nil && state != "unfinished")
            #expect(!["exec_done", "memo_done", "failed", "dep_fail", "fail_retryable"].contains(state ?? ""))
        }
    }
}

extension Oracle {
    /// The rows of a query as text (NULL as nil).
    static func rows(_ path: String, _ sql: String) -> [[String?]] {
        var db: OpaquePointer?
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil)
        defer { sqlite3_close_v2(db) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { return [] }
        defer { sqlite3_finalize(statement) }
        var rows: [[String?]] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            rows.append(
                (0..<sqlite3_column_count(statement)).map { column in
                    sqlite3_column_text(statement, column).map { String(cString: $0) }
                })
        }
        return rows
    }

    /// Samples of the "managers" and "workers" counters: node rows replayed in time order per block, one sample
    /// wherever a block's number of active managers, or the sum of their workers, changes.
    static func nodeCounterChanges(_ path: String) -> Int64 {
        let rows = rows(path, "SELECT block_id, uid, active, worker_count FROM node ORDER BY timestamp, rowid")
        var managers: [String?: [String?: Int64]] = [:]
        var written: [String?: (Int, Int64)] = [:]
        var samples: Int64 = 0
        for row in rows {
            let block = row[0]
            if row[2] == "0" {
                managers[block, default: [:]][row[1]] = nil
            } else {
                managers[block, default: [:]][row[1]] = Int64(row[3] ?? "") ?? 0
            }
            let value = (managers[block]!.count, managers[block]!.values.reduce(0, +))
            samples += written[block]?.0 == value.0 ? 0 : 1
            samples += written[block]?.1 == value.1 ? 0 : 1
            written[block] = value
        }
        return samples
    }

    /// Runs one statement on a writable database; true on success.
    static func execute(_ path: String, _ sql: String) -> Bool {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else { return false }
        defer { sqlite3_close_v2(db) }
        return sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK
    }
}

@Suite("Trace try slots")
struct TrySlotsTests {
    @Test func slotsSurviveEvictionToTheTemporaryFile() throws {
        let directory = temporaryDirectory()
        let slots = TrySlots(
            firstTask: 5, lastTask: 100_004, lastTry: 2, count: 300_000, cachedPages: 3, slotsPerPage: 64,
            spillDirectory: directory)
        for task in stride(from: Int64(5), through: 100_004, by: 7) {
            let index = try #require(slots.index(task: task, try: task % 3))
            try slots.update(index) {
                $0.start = task
                $0.flags = [.present]
            }
        }
        for task in stride(from: Int64(100_004), through: 5, by: -1) {
            let tries = try slots.tries(of: task)
            if (task - 5) % 7 == 0 {
                #expect(tries.count == 1)
                #expect(try slots.read(tries[0]).start == task)
            } else {
                #expect(tries.isEmpty)
            }
        }
        #expect(slots.index(task: 4, try: 0) == nil)
        #expect(slots.index(task: 5, try: 3) == nil)
        // The file was unlinked as soon as it was made.
        #expect(try listDirectory(directory).isEmpty)
    }

    @Test func scatteredIdsUseAMap() throws {
        let slots = TrySlots(
            firstTask: 0, lastTask: 1 << 40, lastTry: 0, count: 2, spillDirectory: temporaryDirectory())
        let a = try #require(slots.index(task: 0, try: 0, create: true))
        let b = try #require(slots.index(task: 1 << 40, try: 0, create: true))
        #expect(a != b)
        #expect(slots.index(task: 7, try: 0) == nil)
        #expect(slots.index(task: 1 << 40, try: 0) == b)
    }
}
