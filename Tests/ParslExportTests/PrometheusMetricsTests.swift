import ExpositionFormat
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import ParslExport

/// The aggregator on the real fixture databases: every value is checked against a query run by SQLite itself.
struct PrometheusMetricsTests {
    /// `name{labels} value` lines of a text exposition, keyed by the line up to the value.
    static func parse(_ bytes: [UInt8]) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            result[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return result
    }

    static func sum(_ samples: [String: Double], _ name: String, containing fragment: String = "") -> Double {
        samples.filter { ($0.key == name || $0.key.hasPrefix(name + "{")) && $0.key.contains(fragment) }.values.reduce(0, +)
    }

    static func render(_ path: String, labels: PrometheusOptions.Labels = [.app]) throws -> [String: Double] {
        var options = PrometheusOptions()
        options.labels = labels
        let collector = try MetricsCollector(configuration: .init(path: path), options: options)
        try collector.poll(final: true)
        return parse(try collector.aggregator.render(.prometheusText, status: collector.status))
    }

    /// The try column of status; the parsl-visualize variant has none (every row counts as one try).
    static func tryColumn(_ path: String) -> String {
        Oracle.scalar(path, "SELECT count(*) FROM pragma_table_info('status') WHERE name = 'try_id'") == 1 ? "try_id" : "-1"
    }

    static func currentState(_ path: String) -> String {
        """
        SELECT count(*) FROM (SELECT task_status_name AS state, row_number() OVER (PARTITION BY run_id, task_id ORDER BY
          CASE WHEN task_status_name IN ('exec_done','memo_done','failed','dep_fail','done') THEN 1 ELSE 0 END DESC,
          \(tryColumn(path)) DESC, timestamp DESC, rowid DESC) AS rn FROM status) WHERE rn = 1 AND state = 
        """
    }

