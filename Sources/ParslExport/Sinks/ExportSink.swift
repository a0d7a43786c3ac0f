#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an export is about; handed to every sink first.
public struct ExportContext: Sendable {
    public var databasePath: String
    public var era: SchemaEra
    public var mappingVersion: String
    public var exporterVersion: String
    /// The runs in the export (all of the database's when no selection was made), oldest first.
    public var runs: [WorkflowRun]
    /// Timestamps are UTC when set; naive wall clock otherwise.
    public var timeZone: String?
    public var warnings: ValueWarnings
    /// A second connection reading beside the pipeline's could hold up a writer (see
    /// `MonitoringDatabase.overlappingReadsMayStallAWriter()`): read on one connection at a time.
    public var overlappingReadsMayStallAWriter: Bool
    /// How the export opens and reads the database (`--immutable`, `--busy-timeout`, `--batch-size`, ...), for a
    /// sink that reads it on a connection of its own.
    public var request: ExportRequest? = nil
    /// The database file the export opened, for a sink that opens it again.
    var sourceIdentity: FileIdentity? = nil
    /// The database's tables and columns, for a sink that keeps a copy of some (see `StreamedCopy`).
    var sourceSchema: SourceSchema? = nil
}

/// One value in the stream a sink consumes. Tables arrive one after another, each as
/// `tableStart`, its batches (and domain events derived from them), `tableEnd`. (Tables read in parallel go to
/// separate sinks: see `LaneSplittingSink`.)
public enum ExportEvent: Sendable {
    case start(ExportContext)
    case tableStart(TableSchema)
    case batch(RecordBatch)
    case domain(DomainBatch)
    case tableEnd(TableSchema)
}

/// What a sink wants read: the pipeline reads the union of all sinks' demands once.
public struct SinkDemand: Sendable, Equatable {
    /// Tables whose schema and batches the sink wants (`tableStart`, `batch`, `tableEnd`).
    public var tables: Set<String>
    /// Domain events the sink wants; their tables are read too.
    public var events: Set<DomainKind>
    /// Tables the sink queries itself (`query(_:)`): not streamed, but snapshotted with the others.
    public var queries: Set<String>

    public init(tables: Set<String> = [], events: Set<DomainKind> = [], queries: Set<String> = []) {
        self.tables = tables
        self.events = events
        self.queries = queries
    }

    public var allTables: Set<String> { tables.union(events.map(\.table)) }
}

/// The database as it stood when the export started, for a sink that reads it with queries of its own (ordered
/// or joined reads that a stream of one table at a time cannot give in bounded memory). Every query must keep to
/// the snapshot: `rowid <= highWater(table)`.
public struct DatabaseSnapshot {
    public let database: MonitoringDatabase
    public let tables: [String: MonitoringDatabase.TableSnapshot]
    public let options: ReadOptions
    public let warnings: ValueWarnings
    /// The gate this export's connections take turns at while a writer may be at work (see
    /// `SQLiteConnection.readGate`): one per export, so exports in one process do not serialise each other.
    let readGate = ReadGate()

    public init(
        database: MonitoringDatabase, tables: [String: MonitoringDatabase.TableSnapshot], options: ReadOptions,
        warnings: ValueWarnings
    ) {
        self.database = database
        self.tables = tables
        self.options = options
        self.warnings = warnings
    }

    /// The last rowid of `table` that belongs to the export (0 for a table the database lacks).
    public func highWater(_ table: String) -> Int64 { tables[table]?.highWater ?? 0 }
}

/// A destination for the exported model: what every sink does. The pipeline calls `consume` for each event, then
/// `prepare` and `finish` once; on failure or interrupt it calls `abort` instead, which must leave no partial output
/// behind. What only some sinks need (lanes, replays, reads of their own) are the capabilities below, which the
/// pipeline looks for.
public protocol ExportSink: AnyObject {
    var demand: SinkDemand { get }
    func consume(_ event: ExportEvent) throws
    /// Writes every output out under its temporary name. After this, `finish` only renames, which needs no disk
    /// space: the pipeline prepares every sink before finishing any, so a full disk leaves no output at all.
    func prepare() throws
    /// Moves the prepared outputs into place and returns their paths.
    func finish() throws -> [String]
    func abort()
}

extension ExportSink {
    public func prepare() throws {}
    public func abort() {}
}

/// A sink whose tables are independent of each other, so the pipeline may read them in two lanes.
public protocol LaneSplittingSink: ExportSink {
    /// A new sink like this one, for a second lane of tables that the pipeline reads in parallel on a connection of
    /// its own: it gets `start`, then whole tables that this sink never gets, and is prepared, finished or aborted
    /// with it. Nil when the sink needs all its tables in one stream (the pipeline then reads them in one lane).
    func laneSibling() -> (any ExportSink)?
}

/// A sink that may need a table again from its start, which the pipeline then re-reads for it (to the same
/// snapshot) once reading is over.
public protocol TableReplayingSink: ExportSink {
    /// Sinks that asked, during the table that just ended, to receive it again. The Parquet sink does when a NOT
    /// NULL column held a value that could not be read: it then declares that column nullable.
    func replayTargets() -> [any ExportSink]
}

