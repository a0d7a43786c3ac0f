import Dispatch
import Synchronization

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
    /// Read the tables in two lanes, on two connections, when the sink can split and no writer can be held up.
    public var parallelTables: Bool
    /// Notes the export's passes over each table (tests and measurements).
    var passes: TablePasses? = nil

    public init(
        databasePath: String,
        immutable: Bool = false,
        runPrefixes: [String] = [],
        latestRun: Bool = false,
        tables: Set<String>? = nil,
        mappingsDirectory: String? = nil,
        timeZone: String? = nil,
        batchSize: Int = 8192,
        busyTimeoutMilliseconds: Int32 = 5_000,
        parallelTables: Bool = true
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
        self.parallelTables = parallelTables
    }
}

/// What an export did.
public struct ExportSummary: Sendable {
    public var files: [String]
    public var rowsRead: [String: Int]
    public var warnings: ValueWarnings
    public var context: ExportContext
    /// How many connections read the tables side by side (1, or 2 when the sink could split and no writer could be
    /// held up).
    public var readingLanes: Int
}

/// source → model → sinks: reads each needed table once, in Parsl's creation order (try_summary after try), and
/// hands every batch and its domain events to the sinks that asked for them.
public struct ExportPipeline {
    /// The project's one version number: `--version`, file metadata, and the wheel and tarball `scripts/package` makes.
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
        let database = try MonitoringDatabase(
            path: request.databasePath,
            immutable: request.immutable,
            catalog: Self.catalog(mappingsDirectory: request.mappingsDirectory),
            busyTimeoutMilliseconds: request.busyTimeoutMilliseconds
        )
        database.passes = request.passes
        return database
    }

    /// Runs the export into `sink`; on any error the sink is aborted (no partial files) and the error rethrown.
    public func run(into sink: any ExportSink, progress: ((String, Int) -> Void)? = nil) throws -> ExportSummary {
        var sibling: (any ExportSink)?
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
                warnings: warnings,
                overlappingReadsMayStallAWriter: try database.overlappingReadsMayStallAWriter(),
                request: request,
                sourceIdentity: database.identity,
                sourceSchema: database.schema
            )
            let demand = sink.demand
            var tableDemand = demand.tables
            if let only = request.tables { tableDemand.formIntersection(only) }
            let eventTables = Set(demand.events.map(\.table))
            let order = database.catalog.tableNames.filter { tableDemand.contains($0) || eventTables.contains($0) }
            // Domain events are derived in table order, so only a pure table stream may split into lanes.
            let mayUseLanes =
                request.parallelTables && !context.overlappingReadsMayStallAWriter && demand.events.isEmpty
            // Counting every table's rows for the snapshots is most of the start-up time; when nothing can be
            // writing the file, each table is counted by its lane just before it is read, and the lanes are
            // balanced by last rowid instead (Parsl never deletes, so it is about the row count).
            var snapshots = try database.snapshots(
                tables: mayUseLanes ? [] : order, runIDs: selected,
                highWaterOnly: demand.queries.union(mayUseLanes ? order : []))
            let schemas = Dictionary(uniqueKeysWithValues: order.map { ($0, database.outputSchema(for: $0)) })

            try sink.consume(.start(context))
            let lanes = mayUseLanes ? Self.lanes(order, snapshots: snapshots, schemas: schemas) : [order]
            if lanes.count == 2 { sibling = sink.splitLaneSibling }
            let plan = LanePlan(
                snapshots: snapshots, schemas: schemas, tableDemand: tableDemand,
                deriveDomain: Set(order.filter { table in demand.events.contains { $0.table == table } }),
                options: options, warnings: warnings, progress: progress.map { LockedProgress($0) })
            var outcome: LaneOutcome
            if let sibling {
                try sibling.consume(.start(context))
                outcome = try Self.readInParallel(
                    lanes: (lanes[0], lanes[1]), into: (sink, sibling), database: database, plan: plan)
            } else {
                outcome = try Self.read(order, into: sink, database: database, plan: plan, cancelled: nil)
            }
            snapshots.merge(outcome.snapshots) { $1 }
            // Replays re-read a table's snapshot for the sinks that asked, once reading is over; each ask relaxes a
            // column, so a table is replayed at most once per column.
            for (table, firstTargets) in outcome.replayNeeded {
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
                    targets = replay.pendingReplayTargets
                }
            }
            try (sink as? any StreamEndObserving)?.streamEnded()
            if !demand.queries.isEmpty {
                guard let querying = sink as? any SnapshotQueryingSink else {
                    preconditionFailure("a sink whose demand has queries must be a SnapshotQueryingSink")
                }
                releaseFreedMemory()
                try querying.query(
                    DatabaseSnapshot(database: database, tables: snapshots, options: options, warnings: warnings))
            }
            let whole = sibling.map { MultiplexSink([sink, $0]) } ?? sink
            try whole.prepare()
            let files = try whole.finish()
            return ExportSummary(
                files: files, rowsRead: outcome.rowsRead, warnings: warnings, context: context,
                readingLanes: sibling == nil ? 1 : 2)
        } catch {
            sink.abort()
            sibling?.abort()
            throw error
        }
    }

    /// What every lane of one export shares.
    struct LanePlan: @unchecked Sendable {
        // @unchecked: the schemas and options are immutable values; `warnings` and `progress` lock.
        var snapshots: [String: MonitoringDatabase.TableSnapshot]
        var schemas: [String: TableSchema]
        var tableDemand: Set<String>
        var deriveDomain: Set<String>
        /// Tables no sink wants as tables, read only for their events: just the columns those need.
        var eventColumns: [String: Set<String>] {
            Dictionary(
                uniqueKeysWithValues: deriveDomain.subtracting(tableDemand).compactMap { table in
                    DomainBatch.columns(derivedFrom: table).map { (table, $0) }
                })
        }
        var options: ReadOptions
        var warnings: ValueWarnings
        var progress: LockedProgress?
    }

    struct LaneOutcome {
        var rowsRead: [String: Int] = [:]
        /// The snapshot each table was read to (taken by the lane when the export's start had none).
        var snapshots: [String: MonitoringDatabase.TableSnapshot] = [:]
        var replayNeeded: [(table: String, targets: [any ExportSink])] = []
    }

    /// Two lanes of about equal work, each in the catalogue's order, or one lane when there is nothing to share.
    /// A table's work is estimated from its rows and columns: a row costs about as much as seven values (stepping
    /// SQLite, batching). A try summary joins, sorts and aggregates per row: on the 100k-task benchmark database it
    /// takes 0.69 s of CPU to Parquet, as much as the seven tables together, so it counts eight times.
    static func lanes(
        _ order: [String], snapshots: [String: MonitoringDatabase.TableSnapshot], schemas: [String: TableSchema]
    ) -> [[String]] {
        func work(_ table: String) -> Int64 {
            let snapshot = snapshots[MonitoringDatabase.sourceTable(table)]
            let rows = max(snapshot?.rows ?? 0, snapshot?.highWater ?? 0, 0)
            let perRow = Int64(schemas[table]?.columns.count ?? 1) + 7
            return rows * perRow * (table == "try_summary" ? 8 : 1)
        }
        var loads: [Int64] = [0, 0]
        var lanes: [Set<String>] = [[], []]
        for table in order.sorted(by: { work($0) > work($1) }) {
            let lane = loads[0] <= loads[1] ? 0 : 1
            loads[lane] += work(table)
            lanes[lane].insert(table)
        }
        // A lane with (almost) nothing to do is not worth a second connection.
        guard loads.min()! * 8 >= loads.max()!, loads.min()! > 0 else { return [order] }
        return lanes.map { lane in order.filter { lane.contains($0) } }
    }

    /// Reads `tables` a few batches ahead on a reading thread and hands them to `sink` on this one.
    static func read(
        _ tables: [String], into sink: any ExportSink, database: MonitoringDatabase, plan: LanePlan,
        cancelled: LaneCancellation?
    ) throws -> LaneOutcome {
        var outcome = LaneOutcome()
        let reader = ReadAhead(
            database: database,
            plan: ReadAhead.Plan(
                tables: tables, snapshots: plan.snapshots, eventColumns: plan.eventColumns, options: plan.options, warnings: plan.warnings)
        )
        reader.start()
        defer { reader.stop() }
        while true {
            if let cancelled, cancelled.isSet { throw CancellationError() }
            switch reader.next() {
            case .tableStart(let table):
                if plan.tableDemand.contains(table) { try sink.consume(.tableStart(plan.schemas[table]!)) }
            case .batch(let batch):
                let table = batch.schema.name
                if plan.tableDemand.contains(table) { try sink.consume(.batch(batch)) }
                // Derived here, one batch at a time, rather than ahead: the read-ahead ring holds batches, not also
                // their events (a resource batch's events are about 1 MB).
                if plan.deriveDomain.contains(table), let domain = DomainBatch.derive(from: batch) {
                    try sink.consume(.domain(domain))
                }
                outcome.rowsRead[table, default: 0] += batch.rowCount
                plan.progress?.update(table, outcome.rowsRead[table] ?? 0)
            case .tableEnd(let table, let rows, let snapshot):
                outcome.rowsRead[table] = rows
                outcome.snapshots[table] = snapshot
                if plan.tableDemand.contains(table) { try sink.consume(.tableEnd(plan.schemas[table]!)) }
                let targets = sink.pendingReplayTargets
                if !targets.isEmpty { outcome.replayNeeded.append((table, targets)) }
            case .failed(let error):
                throw error
            case .done:
                return outcome
            }
        }
    }

    /// Reads the second lane on a thread and connection of its own while this thread reads the first; the first
    /// error of either lane stops the other and is rethrown.
    static func readInParallel(
        lanes: ([String], [String]), into sinks: (any ExportSink, any ExportSink), database: MonitoringDatabase,
        plan: LanePlan
    ) throws -> LaneOutcome {
        let secondDatabase = try database.onNewConnection()
        let cancelled = LaneCancellation()
        let second = SecondLane(tables: lanes.1, sink: sinks.1, database: secondDatabase, plan: plan)
        second.start(cancelled: cancelled)
        var first: LaneOutcome
        do {
            first = try read(lanes.0, into: sinks.0, database: database, plan: plan, cancelled: cancelled)
        } catch {
            cancelled.set()
            // Wait for the other lane in every case: its sink must be idle before the caller aborts it.
            let other = second.wait()
            // Stopped because the other lane failed: its error is the cause.
            if error is CancellationError, case .failure(let cause) = other { throw cause }
            throw error
        }
        let other = try second.wait().get()
        first.rowsRead.merge(other.rowsRead) { $1 }
        first.snapshots.merge(other.snapshots) { $1 }
        first.replayNeeded += other.replayNeeded
        return first
    }
}