    @Test(arguments: Fixtures.all)
    func valuesEqualSQLiteCounts(path: String) throws {
        let samples = try Self.render(path)
        #expect(!samples.isEmpty)
        for state in ["exec_done", "failed", "dep_fail", "memo_done", "pending"] {
            let expected = Oracle.scalar(path, Self.currentState(path) + "'\(state)'")
            #expect(Self.sum(samples, "parsl_tasks", containing: "state=\"\(state)\"") == Double(expected), "\(state)")
        }
        #expect(Self.sum(samples, "parsl_tasks") == Double(Oracle.scalar(path, "SELECT count(DISTINCT run_id || '/' || task_id) FROM status")))
        for outcome in ["exec_done", "failed", "fail_retryable", "dep_fail", "memo_done"] {
            // One per try (Parsl up to 2024.01 wrote some dep_fail rows twice); every row without try ids.
            let expected = Oracle.scalar(
                path,
                "SELECT count(*) FROM (SELECT DISTINCT run_id, task_id, \(Self.tryColumn(path)), rowid * (\(Self.tryColumn(path)) = -1)"
                    + " FROM status WHERE task_status_name = '\(outcome)')")
            #expect(Self.sum(samples, "parsl_tries_total", containing: "outcome=\"\(outcome)\"") == Double(expected), "\(outcome)")
        }
        #expect(
            Self.sum(samples, "parsl_task_retries_total")
                == Double(Oracle.scalar(path, "SELECT count(*) FROM status WHERE task_status_name = 'fail_retryable'")))
        // Tries with both a running and a try-ending status have a run time.
        // Without try ids (parsl-visualize schema) there are no durations.
        let ranAndEnded = Self.tryColumn(path) == "-1" ? 0 : Oracle.scalar(
            path,
            """
            SELECT count(*) FROM (SELECT run_id, task_id, \(Self.tryColumn(path)) FROM status GROUP BY 1, 2, 3
              HAVING sum(task_status_name = 'running') > 0
                 AND sum(task_status_name IN ('exec_done','memo_done','failed','dep_fail','done','fail_retryable')) > 0)
            """)
        #expect(Self.sum(samples, "parsl_try_run_time_seconds_count") == Double(ranAndEnded))
        #expect(Self.sum(samples, "parsl_try_run_time_seconds_bucket", containing: "le=\"+Inf\"") == Double(ranAndEnded))
        for table in ["task", "status", "block", "node", "resource", "workflow"] {
            let rows = Oracle.tableExists(path, table) ? Oracle.scalar(path, "SELECT count(*) FROM \(table)") : 0
            #expect(samples["parsl_export_rows_read_total{table=\"\(table)\"}"] == Double(rows), "\(table)")
        }
        if Oracle.tableExists(path, "block") {
            let blocks = Oracle.scalar(path, "SELECT count(DISTINCT run_id || '/' || executor_label || '/' || block_id) FROM block")
            #expect(Self.sum(samples, "parsl_blocks") == Double(blocks))
            #expect(Self.sum(samples, "parsl_block_status") == Double(blocks))
        }
        let runs = Oracle.scalar(path, "SELECT count(*) FROM workflow")
        #expect(Self.sum(samples, "parsl_workflow_info") == Double(runs))
        #expect(samples["parsl_export_database_up"] == 1)
    }

    @Test func labelsControlCardinality() throws {
        let path = Fixtures.htex2026
        let withApp = try Self.render(path, labels: [.app])
        let bare = try Self.render(path, labels: [])
        let withRun = try Self.render(path, labels: [.app, .runID])
        let apps = Oracle.scalar(path, "SELECT count(DISTINCT task_func_name) FROM task")
        #expect(withApp.keys.filter { $0.hasPrefix("parsl_task_retries_total") }.count > 1)
        #expect(Set(withApp.keys.filter { $0.hasPrefix("parsl_try_run_time_seconds_count") }).count <= Int(apps))
        #expect(bare.keys.filter { $0.hasPrefix("parsl_try_run_time_seconds_count") } == ["parsl_try_run_time_seconds_count"])
        #expect(!bare.keys.contains { $0.hasPrefix("parsl_tasks{") && $0.contains("app=") })
        #expect(withRun.keys.contains { $0.hasPrefix("parsl_tasks{run_id=") })
        // Same totals whatever the labels.
        #expect(Self.sum(bare, "parsl_tasks") == Self.sum(withApp, "parsl_tasks"))
        #expect(Self.sum(withRun, "parsl_tries_total") == Self.sum(withApp, "parsl_tries_total"))
        // Never a task or try id label.
        #expect(!withRun.keys.contains { $0.contains("task_id=") || $0.contains("try_id=") })
    }

    /// Status rows arrive out of logical order in real databases and may precede their task rows in a poll; the
    /// result must not depend on the order rows are fed in.
    @Test func resultDoesNotDependOnRowOrder() throws {
        let path = Fixtures.htex2026
        let connection = try SQLiteConnection(path: path)
        var tasks: [MetricRow.Task] = []
        let t = try connection.prepare("SELECT run_id, task_id, task_func_name FROM task")
        while try t.step() { tasks.append(MetricRow.Task(runID: t.string(0)!, taskID: t.int64(1), app: t.string(2))) }
        var statuses: [MetricRow.Status] = []
        let s = try connection.prepare("SELECT run_id, task_id, try_id, task_status_name, timestamp FROM status")
        while try s.step() {
            let time = s.string(4).flatMap { Timestamp.parse($0)?.wallClockMicros }
            statuses.append(MetricRow.Status(runID: s.string(0)!, taskID: s.int64(1), tryID: s.int64(2), state: s.string(3)!, time: time))
        }
        let inOrder = MetricsAggregator(options: PrometheusOptions())
        for row in tasks { try inOrder.add(row) }
        for row in statuses { try inOrder.add(row) }
        try inOrder.endPoll(final: true)
        let reversed = MetricsAggregator(options: PrometheusOptions())
        for row in statuses.reversed() { try reversed.add(row) }  // before their tasks: they wait
        #expect(reversed.pendingStatusRows == statuses.count)
        try reversed.endPoll(final: false)  // one poll of grace
        for row in tasks.reversed() { try reversed.add(row) }
        try reversed.endPoll(final: false)
        #expect(reversed.pendingStatusRows == 0)
        // Same series and values; only the order of series and the float rounding of sums may differ, and a
        // state that was never current in one order has no zero series there.
        // Zero series of states a task passed through differ by order; "now" is one fixed time for all.
        var status = ExporterStatus()
        status.readTime = 0
        func values(_ aggregator: MetricsAggregator) throws -> [String: Double] {
            try Self.parse(aggregator.render(.prometheusText, status: status)).filter {
                !(($0.key.hasPrefix("parsl_tasks{") || $0.key.hasPrefix("parsl_tasks_running{")) && $0.value == 0)
            }
        }
        // Per-task state paged through two pages of 8 tasks, the rest spilled to a temporary file: the same.
        let paged = MetricsAggregator(options: PrometheusOptions(), taskPaging: .init(recordsPerPage: 8, cachedPages: 2))
        for row in statuses.reversed() { try paged.add(row) }
        try paged.endPoll(final: false)
        for row in tasks.reversed() { try paged.add(row) }
        try paged.endPoll(final: false)
        let a = try values(inOrder)
        for b in [try values(reversed), try values(paged)] {
            #expect(Set(a.keys) == Set(b.keys))
            for (key, value) in a {
                let other = b[key] ?? .nan
                if key.contains("_sum") {
                    #expect(abs(value - other) <= 1e-9 * max(1, abs(value)), "\(key)")
                } else {
                    #expect(value == other, "\(key)")
                }
            }
        }
        #expect(Self.sum(a, "parsl_tasks") == Double(Oracle.scalar(path, "SELECT count(*) FROM task")))
    }

    /// Status rows of runs without task rows (a damaged or hostile file) are applied as they come in a one-shot
    /// export, which has read the whole task table by then: held back for a later poll, 4.9 M of them took 690 MB.
    @Test func orphanStatusRowsAreNotHeldInMemory() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let database = directory + "/orphans.db"
        try writeFile(database, try readFile(Fixtures.htex2026))
        try execute(database, "INSERT INTO status SELECT task_id, task_status_name, timestamp, run_id || '-orphan', try_id FROM status")
        let orphans = Oracle.scalar(database, "SELECT count(*) FROM status WHERE run_id LIKE '%-orphan'")
        #expect(orphans > 0)
        let sink = PrometheusSink(path: directory + "/parsl.prom", options: PrometheusOptions())
        let streamed = MemorySink(demand: SinkDemand(events: [.statusChanges]))
        final class Probe: ExportSink {
            let sink: PrometheusSink
            var largestWait = 0
            init(_ sink: PrometheusSink) { self.sink = sink }
            var demand: SinkDemand { SinkDemand(events: [.statusChanges]) }
            func consume(_ event: ExportEvent) throws { largestWait = max(largestWait, sink.aggregator.pendingStatusRows) }
            func finish() throws -> [String] { [] }
        }
        let probe = Probe(sink)
        _ = try ExportPipeline(request: ExportRequest(databasePath: database)).run(into: MultiplexSink([sink, streamed, probe]))
        #expect(probe.largestWait == 0)
        // Each orphan is counted, under the unknown app, as the final poll counted it.
        let samples = Self.parse(try readFile(directory + "/parsl.prom"))
        let statusRows = streamed.domainBatches.reduce(0) { total, batch in
            if case .statusChanges(let rows) = batch { total + rows.count } else { total }
        }
        #expect(statusRows == Oracle.scalar(database, "SELECT count(*) FROM status"))
        #expect(Self.sum(samples, "parsl_tasks") == Double(Oracle.scalar(database, "SELECT count(DISTINCT run_id || '/' || task_id) FROM status")))
    }

    /// A status row read a poll before its task row counts under the unknown app until the task row comes; then
    /// the metrics are those of the rows read in order, with no zero series left for `app=""`.
    @Test func lateTaskRowLeavesNoUnknownAppSeries() throws {
        let early = MetricsAggregator(options: PrometheusOptions())
        let inOrder = MetricsAggregator(options: PrometheusOptions())
        let task = MetricRow.Task(runID: "r", taskID: 0, app: "double")
        let statuses = ["pending", "launched", "running"].enumerated().map { index, state in
            MetricRow.Status(runID: "r", taskID: 0, tryID: 0, state: state, time: Int64(index + 1))
        }
        try early.add(statuses[0])
        try early.endPoll(final: false)
        try early.endPoll(final: false)  // the poll of grace is over: counted under the unknown app
        #expect(early.pendingStatusRows == 0)
        try early.add(task)
        for status in statuses.dropFirst() { try early.add(status) }
        try early.endPoll(final: false)
        try inOrder.add(task)
        for status in statuses { try inOrder.add(status) }
        try inOrder.endPoll(final: false)
        var status = ExporterStatus()
        status.readTime = 0
        func tasks(_ aggregator: MetricsAggregator) throws -> [String: Double] {
            try Self.parse(aggregator.render(.prometheusText, status: status)).filter { $0.key.hasPrefix("parsl_tasks") }
        }
        let expected = try tasks(inOrder)
        #expect(expected["parsl_tasks{app=\"double\",state=\"running\"}"] == 1)
        #expect(try tasks(early) == expected)
    }

    /// A task row without an app name and a status row whose task row never came are both `app=""`: one series.
    /// (A damaged schema that hides `task_func_name` made the family carry that label set twice.)
    @Test func unknownAppsShareOneSeries() throws {
        let aggregator = MetricsAggregator(options: PrometheusOptions())
        try aggregator.add(MetricRow.Task(runID: "r", taskID: 0, app: nil))
        try aggregator.add(MetricRow.Task(runID: "r", taskID: 1, app: ""))
        try aggregator.add(MetricRow.Task(runID: "r", taskID: 3, app: "double"))
        for task: Int64 in [0, 1, 2, 3] {
            try aggregator.add(MetricRow.Status(runID: "r", taskID: task, tryID: 0, state: "pending", time: 1))
        }
        try aggregator.endPoll(final: true)
        let samples = Self.parse(try aggregator.render(.prometheusText, status: ExporterStatus()))
        #expect(samples["parsl_tasks{app=\"\",state=\"pending\"}"] == 3)
        #expect(samples["parsl_tasks{app=\"double\",state=\"pending\"}"] == 1)
        // The late task row of task 2 moves its state from the unknown app to its own.
        try aggregator.add(MetricRow.Task(runID: "r", taskID: 2, app: "double"))
        let moved = Self.parse(try aggregator.render(.prometheusText, status: ExporterStatus()))
        #expect(moved["parsl_tasks{app=\"\",state=\"pending\"}"] == 2)
        #expect(moved["parsl_tasks{app=\"double\",state=\"pending\"}"] == 2)
    }

    @Test func textfileIsWrittenAtomicallyWithoutTimestamps() throws {
        let directory = temporaryDirectory()
        let path = directory + "/parsl.prom"
        let sink = PrometheusSink(path: path, options: PrometheusOptions())
        // The export's events, handed over by hand so that the file can be looked at between prepare and finish.
        let recorded = MemorySink(demand: sink.demand)
        _ = try ExportPipeline(request: ExportRequest(databasePath: Fixtures.htex2026)).run(into: recorded)
        for event in recorded.events { try sink.consume(event) }
        try sink.prepare()
        let pending = try listDirectory(directory)  // written, not yet in place
        #expect(pending.count == 1 && pending[0].hasPrefix(".parsl-export-\(getpid())@") && pending[0].hasSuffix(".tmp"))
        #expect(try sink.finish() == [path])
        #expect(try listDirectory(directory) == ["parsl.prom"])  // no temporary file left
        let text = String(decoding: try readFile(path), as: UTF8.self)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.split(separator: " ").count == 2, "\(line)")  // name{labels} value, no timestamp
        }
        #expect(text.hasSuffix("\n") && !text.contains("# EOF"))
    }
}
