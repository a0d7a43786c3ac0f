import GzipStream
import PerfettoFormat
import TraceEventFormat

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Chunks of a trace file on their way to the (possibly compressed) output.
typealias TraceOutput = (UnsafeRawBufferPointer) throws -> Void

/// How a trace file is encoded.
public enum TraceFormat: String, Sendable, CaseIterable {
    /// Chrome trace-event JSON: chrome://tracing, Perfetto, most trace tools; for small and medium runs.
    case json
    /// Perfetto's protobuf (TracePacket/TrackEvent): a fraction of the size, for large runs in Perfetto.
    case perfetto

    /// The file name extension, without ".gz".
    public var fileExtension: String {
        switch self {
        case .json: "json"
        case .perfetto: "pftrace"
        }
    }
}

/// A bound of the `--since`/`--until` window.
public enum TraceTimeBound: Sendable, Equatable {
    /// Microseconds after the run's first event.
    case offset(Int64)
    /// Microseconds in the database's clock (naive wall clock, or UTC with `--timezone`).
    case absolute(Int64)
}

/// Writes one trace file per run: Chrome trace-event JSON (`.json`) or Perfetto protobuf (`.pftrace`), optionally
/// gzipped (Perfetto opens both directly). The layout is the same for both; only the encoder differs.
///
/// The sink reads the database itself, once the pipeline's reading is over, with one ordered query per pass (see
/// `TraceRunWriter`), so that nothing is held for a whole run: memory is one write buffer, what is open at once
/// (tries in flight, workers, blocks) and a bounded window of per-try slots. With `readsFromStream` (under `all`)
/// the same queries read a copy of the streamed tables instead (`StreamedCopy`).
public final class TraceSink: SnapshotQueryingSink {
    public struct Options: Sendable {
        /// A file path (one run) or a directory (one `trace-<run id>.<json|pftrace>[.gz]` per run).
        public var output: String
        public var format: TraceFormat
        public var outputIsDirectory: Bool
        /// Compress files written into a directory; a file path decides by its `.gz` suffix.
        public var gzipInDirectory: Bool
        public var gzipLevel: Int32
        public var threads: Int
        /// Keep epoch microseconds instead of microseconds since the run's first event.
        public var absoluteTime: Bool
        public var since: TraceTimeBound?
        public var until: TraceTimeBound?
        /// Fail rather than write a trace with more events than this (0: no limit).
        public var maxEvents: Int
        /// Above this many events a JSON trace gets a warning. Settable for tests, which have small databases.
        var openableJSONEvents = TraceSink.largestOpenableJSONEvents
        /// Pages of per-try slots kept in memory, and slots per page (64 bytes each); the rest go to a temporary
        /// file. Settable for tests, which make paging happen on small databases.
        var slotCachePages = 128
        var slotsPerPage = 2048
        /// Whether time-sorted reads go through a staged copy (`TraceSource.eachSorted`); nil decides from the
        /// database. Settable for tests, so both ways are checked on the same data.
        var stageSortedReads: Bool?
        /// Read the tables from the pipeline's stream, into a private copy (`StreamedCopy`), rather than from the
        /// database: for `all`, whose other outputs have the tables streamed anyway, so that the database is read
        /// once and the trace shows every row as the tables show it. Costs a copy of the columns the trace reads.
        public var readsFromStream = false

        public init(
            output: String,
            outputIsDirectory: Bool,
            format: TraceFormat = .json,
            gzipInDirectory: Bool = true,
            gzipLevel: Int32 = 6,
            threads: Int = GzipWriter.defaultThreadCount,
            absoluteTime: Bool = false,
            since: TraceTimeBound? = nil,
            until: TraceTimeBound? = nil,
            maxEvents: Int = TraceSink.largestOpenableJSONEvents
        ) {
            self.output = output
            self.outputIsDirectory = outputIsDirectory
            self.format = format
            self.gzipInDirectory = gzipInDirectory
            self.gzipLevel = gzipLevel
            self.threads = threads
            self.absoluteTime = absoluteTime
            self.since = since
            self.until = until
            self.maxEvents = maxEvents
        }
    }

