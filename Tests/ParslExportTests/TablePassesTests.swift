import Testing

@testable import ParslExport

/// How many times an export walks each monitoring table, from SQLite's query plans (`TablePasses`).
@Suite("Passes over the tables")
struct TablePassesTests {
    static let parslTables = ["workflow", "task", "try", "status", "resource", "block", "node"]

    /// Runs `sinks` over `database` as `all` does (one lane) and returns the passes per table.
    static func passes(_ sinks: [any ExportSink], database: String = Fixtures.htex2026) throws -> TablePasses {
        var request = ExportRequest(databasePath: database, parallelTables: false)
        request.passes = TablePasses()
        _ = try ExportPipeline(request: request).run(into: MultiplexSink(sinks))
        return request.passes!
    }

    static func tableSinks(_ directory: String) -> [any ExportSink] {
        let tables = Set(parslTables + ["try_summary"])
        return [
            CSVSink(options: .init(directory: directory + "/csv"), tables: tables),
            ParquetSink(options: .init(directory: directory + "/parquet"), tables: tables),
        ]
    }

    /// The trace as `all` runs it: from the stream.
    static func traceSink(_ directory: String) -> TraceSink {
        var options = TraceSink.Options(output: directory + "/trace", outputIsDirectory: true, maxEvents: 0)
        options.readsFromStream = true
        return TraceSink(options: options)
    }

    static func prometheusSink(_ directory: String) -> PrometheusSink {
        PrometheusSink(path: directory + "/parsl.prom", options: PrometheusOptions())
    }

    /// What the table outputs read: each table once, and try once more for try_summary (a join per try).
    static let tableOutputPasses = Dictionary(uniqueKeysWithValues: parslTables.map { ($0, $0 == "try" ? 2 : 1) })

    @Test("the table outputs walk each table once, and try again for try_summary")
    func tableOutputsReadEachTableOnce() throws {
        let passes = try Self.passes(Self.tableSinks(temporaryDirectory()))
        #expect(passes.counts == Self.tableOutputPasses, "\(passes.statements)")
    }

    @Test("the metrics walk each table they need once, and add no pass to the table outputs'")
    func metricsReadFromTheStream() throws {
        let alone = try Self.passes([Self.prometheusSink(temporaryDirectory())])
        for table in Self.parslTables {
            #expect(alone.counts[table] == 1, "\(table): \(alone.statements[table] ?? [])")
        }
        let directory = temporaryDirectory()
        let together = try Self.passes(Self.tableSinks(directory) + [Self.prometheusSink(directory)])
        #expect(together.counts == Self.tableOutputPasses, "\(together.statements)")
    }

    @Test("all walks each table once")
    func allReadsEachTableOnce() throws {
        let directory = temporaryDirectory()
        let passes = try Self.passes(
            Self.tableSinks(directory) + [Self.traceSink(directory), Self.prometheusSink(directory)])
        #expect(passes.counts == Self.tableOutputPasses, "\(passes.statements)")
    }
}

/// Where a writer may be at work, the trace sorts and groups staged copies: those statements must not hold the
/// database's lock, which they would for the whole sort or grouping (a writer waited 64 ms for one at 100k tasks).
@Suite("Staged trace reads")
struct StagedTraceReadsTests {
    @Test("no statement over a staged copy opens a read of the database", arguments: [Fixtures.htex2026, Fixtures.database("parsl-2024.1.22-htex.db")])
    func stagedStatementsHoldNoLock(database: String) throws {
        var request = ExportRequest(databasePath: database, parallelTables: false)
        request.passes = TablePasses()
        var options = TraceSink.Options(output: temporaryDirectory() + "/trace", outputIsDirectory: true, maxEvents: 0)
        options.stageSortedReads = true
        _ = try ExportPipeline(request: request).run(into: TraceSink(options: options))
        let openers = request.passes!.readOpeners
        // The probe sees reads: the status rows are read in batches of rowids, each batch a read of its own.
        #expect(openers.contains { $0.contains("FROM status AS s") }, "\(openers.sorted())")
        // The copies read the database too, but end their read within the one step each takes; so do reads of the
        // staged tries joined to their tasks in batches of rowids.
        let overStaged = openers.filter {
            ($0.contains("parsl_trace_stage") || $0.contains("parsl_trace_try"))
                && !$0.hasPrefix("INSERT") && !$0.hasPrefix("CREATE") && !$0.hasSuffix("LIMIT ?#")
        }
        #expect(overStaged.isEmpty, "\(overStaged.sorted())")
    }
}

/// A table read only for its events is read with just the columns they need, and gives the same events.
@Suite("Event-only reads")
struct EventColumnsTests {
    @Test("narrowed batches derive the same events as whole ones", arguments: ["workflow", "task", "try", "status", "resource", "block", "node"])
    func narrowedBatchesGiveTheSameEvents(table: String) throws {
        for path in [Fixtures.htex2026, Fixtures.database("era-1.1.0.db")] {
            let database = try ExportPipeline(request: ExportRequest(databasePath: path)).openDatabase()
            let snapshot = try database.countedSnapshot(of: table, runIDs: nil)
            // Batches are cut by size, so narrower batches hold more rows: compare the events row by row.
            func events(_ columns: Set<String>?) throws -> [String] {
                var events: [String] = []
                try database.read(
                    table: table, snapshot: snapshot, columns: columns, options: ReadOptions(), warnings: ValueWarnings()
                ) { batch in
                    switch DomainBatch.derive(from: batch)! {
                    case .runs(let rows): events += rows.map { String(describing: $0) }
                    case .tasks(let rows): events += rows.map { String(describing: $0) }
                    case .tries(let rows): events += rows.map { String(describing: $0) }
                    case .tryAttempts(let rows): events += rows.map { String(describing: $0) }
                    case .statusChanges(let rows): events += rows.map { String(describing: $0) }
                    case .resourceSamples(let rows): events += rows.map { String(describing: $0) }
                    case .blockTransitions(let rows): events += rows.map { String(describing: $0) }
                    case .nodeSnapshots(let rows): events += rows.map { String(describing: $0) }
                    }
                }
                return events
            }
            let columns = try #require(DomainBatch.columns(derivedFrom: table))
            let whole = try events(nil)
            #expect(!whole.isEmpty || path != Fixtures.htex2026, "\(table)")
            #expect(try events(columns) == whole, "\(path) \(table)")
        }
    }
}