/// A sink that reads the database snapshot with queries of its own (the tables in `demand.queries`).
public protocol SnapshotQueryingSink: ExportSink {
    /// Called once the pipeline's own reading is over, before `prepare`.
    func query(_ snapshot: DatabaseSnapshot) throws
}

extension ExportSink {
    /// This sink's sibling for a second lane, when it can split.
    var splitLaneSibling: (any ExportSink)? { (self as? any LaneSplittingSink)?.laneSibling() }
    /// The sinks that asked to receive the table that just ended again (none when it never replays).
    var pendingReplayTargets: [any ExportSink] { (self as? any TableReplayingSink)?.replayTargets() ?? [] }
}

/// A sink with work to do once the pipeline's reading (and any replay) is over, before the query phase: to render
/// and free what it built from the stream, so that its memory and the query phase's do not add up.
public protocol StreamEndObserving: AnyObject {
    func streamEnded() throws
}

/// Fans one event stream out to several sinks, each seeing only what it asked for.
public final class MultiplexSink: LaneSplittingSink, TableReplayingSink, SnapshotQueryingSink, StreamEndObserving {
    public let sinks: [any ExportSink]

    public init(_ sinks: [any ExportSink]) { self.sinks = sinks }

    public var demand: SinkDemand {
        sinks.reduce(SinkDemand()) {
            SinkDemand(
                tables: $0.tables.union($1.demand.tables),
                events: $0.events.union($1.demand.events),
                queries: $0.queries.union($1.demand.queries)
            )
        }
    }

    public func query(_ snapshot: DatabaseSnapshot) throws {
        for sink in sinks where !sink.demand.queries.isEmpty {
            guard let querying = sink as? any SnapshotQueryingSink else {
                preconditionFailure("a sink whose demand has queries must be a SnapshotQueryingSink")
            }
            try querying.query(snapshot)
        }
    }

    public func consume(_ event: ExportEvent) throws {
        for sink in sinks where Self.wants(sink.demand, event) { try sink.consume(event) }
    }

    public func streamEnded() throws {
        for case let sink as any StreamEndObserving in sinks { try sink.streamEnded() }
    }

    static func wants(_ demand: SinkDemand, _ event: ExportEvent) -> Bool {
        switch event {
        case .start: true
        case .tableStart(let schema), .tableEnd(let schema): demand.tables.contains(schema.name)
        case .batch(let batch): demand.tables.contains(batch.schema.name)
        case .domain(let domain): demand.events.contains(domain.kind)
        }
    }

    public func prepare() throws {
        for sink in sinks { try sink.prepare() }
    }

    public func finish() throws -> [String] {
        // One commit: a sink that fails puts back what the sinks before it replaced.
        var finished = 0
        do {
            return try TemporaryFiles.shared.commit {
                var paths: [String] = []
                for sink in sinks {
                    paths += try sink.finish()
                    finished += 1
                }
                return paths
            }
        } catch {
            for later in sinks.dropFirst(finished + 1) { later.abort() }
            throw error
        }
    }

    public func abort() { for sink in sinks { sink.abort() } }

    public func replayTargets() -> [any ExportSink] { sinks.flatMap(\.pendingReplayTargets) }

    /// Siblings of the sinks that stream tables; sinks that only query or only need `start` stay in this lane.
    public func laneSibling() -> (any ExportSink)? {
        var siblings: [any ExportSink] = []
        for sink in sinks {
            let demand = sink.demand
            if demand.tables.isEmpty && demand.events.isEmpty { continue }
            guard let sibling = sink.splitLaneSibling else { return nil }
            siblings.append(sibling)
        }
        return MultiplexSink(siblings)
    }
}

/// Keeps every event in memory; for tests.
public final class MemorySink: ExportSink {
    public let demand: SinkDemand
    public private(set) var events: [ExportEvent] = []
    public private(set) var finished = false

    public init(demand: SinkDemand) { self.demand = demand }

    public func consume(_ event: ExportEvent) throws { events.append(event) }
    public func finish() throws -> [String] {
        finished = true
        return []
    }

    public var batches: [RecordBatch] {
        events.compactMap { if case .batch(let b) = $0 { b } else { nil } }
    }

    public func rowCount(of table: String) -> Int {
        batches.filter { $0.schema.name == table }.reduce(0) { $0 + $1.rowCount }
    }

    public var domainBatches: [DomainBatch] {
        events.compactMap { if case .domain(let d) = $0 { d } else { nil } }
    }
}

extension DomainBatch {
    public var kind: DomainKind {
        switch self {
        case .runs: .runs
        case .tasks: .tasks
        case .tries: .tries
        case .tryAttempts: .tryAttempts
        case .statusChanges: .statusChanges
        case .resourceSamples: .resourceSamples
        case .blockTransitions: .blockTransitions
        case .nodeSnapshots: .nodeSnapshots
        }
    }
}
