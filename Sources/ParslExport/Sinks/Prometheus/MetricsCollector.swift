#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a monitoring database into a ``MetricsAggregator`` incrementally: each ``poll(final:)`` takes the tables'
/// last rowids in one short read transaction, then reads only the rows past the previous poll's marks, in batches
/// that are each one short SELECT (its own read transaction), so Parsl's writer waits milliseconds at most.
///
/// Parsl inserts into status, task, block, node and resource and never deletes, so rowid high-water marks see
/// every row once; the workflow table (a few rows, updated in place at completion) is re-read whole each poll.
/// Not thread-safe: use it from one thread.
public final class MetricsCollector {
    public struct Configuration: Sendable {
        public var path: String
        public var immutable = false
        public var runPrefixes: [String] = []
        public var latestRun = false
        /// Exact run ids to keep (in addition to the prefixes); nil keeps every run.
        public var runIDs: Set<String>? = nil
        public var timeZone: String? = nil
        public var batchSize = 8192
        public var busyTimeoutMilliseconds: Int32 = 1_000
        /// Where values that cannot be read are counted (the export's, so they are reported like every sink's).
        public var warnings: ValueWarnings? = nil
        /// The file an export opened: reading another one under its name (renamed over) is an error. Nil follows
        /// whatever file the path names, reading a new one from the start (`serve`).
        var sourceIdentity: FileIdentity? = nil

        public init(path: String) { self.path = path }

        /// The reading settings of an export request: the one place they are copied from.
        public init(request: ExportRequest) {
            path = request.databasePath
            immutable = request.immutable
            runPrefixes = request.runPrefixes
            latestRun = request.latestRun
            timeZone = request.timeZone
            batchSize = request.batchSize
            busyTimeoutMilliseconds = request.busyTimeoutMilliseconds
        }

        /// Reads what an export reads: its database with its settings, its runs, its clock, its warnings.
        public init(context: ExportContext) {
            if let request = context.request { self.init(request: request) } else { self.init(path: context.databasePath) }
            path = context.databasePath
            runPrefixes = []
            latestRun = false
            runIDs = Set(context.runs.map(\.runID))
            timeZone = context.timeZone
            warnings = context.warnings
            sourceIdentity = context.sourceIdentity
        }
    }

    public let configuration: Configuration
    public private(set) var aggregator: MetricsAggregator
    public private(set) var status = ExporterStatus()
    /// The values read from the file before it was replaced, kept until the new one has been read once.
    private var lastGood: (aggregator: MetricsAggregator, rowsRead: [String: Int])?
    private let options: PrometheusOptions

    private var reads: FollowingReads?
    private var identity: FileIdentity?
    private var lastSize: Int64 = 0
    private var marks: [String: Int64] = [:]
    private var selectedRuns: Set<String>?
    private var fingerprint: DatabaseFingerprint?
    /// Tries read without one of their three times, with whether they were launched or ran: Parsl updates their
    /// rows in place, in no fixed order (a failed try's returned time can come before its running time), so each
    /// poll reads them again.
    private var openTries: [OpenTry: Bool] = [:]

    private struct OpenTry: Hashable {
        var runID: String
        var taskID: Int64
        var tryID: Int64
    }
    private let zone: TimeZoneConversion?

    public init(configuration: Configuration, options: PrometheusOptions) throws {
        self.configuration = configuration
        aggregator = MetricsAggregator(options: options)
        self.options = options
        // Epoch-second metrics need a zone for naive timestamps: the host's unless the export names one.
        zone = try PrometheusOptions.naiveTimestampZone(given: configuration.timeZone).map { try TimeZoneConversion(identifier: $0) }
        status.initialReadDone = false
    }

