import Dispatch
import ExpositionFormat

/// Writes the metrics to one file for node_exporter's textfile collector: text format 0.0.4 (or OpenMetrics when
/// asked), no timestamps, written under a temporary name in the same directory and renamed into place, so the
/// collector never reads half a file.
///
/// It reads the database itself, through ``MetricsCollector`` (the same incremental reader `serve` uses), on its
/// own connection; for finished runs on a thread of its own from the start of the export, so in `all` that read
/// overlaps the pipeline's. It asks the pipeline for no tables.
public final class PrometheusSink: ExportSink {
    public let demand = SinkDemand()
    private let path: String
    private let options: PrometheusOptions
    private let format: ExpositionFormat
    private var configuration: MetricsCollector.Configuration?
    private var collection: BackgroundCollection?
    private var pending = PendingFiles()

    /// Without a `configuration`, the database and the runs are the export's (from its context); that is how
    /// `all` uses it.
    public init(
        path: String, options: PrometheusOptions, format: ExpositionFormat = .prometheusText,
        configuration: MetricsCollector.Configuration? = nil
    ) {
        self.path = path
        self.options = options
        self.format = format
        self.configuration = configuration
    }

    public func consume(_ event: ExportEvent) throws {
        guard case .start(let context) = event else { return }
        var configuration = self.configuration ?? MetricsCollector.Configuration(context: context)
        configuration.warnings = configuration.warnings ?? context.warnings
        configuration.sourceIdentity = configuration.sourceIdentity ?? context.sourceIdentity
        self.configuration = configuration
        // Reading beside the pipeline could hold up a writer: then the metrics are read afterwards, in `prepare`.
        if !context.overlappingReadsMayStallAWriter {
            collection = BackgroundCollection(configuration: configuration, options: options, format: format)
        }
    }

    /// Waits for the metrics and writes the file under its temporary name; `finish` renames it into place.
    public func prepare() throws {
        // Without a start event (or for a run still being written), the read happens now.
        guard let collection = collection ?? configuration.map({ BackgroundCollection(configuration: $0, options: options, format: format) })
        else { throw ExportError(.usage, "\(path): the export never started") }
        self.collection = collection
        let bytes: [UInt8]
        do {
            bytes = try collection.wait()
        } catch let error as ExpositionError {
            throw ExportError(.dataError, "\(path): \(error.message)")
        }
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

    public func abort() {
        _ = try? collection?.wait()  // no read outlives the export
        pending.discardAll()
    }
}

/// One final poll of a ``MetricsCollector`` on a background thread.
///
/// `@unchecked Sendable`: `outcome` is written by the background job only, and read by `wait()` only after the
/// semaphore says the job is over; `waited` belongs to the waiting thread.
private final class BackgroundCollection: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<[UInt8], any Error>?
    private var waited = false

    /// Renders the file's bytes as soon as the poll is over, so the collector's per-task state is freed then, not
    /// held while the rest of the export runs.
    init(configuration: MetricsCollector.Configuration, options: PrometheusOptions, format: ExpositionFormat) {
        startDedicatedThread { [self] in
            outcome = Result {
                let clock = ContinuousClock()
                let started = clock.now
                let collector = try MetricsCollector(configuration: configuration, options: options)
                try collector.poll(final: true)
                var status = collector.status
                status.readTime = ExporterStatus.wallClockMicros()
                let elapsed = clock.now - started
                status.scrapeSeconds =
                    Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                return try collector.aggregator.render(format, status: status, warnings: configuration.warnings)
            }
            done.signal()
        }
    }

    /// The rendered metrics once the poll is over; rethrows its error. Callable more than once.
    func wait() throws -> [UInt8] {
        if !waited {
            done.wait()
            waited = true
        }
        return try outcome!.get()
    }
}