    /// The most events `trace` writes as JSON by default (some 350,000 tries, about 0.6 GB): Perfetto's UI runs out of
    /// memory near 1 GB of JSON. A larger JSON trace (`all`, or a raised limit) gets a warning naming the protobuf.
    public static let largestOpenableJSONEvents = 5_000_000

    public let demand: SinkDemand
    private let options: Options
    private var context: ExportContext?
    private var completed = PendingFiles()
    private var inProgress: AtomicFile?
    /// With `readsFromStream`: the tables as streamed, which the passes read once the stream is over.
    private var copy: StreamedCopy?

    public init(options: Options) {
        self.options = options
        let tables = Set(TraceSource.columnsRead.keys)
        demand = SinkDemand(tables: options.readsFromStream ? tables : [], queries: tables)
    }

    public func consume(_ event: ExportEvent) throws {
        switch event {
        case .start(let context): try start(context)
        case .tableStart(let schema): try copy?.begin(schema)
        case .batch(let batch): try copy?.append(batch)
        case .tableEnd(let schema): try copy?.end(schema)
        case .domain: break
        }
    }

    private func start(_ context: ExportContext) throws {
        self.context = context
        if !options.outputIsDirectory && context.runs.count > 1 {
            throw ExportError(
                .usage,
                "\(options.output): \(context.runs.count) runs selected but -o names one file; "
                    + "give a directory, or pick one run with --run or --latest"
            )
        }
        if context.runs.isEmpty {
            throw ExportError(.usage, "\(context.databasePath): no runs to trace")
        }
        if options.outputIsDirectory { try OutputDirectory.create(options.output) }
        if options.readsFromStream, let schema = context.sourceSchema {
            let directory = options.outputIsDirectory ? options.output : AtomicFile.directory(of: options.output)
            copy = try StreamedCopy(
                directory: directory, columns: TraceSource.columnsRead, indexes: TraceSource.lookupKeys, source: schema)
        }
    }

    /// The file a run's trace goes to.
    public static func path(for runID: String, options: Options) -> String {
        guard options.outputIsDirectory else { return options.output }
        let directory = options.output.hasSuffix("/") ? String(options.output.dropLast()) : options.output
        return directory + "/trace-\(runID).\(options.format.fileExtension)" + (options.gzipInDirectory ? ".gz" : "")
    }

    /// Writes each run's trace under a temporary name; `finish` renames them into place.
    public func query(_ snapshot: DatabaseSnapshot) throws {
        guard let context else { return }
        defer {
            copy?.remove()
            copy = nil
        }
        var snapshot = snapshot
        // A copy lacks tables when the export streamed only some (`--tables`): the passes then read the database.
        if let copied = try copy?.snapshot(
            holding: Set(TraceSource.columnsRead.keys), catalog: snapshot.database.catalog, options: snapshot.options,
            warnings: snapshot.warnings)
        {
            snapshot = copied
        }
        for run in context.runs { try write(run, snapshot: snapshot, context: context) }
    }

    public func prepare() throws { try completed.prepareAll() }

    public func finish() throws -> [String] { try completed.moveAllIntoPlace() }

    private func write(_ run: WorkflowRun, snapshot: DatabaseSnapshot, context: ExportContext) throws {
        switch options.format {
        case .json:
            try write(run, snapshot: snapshot, context: context) { output, counterOutput in
                (JSONTraceEncoder(TraceEventWriter(output: output)), JSONTraceEncoder(.fragment(output: counterOutput)))
            }
        case .perfetto:
            try write(run, snapshot: snapshot, context: context) { output, counterOutput in
                // One packet sequence per thread: interning and clock state are per sequence.
                let tracks = PerfettoTraceEncoder.Tracks()
                return (
                    PerfettoTraceEncoder(PerfettoTraceWriter(sequenceID: 1, output: output), tracks: tracks),
                    PerfettoTraceEncoder(PerfettoTraceWriter(sequenceID: 2, output: counterOutput), tracks: tracks)
                )
            }
        }
    }