    /// What to show: the values read, or, while a file that replaced the one read cannot be read, the last good
    /// values of the one before (`status.databaseUp` is then false).
    public var published: (aggregator: MetricsAggregator, status: ExporterStatus) {
        guard let lastGood else { return (aggregator, status) }
        var shown = status
        shown.rowsRead = lastGood.rowsRead
        shown.initialReadDone = true
        return (lastGood.aggregator, shown)
    }

    /// Reads what is new. On failure the aggregator keeps its values, `status.databaseUp` turns 0, and the next
    /// poll starts by reopening the file. A file replaced by another (new inode, or smaller) is read from scratch,
    /// or, when the configuration names the file to read (`sourceIdentity`), is an error.
    @discardableResult
    public func poll(final: Bool = false) throws -> Int {
        do {
            let rows = try readNewRows(final: final)
            status.databaseUp = true
            status.initialReadDone = true
            lastGood = nil
            return rows
        } catch {
            status.databaseUp = false
            status.readErrors += 1
            close()
            throw error
        }
    }

    private func close() { reads = nil }

    private func readNewRows(final: Bool) throws -> Int {
        var info = stat()
        guard stat(configuration.path, &info) == 0 else {
            throw ExportError(.inputMissing, "\(configuration.path): \(String(cString: strerror(errno)))")
        }
        let current = FileIdentity(info)
        if let expected = configuration.sourceIdentity, current != expected {
            throw FileIdentity.replacedError(configuration.path)
        }
        if let identity, identity != current || Int64(info.st_size) < lastSize {
            // Another file now has this name: start over rather than mix two databases.
            startOver()
        }
        identity = current
        lastSize = Int64(info.st_size)
        if reads == nil {
            let opened = try MonitoringDatabase(
                path: configuration.path, immutable: configuration.immutable,
                catalog: ExportPipeline.catalog(mappingsDirectory: nil),
                busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
            // The name may have moved to another file between the stat above and the open.
            guard opened.identity == current else { throw FileIdentity.replacedError(configuration.path) }
            try opened.checkSameFile()
            selectedRuns = try select(opened, final: final)
            reads = FollowingReads(database: opened, zone: zone, warnings: configuration.warnings)
        } else if configuration.latestRun, let reads, let latest = try? select(reads.database, final: final),
            latest != selectedRuns
        {
            // --latest follows the newest run: another one became the latest, so read from the start for it.
            aggregator.reset()
            marks = [:]
            openTries = [:]
            status.rowsRead = [:]
            selectedRuns = latest
        }
        let reads = reads!
        let database = reads.database
        let rowsRead = try database.guarded { () throws -> Int? in
            let (newMarks, newFingerprint) = try reads.read {
                (try reads.lastRowids(FollowingReads.appendedTables + ["workflow"]), try reads.fingerprint())
            }
            defer {
                // Parsl was still creating its tables when the file was opened: reopen to see the new ones.
                if let fingerprint, newFingerprint.schema.count > fingerprint.schema.count { close() }
                fingerprint = newFingerprint
            }
            // Rows vanished (Parsl never deletes) or other content: the file was rewritten in place.
            if newMarks.contains(where: { $0.value < (marks[$0.key] ?? 0) })
                || fingerprint.map(newFingerprint.replaces) == true
            {
                return nil
            }
            var rows = try readWorkflow(reads)
            try readOpenTries(reads)
            for table in FollowingReads.appendedTables {
                guard let mark = newMarks[table], mark > (marks[table] ?? 0) else { continue }
                rows += try read(table, reads, after: marks[table] ?? 0, upTo: mark)
            }
            try resolveAwaitedHosts(reads)
            try aggregator.endPoll(final: final)
            return rows
        }
        guard let rowsRead else {
            startOver()
            return try readNewRows(final: final)
        }
        return rowsRead
    }

    /// Forgets the file: the next read opens it again and reads every row. The values read so far stay on show
    /// (`published`) until that read succeeds.
    private func startOver() {
        close()
        if lastGood == nil, status.initialReadDone { lastGood = (aggregator, status.rowsRead) }
        aggregator = MetricsAggregator(options: options)
        marks = [:]
        openTries = [:]
        fingerprint = nil
        status.rowsRead = [:]
        status.initialReadDone = false
        status.databaseReplacements += 1
    }

    /// The runs to read: `--run` prefixes, `--latest` (while following a file, none until its first run), exact ids.
    private func select(_ database: MonitoringDatabase, final: Bool) throws -> Set<String>? {
        if configuration.latestRun, !final, try database.runs().isEmpty { return [] }
        var selected = try database.selectRuns(prefixes: configuration.runPrefixes, latest: configuration.latestRun)
            .map(Set.init)
        if let exact = configuration.runIDs { selected = selected.map { $0.intersection(exact) } ?? exact }
        return selected
    }

    /// Parsl fills in a try's hostname after writing its first resource samples; look up the tries still waiting.
    private func resolveAwaitedHosts(_ reads: FollowingReads) throws {
        for (runID, taskID, tryID) in aggregator.triesAwaitingHost {
            if let (host, block) = try reads.tryHost(runID: runID, taskID: taskID, tryID: tryID) {
                aggregator.resolveHost(runID: runID, taskID: taskID, tryID: tryID, host: host, block: block)
            }
        }
    }

    /// Reads the tries still open again. A try of a completed run that was never launched (memo_done, dep_fail)
    /// never will be: it is let go. (Parsl may write a try's last times after its run's completion, so launched
    /// tries stay until all their times have come.)
    private func readOpenTries(_ reads: FollowingReads) throws {
        guard !openTries.isEmpty else { return }
        let completed = Set(aggregator.runStates.filter(\.completed).map(\.runID))
        for open in openTries.keys {
            if let attempt = try reads.tryAttempt(runID: open.runID, taskID: open.taskID, tryID: open.tryID) {
                try aggregator.add(.tryAttempts([attempt]))
                track([attempt])
            }
            if completed.contains(open.runID), openTries[open] == false { openTries[open] = nil }
        }
    }

    private func track(_ tries: [TryAttempt]) {
        for attempt in tries {
            let key = OpenTry(runID: attempt.runID, taskID: attempt.taskID, tryID: attempt.tryID)
            let complete = attempt.launched != nil && attempt.running != nil && attempt.returned != nil
            openTries[key] = complete ? nil : (attempt.launched != nil || attempt.running != nil)
        }
    }

    private func selected(_ runID: String) -> Bool { selectedRuns?.contains(runID) ?? true }

    // MARK: Tables

    private func readWorkflow(_ reads: FollowingReads) throws -> Int {
        var count = 0
        let seen = marks["workflow"] ?? 0
        try reads.workflowRows { run, rowid in
            // Read whole (completion updates rows in place); only rows past the mark count as read.
            if rowid > seen {
                count += 1
                marks["workflow"] = max(marks["workflow"] ?? 0, rowid)
            }
            guard selected(run.runID) else { return }
            try aggregator.add(.runs([run]))
        }
        status.rowsRead["workflow", default: 0] += count
        return count
    }

    private func read(_ table: String, _ reads: FollowingReads, after: Int64, upTo mark: Int64) throws -> Int {
        var after = after
        var total = 0
        while true {
            // One SELECT, one short implicit read transaction, ended early once it has held the lock long enough;
            // the lock is dropped at reset.
            let batch = try reads.batch(of: table, after: after, upTo: mark, limit: configuration.batchSize, keep: selected)
            try aggregator.add(batch.events)
            if case .tryAttempts(let tries) = batch.events { track(tries) }
            after = batch.last
            total += batch.rows
            // Advance per batch: if a later batch fails, the next poll resumes here without counting rows twice.
            marks[table] = after
            if batch.rows < configuration.batchSize && !batch.stoppedEarly { break }
        }
        status.rowsRead[table, default: 0] += total
        return total
    }
}
