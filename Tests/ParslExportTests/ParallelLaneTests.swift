import CParslSQLite
import Testing

@testable import ParslExport

#if canImport(Glibc)
import Glibc
#endif

@Suite("Tables read in two lanes")
struct ParallelLaneTests {
    static let tables: Set<String> = ["workflow", "task", "try", "status", "resource", "block", "node", "try_summary"]

    @Test("two lanes write the same CSV and Parquet bytes as one", arguments: Fixtures.all)
    func sameBytesAsOneLane(path: String) throws {
        var outputs: [[String: [UInt8]]] = []
        for parallel in [false, true] {
            let directory = temporaryDirectory()
            defer { removeTree(directory) }
            let sink = MultiplexSink([
                CSVSink(options: CSVSink.Options(directory: directory + "/csv"), tables: Self.tables),
                ParquetSink(options: ParquetSink.Options(directory: directory + "/parquet"), tables: Self.tables),
            ])
            let request = ExportRequest(databasePath: path, parallelTables: parallel)
            let summary = try ExportPipeline(request: request).run(into: sink)
            #expect(summary.readingLanes == (parallel ? 2 : 1), "\(path)")
            var files: [String: [UInt8]] = [:]
            for sub in ["csv", "parquet"] {
                for name in try listDirectory(directory + "/" + sub) { files[sub + "/" + name] = try readFile(directory + "/" + sub + "/" + name) }
            }
            #expect(files.count == 16)
            outputs.append(files)
        }
        #expect(outputs[0].keys.sorted() == outputs[1].keys.sorted())
        for (name, bytes) in outputs[0] { #expect(outputs[1][name] == bytes, "\(name) of \(path)") }
    }

    @Test("lanes share the work about evenly and keep the catalogue's order")
    func lanesAreBalanced() {
        let order = ["workflow", "task", "try", "status", "resource", "block", "node"]
        let rows: [String: Int64] = ["workflow": 1, "task": 100_000, "try": 110_000, "status": 540_000, "resource": 213_000, "block": 72, "node": 210_000]
        let columns = ["workflow": 10, "task": 15, "try": 11, "status": 5, "resource": 18, "block": 6, "node": 12]
        let snapshots = rows.mapValues { MonitoringDatabase.TableSnapshot(highWater: $0, rows: $0) }
        let schemas = columns.mapValues { count in
            TableSchema(name: "", meaning: "", columns: (0..<count).map { ColumnSchema(name: "c\($0)", type: .int64, nullable: true, meaning: "") })
        }
        let lanes = ExportPipeline.lanes(order, snapshots: snapshots, schemas: schemas)
        #expect(lanes.count == 2)
        #expect(Set(lanes.joined()) == Set(order) && lanes.joined().count == order.count)
        for lane in lanes { #expect(lane == order.filter(lane.contains)) }
        let work = lanes.map { lane in lane.reduce(Int64(0)) { $0 + rows[$1]! * Int64(columns[$1]! + 7) } }
        #expect(Double(work.max()!) / Double(work.min()!) < 1.3, "\(lanes) \(work)")
        // One table holding nearly everything leaves nothing worth a second connection.
        let lopsided = ExportPipeline.lanes(["task", "status"], snapshots: ["task": .init(highWater: 10, rows: 10), "status": .init(highWater: 1_000_000, rows: 1_000_000)], schemas: schemas)
        #expect(lopsided == [["task", "status"]])
        // With the try summary (a join per try, measured as costly as the seven tables together) it gets a lane
        // of its own; weighed at three times its rows, it shared one and the export took a quarter longer.
        // (Its rows are the try table's: the snapshot of `try` stands for it.)
        var summarySchemas = schemas
        summarySchemas["try_summary"] = TableSchema(
            name: "", meaning: "",
            columns: (0..<19).map { ColumnSchema(name: "c\($0)", type: .int64, nullable: true, meaning: "") })
        let summaryLanes = ExportPipeline.lanes(order + ["try_summary"], snapshots: snapshots, schemas: summarySchemas)
        #expect(summaryLanes.contains(["try_summary"]), "\(summaryLanes)")
    }

    @Test("a run that may still be written is read on one connection")
    func unfinishedRunReadsInOneLane() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let copy = directory + "/unfinished.db"
        #expect(execute(Fixtures.htex2026, "VACUUM INTO '\(copy)'", readOnly: true))
        #expect(execute(copy, "UPDATE workflow SET time_completed = NULL", readOnly: false))
        let sink = ParquetSink(options: ParquetSink.Options(directory: directory + "/out"), tables: Self.tables)
        let summary = try ExportPipeline(request: ExportRequest(databasePath: copy)).run(into: sink)
        #expect(summary.readingLanes == 1)
        #expect(summary.files.count == 8)
        // Immutable: nothing can write it, so two lanes are safe again.
        let again = ParquetSink(options: ParquetSink.Options(directory: directory + "/again"), tables: Self.tables)
        #expect(try ExportPipeline(request: ExportRequest(databasePath: copy, immutable: true)).run(into: again).readingLanes == 2)
    }

    @Test("an error in either lane stops both, names its cause and leaves no file", arguments: [true, false])
    func laneFailure(inSibling: Bool) throws {
        // The other lane is usually mid-table when the error comes: repeat so the race gets its chances.
        for _ in 0..<20 {
            let directory = temporaryDirectory()
            defer { removeTree(directory) }
            let inner = CSVSink(options: CSVSink.Options(directory: directory), tables: Self.tables)
            let sink = FailingLane(inner: inner, failing: inSibling ? .sibling : .first)
            let error = #expect(throws: ExportError.self) {
                _ = try ExportPipeline(request: ExportRequest(databasePath: Fixtures.htex2026)).run(into: sink)
            }
            #expect(error?.message == "lane failed on purpose")
            #expect(try listDirectory(directory).isEmpty)
        }
    }
}

/// Forwards to a real sink; the chosen lane fails on its first batch.
private final class FailingLane: LaneSplittingSink {
    enum Lane { case first, sibling }
    let inner: any ExportSink
    let lane: Lane
    let failing: Lane

    init(inner: any ExportSink, failing: Lane, lane: Lane = .first) {
        self.inner = inner
        self.failing = failing
        self.lane = lane
    }

    var demand: SinkDemand { inner.demand }

    func consume(_ event: ExportEvent) throws {
        if lane == failing, case .batch = event { throw ExportError(.dataError, "lane failed on purpose") }
        try inner.consume(event)
    }

    func prepare() throws { try inner.prepare() }
    func finish() throws -> [String] { try inner.finish() }
    func abort() { inner.abort() }

    func laneSibling() -> (any ExportSink)? {
        inner.splitLaneSibling.map { FailingLane(inner: $0, failing: failing, lane: .sibling) }
    }
}

private func execute(_ path: String, _ sql: String, readOnly: Bool) -> Bool {
    var db: OpaquePointer?
    defer { sqlite3_close_v2(db) }
    guard sqlite3_open_v2(path, &db, readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else { return false }
    return sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK
}
