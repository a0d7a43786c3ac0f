/// Which database, which runs and tables, and how to read them.
public struct ExportRequest: Sendable {
    public var databasePath: String
    public var immutable: Bool
    public var runPrefixes: [String]
    public var latestRun: Bool
    /// Restrict table outputs to these (nil: all); domain events are still read when a sink needs them.
    public var tables: Set<String>?
    public var mappingsDirectory: String?
    public var timeZone: String?
    public var batchSize: Int
    public var busyTimeoutMilliseconds: Int32

    public init(
        databasePath: String,
        immutable: Bool = false,
        runPrefixes: [String] = [],
        latestRun: Bool = false,
        tables: Set<String>? = nil,
        mappingsDirectory: String? = nil,
        timeZone: String? = nil,
        batchSize: Int = 8192,
        busyTimeoutMilliseconds: Int32 = 5_000
    ) {
        self.databasePath = databasePath
        self.immutable = immutable
        self.runPrefixes = runPrefixes
        self.latestRun = latestRun
        self.tables = tables
        self.mappingsDirectory = mappingsDirectory
        self.timeZone = timeZone
        self.batchSize = batchSize
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
    }
}

/// What an export did.
public struct ExportSummary: Sendable {
    public var files: [String]
    public var rowsRead: [String: Int]
    public var warnings: ValueWarnings
    public var context: ExportContext
}

/// source → model → sinks: reads each needed table once, in Parsl's creation order (try_summary after try), and
/// hands every batch and its domain events to the sinks that asked for them.
public struct ExportPipeline {
    public static let exporterVersion = "0.1.0"

    public let request: ExportRequest

    public init(request: ExportRequest) { self.request = request }

    /// Loads the embedded mappings, then any overrides from `--mappings`.
    public static func catalog(mappingsDirectory: String?) throws -> MappingCatalog {
        var catalog = try MappingCatalog.embedded()
        if let mappingsDirectory { try catalog.merge(directory: mappingsDirectory) }
        return catalog
    }

    public func openDatabase() throws -> MonitoringDatabase {
        try MonitoringDatabase(
            path: request.databasePath,
            immutable: request.immutable,
            catalog: Self.catalog(mappingsDirectory: request.mappingsDirectory),
            busyTimeoutMilliseconds: request.busyTimeoutMilliseconds
        )
    }

    /// Runs the export into `sink`; on any error the sink is aborted (no partial files) and the error rethrown.
    public func run(into sink: any ExportSink, progress: ((String, Int) -> Void)? = nil) throws -> ExportSummary {
        do {
            let database = try openDatabase()
            let zone = try request.timeZone.map { try TimeZoneConversion(identifier: $0) }
            let selected = try database.selectRuns(prefixes: request.runPrefixes, latest: request.latestRun)
            let options = ReadOptions(batchSize: request.batchSize, runIDs: selected, timeZone: zone)
            let warnings = ValueWarnings()
            let allRuns = try database.runs()
            let runs = selected.map { ids in allRuns.filter { ids.contains($0.runID) } } ?? allRuns
            let context = ExportContext(
                databasePath: request.databasePath,
                era: database.schema.era,
                mappingVersion: database.catalog.version,
                exporterVersion: Self.exporterVersion,
                runs: runs,
                timeZone: request.timeZone,
                warnings: warnings
            )
            let demand = sink.demand
            var tableDemand = demand.tables
            if let only = request.tables { tableDemand.formIntersection(only) }
            let eventTables = Set(demand.events.map(\.table))
            let order = database.catalog.tableNames.filter { tableDemand.contains($0) || eventTables.contains($0) }
            let snapshots = try database.snapshots(tables: order, runIDs: selected, highWaterOnly: demand.queries)

            try sink.consume(.start(context))
            var rowsRead: [String: Int] = [:]
            let schemas = Dictionary(uniqueKeysWithValues: order.map { ($0, database.outputSchema(for: $0)) })
            let deriveDomain = Set(order.filter { table in demand.events.contains { $0.table == table } })
            let reader = ReadAhead(
                database: database,
                plan: ReadAhead.Plan(
                    tables: order, snapshots: snapshots, deriveDomain: deriveDomain, options: options, warnings: warnings)
            )
            reader.start()
            var replayNeeded: [(table: String, targets: [any ExportSink])] = []
            do {
                reading: while true {
                    switch reader.next() {
                    case .tableStart(let table):
                        if tableDemand.contains(table) { try sink.consume(.tableStart(schemas[table]!)) }
                    case .batch(let batch, let domain):
                        let table = batch.schema.name
                        if tableDemand.contains(table) { try sink.consume(.batch(batch)) }
                        if let domain { try sink.consume(.domain(domain)) }
                        rowsRead[table, default: 0] += batch.rowCount
                        progress?(table, rowsRead[table] ?? 0)
                    case .tableEnd(let table, let rows):
                        rowsRead[table] = rows
                        if tableDemand.contains(table) { try sink.consume(.tableEnd(schemas[table]!)) }
                        let targets = sink.replayTargets()
                        if !targets.isEmpty { replayNeeded.append((table, targets)) }
                    case .failed(let error):
                        throw error
                    case .done:
                        break reading
                    }
                }
            } catch {
                reader.stop()
                throw error
            }
            reader.stop()
            // Replays re-read a table's snapshot for the sinks that asked, once reading is over; each ask relaxes a
            // column, so a table is replayed at most once per column.
            for (table, firstTargets) in replayNeeded {
                let schema = schemas[table]!
                let snapshot = snapshots[table] ?? MonitoringDatabase.TableSnapshot(highWater: 0, rows: 0)
                var targets = firstTargets
                var replays = 0
                while !targets.isEmpty, replays <= schema.columns.count {
                    replays += 1
                    let replay = MultiplexSink(targets)
                    try replay.consume(.tableStart(schema))
                    try database.read(table: table, snapshot: snapshot, options: options, warnings: ValueWarnings()) {
                        try replay.consume(.batch($0))
                    }
                    try replay.consume(.tableEnd(schema))
                    targets = replay.replayTargets()
                }
            }
            if !demand.queries.isEmpty {
                releaseFreedMemory()
                try sink.query(
                    DatabaseSnapshot(database: database, tables: snapshots, options: options, warnings: warnings))
            }
            try sink.prepare()
            let files = try sink.finish()
            return ExportSummary(files: files, rowsRead: rowsRead, warnings: warnings, context: context)
        } catch {
            sink.abort()
            throw error
        }
    }
}

/// Gives the heap the streaming phase freed back to the system before the query phase builds its own, so the
/// two phases' peaks do not add up in the process's resident size (glibc keeps freed memory in its arenas).
private func releaseFreedMemory() {
    #if os(Linux)
    _ = glibcMallocTrim(0)
    #endif
}

#if os(Linux)
@_silgen_name("malloc_trim") private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
