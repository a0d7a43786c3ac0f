import ParslExport
import Testing

@Suite("Reader")
struct ReaderTests {
    static let tables = ["workflow", "task", "try", "status", "resource", "block", "node"]

    @Test("row counts equal sqlite3's for every table of every fixture", arguments: Fixtures.all)
    func rowCountsMatchSQLite(path: String) throws {
        let sink = MemorySink(demand: SinkDemand(tables: Set(Self.tables + ["try_summary"])))
        let summary = try ExportPipeline(request: ExportRequest(databasePath: path, batchSize: 100)).run(into: sink)
        for table in Self.tables {
            let expected = Oracle.tableExists(path, table) ? Oracle.scalar(path, "SELECT count(*) FROM \"\(table)\"") : 0
            #expect(Int64(sink.rowCount(of: table)) == expected, "\(table) in \(path)")
            #expect(Int64(summary.rowsRead[table] ?? 0) == expected)
        }
        let tries = Oracle.tableExists(path, "try") ? Oracle.scalar(path, "SELECT count(*) FROM try") : 0
        #expect(Int64(sink.rowCount(of: "try_summary")) == tries)
    }

    @Test("try_summary final states agree with the status table")
    func trySummaryFinalStates() throws {
        let sink = MemorySink(demand: SinkDemand(events: [.tries]))
        _ = try ExportPipeline(request: ExportRequest(databasePath: Fixtures.htex2026)).run(into: sink)
        let tries: [TrySpan] = sink.domainBatches.flatMap { batch -> [TrySpan] in if case .tries(let t) = batch { t } else { [] } }
        #expect(tries.count == 283)
        var byState: [String: Int64] = [:]
        for span in tries { byState[span.finalState ?? "none", default: 0] += 1 }
        for state in ["exec_done", "failed", "memo_done", "dep_fail", "fail_retryable"] {
            let expected = Oracle.scalar(
                Fixtures.htex2026,
                "SELECT count(*) FROM status WHERE task_status_name = '\(state)'"
            )
            #expect(byState[state, default: 0] == expected, "\(state)")
        }
        // Tries that ran on HTEX workers have a worker pid from their resource samples.
        let withPID = tries.filter { $0.workerPID != nil }.count
        let expectedWithPID = Oracle.scalar(Fixtures.htex2026, "SELECT count(DISTINCT run_id || ':' || task_id || ':' || try_id) FROM resource")
        #expect(Int64(withPID) == expectedWithPID)
        #expect(tries.allSatisfy { ($0.cpuSeconds ?? 0) >= 0 })
    }

    @Test("selecting a run by unique prefix keeps only its rows")
    func runSelection() throws {
        let request = ExportRequest(databasePath: Fixtures.htex2026, runPrefixes: ["1e43"])
        let sink = MemorySink(demand: SinkDemand(tables: ["task"]))
        let summary = try ExportPipeline(request: request).run(into: sink)
        #expect(summary.context.runs.map(\.runID) == ["1e437788-0aa0-4ea1-b699-5597f67ef52f"])
        #expect(sink.rowCount(of: "task") == 257)
        #expect(throws: ExportError.self) {
            try ExportPipeline(request: ExportRequest(databasePath: Fixtures.htex2026, runPrefixes: ["zzz"])).run(into: sink)
        }
    }
}
