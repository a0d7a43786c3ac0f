import ExpositionFormat

/// Writes the metrics to one file for node_exporter's textfile collector: text format 0.0.4 (or OpenMetrics when
/// asked), no timestamps, written under a temporary name in the same directory and renamed into place, so the
/// collector never reads half a file.
///
/// It builds the metrics from the model the pipeline streams (runs, tasks, try rows, status changes, resource
/// samples, block transitions, node snapshots): under `all` from the same single read of each table as every
/// other sink. `serve` feeds the same ``MetricsAggregator`` from ``MetricsCollector``, its incremental reader.
public final class PrometheusSink: ExportSink, StreamEndObserving {
    public let demand = SinkDemand(
        events: [.runs, .tasks, .tryAttempts, .statusChanges, .resourceSamples, .blockTransitions, .nodeSnapshots])
    private let path: String
    private let format: ExpositionFormat
    let aggregator: MetricsAggregator
    private var status = ExporterStatus()
    private var warnings: ValueWarnings?
    /// Naive Parsl times are read in the host's zone for epoch-second metrics, unless the export names one (then
    /// the pipeline's times are UTC already).
    private var naiveZone: TimeZoneConversion?
    private let clock = ContinuousClock()
    private var started: ContinuousClock.Instant?
    private var pending = PendingFiles()
    /// The file's bytes, once rendered.
    private var rendered: [UInt8]?

    public init(path: String, options: PrometheusOptions, format: ExpositionFormat = .prometheusText) {
        self.path = path
        self.format = format
        aggregator = MetricsAggregator(options: options)
    }

    public func consume(_ event: ExportEvent) throws {
        switch event {
        case .start(let context):
            started = clock.now
            warnings = context.warnings
            if context.timeZone == nil {
                naiveZone = try PrometheusOptions.naiveTimestampZone(given: nil).map { try TimeZoneConversion(identifier: $0) }
            }
            for table in ExporterStatus.tables { status.rowsRead[table] = 0 }
        case .domain(let batch):
            try add(batch)
        default:
            break
        }
    }

    private func utc(_ time: Int64?) -> Int64? {
        guard let time, let naiveZone else { return time }
        return naiveZone.utcMicros(fromWallClock: time)
    }

    private func add(_ batch: DomainBatch) throws {
        // The pipeline reads the tables in Parsl's order: once rows after the task table come, it has every task.
        switch batch {
        case .runs, .tasks: break
        default: aggregator.taskRowsComplete = true
        }
        if let (table, rows) = try aggregator.add(batch, utc: utc) { status.rowsRead[table, default: 0] += rows }
    }

    /// Renders the metrics once the pipeline's reading is over and lets go of the per-task state, so that it is
    /// not held beside what the trace builds in the query phase of `all`.
    public func streamEnded() throws {
        guard rendered == nil else { return }
        guard let started else { throw ExportError(.usage, "\(path): the export never started") }
        try aggregator.endPoll(final: true)
        status.readTime = ExporterStatus.wallClockMicros()
        let elapsed = clock.now - started
        status.scrapeSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        do {
            rendered = try aggregator.render(format, status: status, warnings: warnings)
        } catch let error as ExpositionError {
            throw ExportError(.dataError, "\(path): \(error.message)")
        }
        aggregator.reset()
    }

    /// Writes the file under its temporary name; `finish` renames it into place.
    public func prepare() throws {
        try streamEnded()
        guard let bytes = rendered else { return }
        let file = try AtomicFile(path: path)
        do {
            try file.write(bytes)
        } catch {
            file.discard()
            throw error
        }
        try pending.append(file)
        try pending.prepareAll()
    }

    public func finish() throws -> [String] { try pending.moveAllIntoPlace() }

    public func abort() { pending.discardAll() }
}