/// try_summary and the Prometheus histograms say the same of every try: they use the same `TryLifecycle`.
@Suite("Queue wait and run time agree between try_summary and the metrics")
struct TryDurationsAgreeTests {
    @Test(
        "per app, the histograms count and add up try_summary's queue waits and run times",
        arguments: ["parsl-2026.10.26-htex.db", "parsl-2026.10.26-threads.db", "parsl-2024.1.22-htex.db", "era-1.1.0.db"])
    func histogramsMatchTrySummary(database: String) throws {
        let directory = temporaryDirectory()
        let metrics = PrometheusSink(path: directory + "/parsl.prom", options: PrometheusOptions())
        let tries = MemorySink(demand: SinkDemand(events: [.tries]))
        _ = try ExportPipeline(request: ExportRequest(databasePath: Fixtures.database(database)))
            .run(into: MultiplexSink([metrics, tries]))
        var expected: [String: [String: (count: Int, micros: Int64)]] = ["queue_wait": [:], "run_time": [:]]
        for case .tries(let spans) in tries.domainBatches {
            for span in spans {
                let app = span.app ?? ""
                if let wait = TryLifecycle.queueWait(launched: span.launched, running: span.running) {
                    expected["queue_wait"]![app, default: (0, 0)].count += 1
                    expected["queue_wait"]![app]!.micros += wait
                }
                if let time = TryLifecycle.runTime(running: span.running, returned: span.returned) {
                    expected["run_time"]![app, default: (0, 0)].count += 1
                    expected["run_time"]![app]!.micros += time
                }
            }
        }
        #expect(expected["run_time"]!.values.reduce(0) { $0 + $1.count } > 0)
        let samples = PrometheusMetricsTests.parse(try readFile(directory + "/parsl.prom"))
        for (kind, apps) in expected {
            let family = "parsl_try_\(kind)_seconds"
            let series = Set(samples.keys.filter { $0.hasPrefix(family + "_count{") })
            #expect(series.count == apps.count, "\(database) \(family): \(series.sorted())")
            for (app, want) in apps {
                let labels = "{app=\"\(app)\"}"
                #expect(samples[family + "_count" + labels] == Double(want.count), "\(database) \(family) \(app)")
                #expect(samples[family + "_sum" + labels] == Double(want.micros) / 1e6, "\(database) \(family) \(app)")
            }
        }
    }
}

/// Under `all` the trace reads a private copy of the streamed tables (`StreamedCopy`) instead of the database.
@Suite("The trace from the stream")
struct StreamedTraceTests {
    /// Writes the trace of `database` as `trace` does (alone, `fromStream` false) or as `all` does (beside the
    /// table outputs, from its copy); returns each file's bytes and what the trace directory holds.
    static func trace(_ database: String, fromStream: Bool, format: TraceFormat, zone: String? = nil) throws
        -> (files: [String: [UInt8]], entries: [String])
    {
        let directory = temporaryDirectory()
        var options = TraceSink.Options(output: directory + "/trace", outputIsDirectory: true, format: format, maxEvents: 0)
        options.readsFromStream = fromStream
        let sinks: [any ExportSink] =
            fromStream ? TablePassesTests.tableSinks(directory) + [TraceSink(options: options)] : [TraceSink(options: options)]
        var request = ExportRequest(databasePath: database, parallelTables: false)
        request.timeZone = zone
        _ = try ExportPipeline(request: request).run(into: MultiplexSink(sinks))
        let entries = try listDirectory(directory + "/trace").sorted()
        var files: [String: [UInt8]] = [:]
        for name in entries { files[name] = try readFile(directory + "/trace/" + name) }
        return (files, entries)
    }

    @Test("gives the bytes the database gives, in both formats, on every fixture database", arguments: Fixtures.all)
    func sameBytesAsFromTheDatabase(database: String) throws {
        for format in TraceFormat.allCases {
            let direct = try Self.trace(database, fromStream: false, format: format)
            let streamed = try Self.trace(database, fromStream: true, format: format)
            #expect(!direct.files.isEmpty, "\(database)")
            // Only the traces: the copy is gone.
            #expect(streamed.entries == direct.entries, "\(database) \(format)")
            for (name, bytes) in direct.files {
                // A Bool, so that a failure names the file rather than print both files' bytes.
                let same = streamed.files[name] == bytes
                #expect(same, "\(database) \(format) \(name): \(streamed.files[name]?.count ?? 0) bytes, not \(bytes.count)")
            }
        }
    }

    @Test("times in the copy are already in the export's zone: --timezone moves them once")
    func zoneAppliedOnce() throws {
        let zone = "America/Chicago"
        let direct = try Self.trace(Fixtures.htex2026, fromStream: false, format: .json, zone: zone)
        let streamed = try Self.trace(Fixtures.htex2026, fromStream: true, format: .json, zone: zone)
        let naive = try Self.trace(Fixtures.htex2026, fromStream: true, format: .json)
        let sameAsDirect = streamed.files == direct.files
        let sameAsNaive = streamed.files == naive.files
        #expect(sameAsDirect)
        #expect(!sameAsNaive)
    }
}
