/// What the trace keeps of one try between its passes: where the layout put it and what its status rows decided.
struct TrySlot {
    var start: Int64 = 0
    var end: Int64 = 0
    /// Time of the status row that decides the final state so far.
    var stateTime: Int64 = .min
    /// From the try's resource samples: peak resident bytes (.min: none), least and most cumulative CPU seconds
    /// (NaN: none), worker pid (.min: none).
    var peakRSS: Int64 = .min
    var cpuLow: Double = .nan
    var cpuHigh: Double = .nan
    /// Index into the layout's processes.
    var process: Int32 = 0
    /// A shared lane's index, or the worker pid whose lane the try took (`flags` tells which).
    var lane: Int32 = 0
    var workerPID: Int32 = .min
    /// Interned final state, -1 while no status row names one.
    var state: Int16 = -1
    var flags: Flags = []

    struct Flags: OptionSet {
        let rawValue: UInt16
        /// The try table has this try.
        static let present = Flags(rawValue: 1 << 0)
        /// The try has a span, so a process and a lane.
        static let placed = Flags(rawValue: 1 << 1)
        static let ran = Flags(rawValue: 1 << 2)
        /// Unfinished: still open at the end of its span.
        static let open = Flags(rawValue: 1 << 3)
        /// Its execution (running → end) is also on its worker's lane.
        static let executionOnWorkerLane = Flags(rawValue: 1 << 4)
        /// The deciding status is a terminal one.
        static let terminalState = Flags(rawValue: 1 << 5)
    }
}

/// One `TrySlot` (64 bytes) per try of a run, addressed by (task id, try id), in `PagedRecords` of which at most
/// `cachedPages` (16 MB by default) are in memory, so memory stays the same whatever the number of tries. The passes visit
/// tries roughly in submission order, so a run of 100k tasks fits in memory and a larger one pages through a
/// window of recent tasks.
final class TrySlots {
    private let records: PagedRecords<TrySlot>

    /// Dense: slot = (task - firstTask) × tryStride + try. Sparse (ids too scattered): a dictionary, filled as
    /// the layout pass meets the tries.
    private let firstTask: Int64
    private let tryStride: Int64
    private let denseCount: Int64
    private var sparse: [Key: Int]?

    private struct Key: Hashable {
        var task: Int64
        var attempt: Int64
    }

    /// The largest task id of the run is `lastTask`, the largest try id `lastTry`; `count` is the number of tries.
    init(
        firstTask: Int64, lastTask: Int64, lastTry: Int64, count: Int64, cachedPages: Int = 128, slotsPerPage: Int = 2048,
        spillDirectory: String
    ) {
        let stride = max(1, lastTry + 1)
        let span = lastTask >= firstTask ? lastTask - firstTask + 1 : 0
        let (dense, overflow) = span.multipliedReportingOverflow(by: stride)
        // Scattered ids would make the dense file mostly holes: fall back to a map, whose size follows the tries.
        if !overflow && lastTry >= 0 && dense <= max(4 * count, 1 << 20) {
            self.firstTask = firstTask
            tryStride = stride
            denseCount = dense
        } else {
            self.firstTask = 0
            tryStride = 1
            denseCount = 0
            sparse = [:]
        }
        records = PagedRecords(
            recordsPerPage: slotsPerPage, cachedPages: cachedPages, empty: TrySlot(), spillDirectory: spillDirectory,
            purpose: "trace")
    }

    /// The slot index of a try, or nil when the run has no such try (and, when `create`, room for it otherwise).
    func index(task: Int64, try attempt: Int64, create: Bool = false) -> Int? {
        if sparse != nil {
            let key = Key(task: task, attempt: attempt)
            if let index = sparse![key] { return index }
            guard create else { return nil }
            let index = sparse!.count
            sparse![key] = index
            return index
        }
        guard attempt >= 0, attempt < tryStride, task >= firstTask else { return nil }
        let index = (task - firstTask) * tryStride + attempt
        return index < denseCount ? Int(index) : nil
    }

    /// Indexes of the tries of `task` that the try table has, in try order.
    func tries(of task: Int64) throws -> [Int] {
        var candidates: [Int] = []
        if sparse != nil {
            // Try ids count up from 0 in Parsl; the map is only for scattered task ids.
            var attempt: Int64 = 0
            while let index = index(task: task, try: attempt) {
                candidates.append(index)
                attempt += 1
            }
        } else if let first = index(task: task, try: 0) {
            candidates = Array(first..<first + Int(tryStride))
        }
        return try candidates.filter { try read($0).flags.contains(.present) }
    }

    func read(_ index: Int) throws -> TrySlot { try records.read(index) }

    func update(_ index: Int, _ body: (inout TrySlot) -> Void) throws { try records.update(index, body) }
}
