/// What the live gauges count as "now", and whose process a resource sample belongs to. The metrics, the
/// dashboard and the README all follow these rules.
public enum LiveState {
    /// Block statuses after which a block has no managers or workers any more (`JobState` names; `SCALED_IN`
    /// since 2024.08, `CANCELLED` before).
    public static let endedBlockStatuses: Set<String> = [
        "CANCELLED", "COMPLETED", "FAILED", "TIMEOUT", "MISSING", "SCALED_IN",
    ]

    /// A block whose latest status is one of ``endedBlockStatuses`` is over.
    public static func blockEnded(_ status: String) -> Bool { endedBlockStatuses.contains(status) }

    /// A worker process is current when its run has not completed, its block (its try's block) has not ended,
    /// and it was sampled within `window` before `now` (samples are only taken while a try runs, so an idle worker
    /// drops out after the window).
    public static func processIsCurrent(
        lastSample: Int64, runCompleted: Bool, blockEnded: Bool, now: Int64, windowSeconds: Double
    ) -> Bool {
        !runCompleted && !blockEnded && lastSample >= now - Int64(windowSeconds * 1e6)
    }
}

/// Resource samples folded per worker process.
///
/// The host of a sample is the hostname of the try it was taken in (`try.hostname`), and nothing else. Parsl
/// writes the samples of a try before its deferred update of that hostname, so a sample whose try has no host
/// yet waits under its try and joins its process, keyed by (run, host, pid), once the host is known. Folding is
/// order-independent (latest sample wins for memory, the maximum for cumulative CPU), so reading a file in one
/// pass or following it row by row gives the same processes.
struct WorkerProcesses {
    struct Key: Hashable, Comparable {
        var run: Int32
        var host: UInt32
        var pid: Int64

        static func < (a: Key, b: Key) -> Bool { (a.run, a.host, a.pid) < (b.run, b.host, b.pid) }
    }

    struct TryKey: Hashable {
        var run: Int32
        var task: Int64
        var attempt: Int64
    }

    struct Process {
        var lastSample = Int64.min
        var residentBytes: Double = 0
        var cpuSeconds: Double = 0
        var samples = 0
        /// The block of the try of its latest sample (nil where the schema has none).
        var block: String?

        /// Memory of the latest sample (the larger on a tie); CPU time is cumulative per process, so the
        /// maximum keeps the counter monotonic.
        mutating func fold(_ other: Process) {
            if other.lastSample > lastSample || (other.lastSample == lastSample && other.residentBytes > residentBytes) {
                lastSample = other.lastSample
                residentBytes = other.residentBytes
                block = other.block ?? block
            }
            cpuSeconds = max(cpuSeconds, other.cpuSeconds)
            samples += other.samples
        }
    }

    private(set) var processes: [Key: Process] = [:]
    private(set) var awaitingHost: [TryKey: [Int64: Process]] = [:]

    /// Adds one sample. `host` nil: its try has no hostname yet.
    mutating func add(_ sample: Process, run: Int32, pid: Int64, host: UInt32?, of tryKey: TryKey) {
        if let host {
            processes[Key(run: run, host: host, pid: pid), default: Process()].fold(sample)
        } else {
            awaitingHost[tryKey, default: [:]][pid, default: Process()].fold(sample)
        }
    }

    /// The try's host (and block, written with it) is known now: its waiting samples join their processes.
    mutating func resolve(_ tryKey: TryKey, host: UInt32, block: String?) {
        guard let waiting = awaitingHost.removeValue(forKey: tryKey) else { return }
        for (pid, var sample) in waiting {
            sample.block = block
            processes[Key(run: tryKey.run, host: host, pid: pid), default: Process()].fold(sample)
        }
    }

    var samplesAwaitingHost: Int { awaitingHost.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.samples } } }
}