    /// `makeEncoders` gives the encoders of the run writer's and the counter thread's events, each writing whole
    /// chunks to its own output (see `TraceFileOutput`).
    private func write<Encoder: TraceEncoder>(
        _ run: WorkflowRun, snapshot: DatabaseSnapshot, context: ExportContext,
        makeEncoders: (@escaping TraceOutput, @escaping TraceOutput) -> (Encoder, Encoder)
    ) throws {
        let source = try TraceSource(snapshot: snapshot, runID: run.runID, stageSortedReads: options.stageSortedReads)
        // An unfinished run needs its last timestamp before the layout (open tries end there); otherwise the
        // passes find the extent as they go, and a run whose first guess of the origin was wrong is written again.
        func exactExtent() throws -> (first: Int64, last: Int64)? {
            var extent = try source.extent()
            for time in [run.began, run.completed].compactMap({ $0 }) {
                extent = (min(extent?.first ?? time, time), max(extent?.last ?? time, time))
            }
            return extent
        }
        var extent = run.isUnfinished ? try exactExtent() : nil
        while true {
            let (file, output, runWriter, encoder) = try attempt(
                run, source: source, extent: extent, context: context, makeEncoders: makeEncoders)
            if runWriter.needsExactExtent {
                file.discard()
                inProgress = nil
                extent = try exactExtent()
                continue
            }
            try finish(file, output: output, runWriter: runWriter, encoder: encoder, run: run, context: context)
            return
        }
    }

    private func attempt<Encoder: TraceEncoder>(
        _ run: WorkflowRun, source: TraceSource, extent: (first: Int64, last: Int64)?, context: ExportContext,
        makeEncoders: (@escaping TraceOutput, @escaping TraceOutput) -> (Encoder, Encoder)
    ) throws -> (AtomicFile, TraceFileOutput, TraceRunWriter<Encoder>, Encoder) {
        let path = Self.path(for: run.runID, options: options)
        let gzip = options.outputIsDirectory ? options.gzipInDirectory : path.lowercased().hasSuffix(".gz")
        let file = try AtomicFile(path: path)
        inProgress = file
        let stream: any ByteStreamWriter =
            gzip
            ? try GzipWriter(level: options.gzipLevel, threads: options.threads, output: file.output)
            : PassthroughWriter(output: file.output)
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        // Two threads write the trace (see TraceCounterThread). The counter thread's events are set aside and
        // follow the run writer's, so that the file's bytes do not depend on how the threads were scheduled. The
        // run writer's chunks wait while its pass holds the database's read lock (see `HeldOutput`).
        let output = TraceFileOutput(
            stream: stream, counters: CompressedSpill(directory: directory.isEmpty ? "/" : directory, purpose: "counters"))
        source.batchReadObserver = output.held
        let (encoder, counterEncoder) = makeEncoders(
            { bytes in try output.held.write(bytes) }, { bytes in try output.counters.write(bytes) })
        var runWriter = try TraceRunWriter(
            source: source,
            run: run,
            encoder: encoder,
            counterEncoder: counterEncoder,
            options: .init(
                absoluteTime: options.absoluteTime, since: options.since, until: options.until,
                maxEvents: options.maxEvents, databasePath: context.databasePath),
            extent: extent,
            spillDirectory: directory.isEmpty ? "/" : directory,
            slotCache: (options.slotCachePages, options.slotsPerPage)
        )
        try runWriter.write()
        return (file, output, runWriter, encoder)
    }

