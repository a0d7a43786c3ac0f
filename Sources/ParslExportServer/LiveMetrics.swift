#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import ExpositionFormat
import ParslExport

/// Follows a database that Parsl may still be writing, on a dispatch queue of its own: the SQLite reads and the
/// rendering never run on the HTTP event loops. Each read publishes both formats under a mutex; a scrape takes a
/// published body, after asking for a read that started after the scrape arrived (so it shows every row committed
/// before it), or the latest body when that read takes too long.
public final class LiveMetrics: Sendable {
    public struct Snapshot: Sendable {
        public var text: [UInt8]
        public var openMetrics: [UInt8]
        /// Number of the read that produced it (0: none finished yet).
        public var read: UInt64
        public var databaseUp: Bool
        public var initialReadDone: Bool

        public func body(_ format: ExpositionFormat) -> [UInt8] { format == .openMetrics ? openMetrics : text }
    }

    private struct State {
        var snapshot: Snapshot
        var readsStarted: UInt64 = 0
        var waiters: [UInt64: (needed: UInt64, continuation: CheckedContinuation<Void, Never>)] = [:]
        var nextWaiter: UInt64 = 0
        var wakeRequested = false
        var stopping = false
        var lastError: String?
    }

    /// What the reader last told the log, to say only what changed. Touched only on `queue`.
    private struct LogState {
        var lastFailure: String?
        var everRead = false
        var runs: [String: Bool] = [:]
        var replacements = 0
    }
    nonisolated(unsafe) private var logState = LogState()

    private let state: Locked<State>
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let queue = DispatchQueue(label: "parsl-export.reader")
    private let interval: Duration
    private let log: @Sendable (String) -> Void
    /// Touched only on `queue`.
    nonisolated(unsafe) private let collector: MetricsCollector

    /// - Parameters:
    ///   - interval: how often to read when nobody scrapes, so a scrape's own read stays small.
    ///   - log: one line per change of database health (not per failed read).
    public init(
        configuration: MetricsCollector.Configuration, options: PrometheusOptions, interval: Duration = .seconds(5),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        collector = try MetricsCollector(configuration: configuration, options: options)
        self.interval = interval
        self.log = log
        // Until the first read finishes, scrapes get the exporter's own metrics with initial_read_done 0.
        var status = ExporterStatus()
        status.initialReadDone = false
        status.databaseUp = false
        let empty = MetricsAggregator(options: options)
        let snapshot = Snapshot(
            text: (try? empty.render(.prometheusText, status: status)) ?? [],
            openMetrics: (try? empty.render(.openMetrics, status: status)) ?? [],
            read: 0, databaseUp: false, initialReadDone: false)
        state = Locked(State(snapshot: snapshot))
    }

    public func start() {
        queue.async { self.loop() }
    }

    /// Stops the reader and waits for the read in progress to end; pending scrapes get the latest body.
    public func stop() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopping = true
            let all = state.waiters.values.map(\.continuation)
            state.waiters = [:]
            return all
        }
        for waiter in waiters { waiter.resume() }
        wake.signal()
        stopped.wait()
    }

    public var current: Snapshot { state.withLock { $0.snapshot } }

    /// A body that includes every row committed before this call, or after `timeout` the latest one. Before the
    /// first read has finished it answers at once (the endpoint must answer while a big database loads).
    public func snapshot(timeout: Duration) async -> Snapshot {
        let (id, mustWait) = state.withLock { state -> (UInt64, Bool) in
            guard state.snapshot.initialReadDone, !state.stopping else { return (0, false) }
            state.nextWaiter += 1
            return (state.nextWaiter, true)
        }
        guard mustWait else { return current }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let wake = self.state.withLock { state -> Bool in
                        state.waiters[id] = (state.readsStarted + 1, continuation)
                        defer { state.wakeRequested = true }
                        return !state.wakeRequested
                    }
                    if wake { self.wake.signal() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.continuation.resume()
            }
            await group.next()
            group.cancelAll()
        }
        // The timeout task may still be sleeping; resuming twice is prevented by removeValue above.
        return current
    }

    // MARK: Reader

    /// What changed since the last read, one line each: health, a replaced file, runs that appeared or completed.
    private func logLines(failure: String?, status: ExporterStatus) -> [String] {
        var lines: [String] = []
        if status.databaseReplacements != logState.replacements {
            logState.replacements = status.databaseReplacements
            logState.runs = [:]
            lines.append("the database file was replaced by another one; reading it from the start")
        }
        if failure != logState.lastFailure {
            if let failure {
                lines.append(
                    logState.everRead
                        ? "database unreadable, serving the last good values: \(failure)"
                        : "database not readable yet, serving only the exporter's own metrics: \(failure)")
            } else {
                lines.append("database readable")
            }
            logState.lastFailure = failure
        }
        if failure == nil { logState.everRead = true }
        var current: [String: Bool] = [:]
        for (runID, completed) in collector.published.aggregator.runStates {
            current[runID] = completed
            switch (logState.runs[runID], completed) {
            case (nil, false): lines.append("run \(runID) appeared")
            case (nil, true): lines.append("run \(runID) read (completed)")
            case (false?, true): lines.append("run \(runID) completed")
            default: break
            }
        }
        // Runs can go (--latest moved on); they are not logged, the next one is.
        logState.runs = current
        return lines
    }

    private func loop() {
        let clock = ContinuousClock()
        while true {
            let read = state.withLock { state -> UInt64? in
                if state.stopping { return nil }
                state.readsStarted += 1
                state.wakeRequested = false
                return state.readsStarted
            }
            guard let read else { break }
            let started = clock.now
            var failure: String? = nil
            do {
                try collector.poll()
            } catch {
                failure = "\(error)"
            }
            // The last good values while a file that replaced the one read cannot be read (see `published`).
            let published = collector.published
            let aggregator = published.aggregator
            var status = published.status
            status.readTime = ExporterStatus.wallClockMicros()
            let body: (text: [UInt8], openMetrics: [UInt8])
            do {
                let elapsed = clock.now - started
                status.scrapeSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                body = (
                    try aggregator.render(.prometheusText, status: status),
                    try aggregator.render(.openMetrics, status: status)
                )
            } catch {
                // A render error is a bug in the metric definitions; keep the last good body.
                failure = "cannot render metrics: \(error)"
                body = (current.text, current.openMetrics)
            }
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.snapshot = Snapshot(
                    text: body.text, openMetrics: body.openMetrics, read: read, databaseUp: status.databaseUp,
                    initialReadDone: status.initialReadDone)
                let done = state.waiters.filter { $0.value.needed <= read }
                for id in done.keys { state.waiters[id] = nil }
                state.lastError = failure
                return done.values.map(\.continuation)
            }
            for continuation in ready { continuation.resume() }
            for line in logLines(failure: failure, status: status) { log(line) }
            let wait = interval.components
            let nanoseconds = Int(wait.seconds) * 1_000_000_000 + Int(wait.attoseconds / 1_000_000_000)
            _ = wake.wait(timeout: .now() + .nanoseconds(nanoseconds))
        }
        stopped.signal()
    }
}