/// The second lane of a parallel read: its own thread, connection and sink.
private final class SecondLane: @unchecked Sendable {
    // @unchecked: the lane's sink and database are touched only by its thread until `wait()` returns.
    private let tables: [String]
    private let sink: any ExportSink
    private let database: MonitoringDatabase
    private let plan: ExportPipeline.LanePlan
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<ExportPipeline.LaneOutcome, any Error>?
    /// Touched by the waiting thread only.
    private var waited = false

    init(tables: [String], sink: any ExportSink, database: MonitoringDatabase, plan: ExportPipeline.LanePlan) {
        self.tables = tables
        self.sink = sink
        self.database = database
        self.plan = plan
    }

    func start(cancelled: LaneCancellation) {
        startDedicatedThread { [self] in
            do {
                outcome = .success(
                    try ExportPipeline.read(tables, into: sink, database: database, plan: plan, cancelled: cancelled))
            } catch {
                cancelled.set()
                outcome = .failure(error)
            }
            done.signal()
        }
    }

    /// Waits for the lane to end.
    func wait() -> Result<ExportPipeline.LaneOutcome, any Error> {
        if !waited {
            done.wait()
            waited = true
        }
        return outcome!
    }
}

/// Set by the lane that fails first, so the other stops at its next batch.
final class LaneCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

/// A progress callback that two lanes may call.
final class LockedProgress: @unchecked Sendable {
    // @unchecked: the callback is only reached through its lock.
    private let callback: Locked<(String, Int) -> Void>

    init(_ callback: @escaping (String, Int) -> Void) { self.callback = Locked(callback) }

    func update(_ table: String, _ rows: Int) { callback.withLock { $0(table, rows) } }
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