    private func finish<Encoder: TraceEncoder>(
        _ file: AtomicFile, output: TraceFileOutput, runWriter: TraceRunWriter<Encoder>, encoder: Encoder,
        run: WorkflowRun, context: ExportContext
    ) throws {
        let first = runWriter.first
        var other = TraceArgs()
        other.append("run_id", .string(run.runID))
        other.append("workflow_name", .string(run.workflowName))
        other.append("workflow_version", .string(run.workflowVersion))
        other.append("run_began", .string(run.began.map(Timestamp.format)))
        other.append("run_completed", .string(run.completed.map(Timestamp.format)))
        other.append("unfinished_run", .bool(run.isUnfinished))
        other.append("parsl_schema_era", .string(context.era.rawValue))
        other.append("exporter", .string("parsl-export \(context.exporterVersion)"))
        other.append("mapping_version", .string(context.mappingVersion))
        other.append(
            "clock",
            .string(context.timeZone.map { "UTC (converted from \($0))" } ?? "naive local time of the writing hosts")
        )
        let hasTime = runWriter.lastSeen != nil
        // With --absolute the passes may have met an earlier time than the guessed origin; report the true one.
        let origin = hasTime ? min(first, runWriter.seen.first) : 0
        other.append("time_origin", .string(hasTime ? Timestamp.format(origin) : nil))
        other.append("time_origin_us", .int(origin))
        other.append(
            "timestamps",
            .string(options.absoluteTime ? "epoch microseconds" : "microseconds since time_origin")
        )
        if let since = runWriter.windowSince { other.append("window_since", .string(Timestamp.format(since))) }
        if let until = runWriter.windowUntil { other.append("window_until", .string(Timestamp.format(until))) }
        other.append("tries", .int(Int64(runWriter.triesWritten)))
        other.append("executions_on_worker_lanes", .int(Int64(runWriter.executionsOnWorkers)))
        other.append("dependency_flows", .int(Int64(runWriter.flowCount)))
        other.append("events", .int(Int64(runWriter.eventCount)))
        // Every event of the run writer out, then the counter thread's (it has ended), then the trailer.
        try encoder.flush()
        try output.counters.drain { bytes in try output.stream.write(bytes) }
        try encoder.finish(metadata: other)
        try output.stream.finish()
        try completed.append(file)
        inProgress = nil
        if options.format == .json, runWriter.eventCount > options.openableJSONEvents {
            context.warnings.note(
                "\(Self.path(for: run.runID, options: options)): \(runWriter.eventCount) events, more JSON than "
                    + "Perfetto's UI opens reliably (\(options.openableJSONEvents)); --format perfetto writes a "
                    + "protobuf trace it opens")
        }
    }

    public func abort() {
        copy?.remove()
        copy = nil
        inProgress?.discard()
        inProgress = nil
        completed.discardAll()
    }
}

/// Where a run's trace goes: the run writer's chunks to the file's stream (through `held`), the counter thread's
/// into `counters` until the run writer is done.
struct TraceFileOutput {
    let stream: any ByteStreamWriter
    let held: HeldOutput
    let counters: CompressedSpill

    init(stream: any ByteStreamWriter, counters: CompressedSpill) {
        self.stream = stream
        held = HeldOutput(stream)
        self.counters = counters
    }
}

/// The run writer's chunks of a trace, held while its pass reads the database and written out once that read has
/// ended: writing may wait for a compression worker or for the disk, and a writer waiting for the lock must not
/// wait for that too (a writer waited 54.9 ms). A batch reads for at most `ReadOptions.lockBudgetMicros`, so what
/// is held stays small; past `limit` it is written anyway.
final class HeldOutput: BatchReadObserver {
    private let stream: any ByteStreamWriter
    private var pending: [UInt8] = []
    private var holding = false
    private let limit = 8 << 20

    init(_ stream: any ByteStreamWriter) { self.stream = stream }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if holding && pending.count + bytes.count <= limit {
            pending.append(contentsOf: bytes)
            return
        }
        try writePending()
        try stream.write(bytes)
    }

    func batchReadStarted() { holding = true }

    func batchReadEnded() throws {
        holding = false
        try writePending()
    }

    private func writePending() throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBytes { bytes in try stream.write(bytes) }
        pending.removeAll(keepingCapacity: true)
    }
}
