#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
        static let onWorkerLane = Flags(rawValue: 1 << 4)
        /// The deciding status is a terminal one.
        static let terminalState = Flags(rawValue: 1 << 5)
    }
}

/// One `TrySlot` (64 bytes) per try of a run, addressed by (task id, try id). Slots live in pages of which at most
/// `cachedPages` (24 MB) are in memory; the others go to an unlinked temporary file, so memory stays the same whatever
/// the number of tries. The passes visit tries roughly in submission order, so a run of 100k tasks fits in memory
/// and a larger one pages through a window of recent tasks.
final class TrySlots {
    private let slotsPerPage: Int
    private var pageBytes: Int { slotsPerPage * MemoryLayout<TrySlot>.stride }

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

    private struct Page {
        var number: Int
        var slots: UnsafeMutablePointer<TrySlot>
        var lastUse: UInt64
        var dirty: Bool
    }

    private var pages: [Page] = []
    private var pageOfNumber: [Int: Int] = [:]
    private var onDisk = Set<Int>()
    private var clock: UInt64 = 0
    private let cachedPages: Int
    private let spillDirectory: String
    private var file: Int32 = -1
    private var lastPage = -1
    private var lastIndex = -1

    /// The largest task id of the run is `lastTask`, the largest try id `lastTry`; `count` is the number of tries.
    init(
        firstTask: Int64, lastTask: Int64, lastTry: Int64, count: Int64, cachedPages: Int = 192, slotsPerPage: Int = 2048,
        spillDirectory: String
    ) {
        self.slotsPerPage = max(slotsPerPage, 1)
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
        self.cachedPages = max(cachedPages, 2)
        self.spillDirectory = spillDirectory
    }

    deinit {
        for page in pages { page.slots.deallocate() }
        if file >= 0 { close(file) }
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

    func read(_ index: Int) throws -> TrySlot { try pointer(index, writing: false).pointee }

    func update(_ index: Int, _ body: (inout TrySlot) -> Void) throws {
        body(&(try pointer(index, writing: true).pointee))
    }

    @inline(__always)
    private func pointer(_ index: Int, writing: Bool) throws -> UnsafeMutablePointer<TrySlot> {
        let number = index / slotsPerPage
        if number != lastPage { try load(number) }
        clock &+= 1
        pages[lastIndex].lastUse = clock
        if writing { pages[lastIndex].dirty = true }
        return pages[lastIndex].slots + index % slotsPerPage
    }

    private func load(_ number: Int) throws {
        if let cached = pageOfNumber[number] {
            lastPage = number
            lastIndex = cached
            return
        }
        let slot: Int
        if pages.count < cachedPages {
            let memory = UnsafeMutablePointer<TrySlot>.allocate(capacity: slotsPerPage)
            pages.append(Page(number: number, slots: memory, lastUse: 0, dirty: false))
            slot = pages.count - 1
        } else {
            slot = pages.indices.min { pages[$0].lastUse < pages[$1].lastUse }!
            let victim = pages[slot]
            if victim.dirty {
                try transfer(victim.slots, page: victim.number, write: true)
                onDisk.insert(victim.number)
            }
            pageOfNumber[victim.number] = nil
            pages[slot].number = number
            pages[slot].dirty = false
        }
        if onDisk.contains(number) {
            try transfer(pages[slot].slots, page: number, write: false)
        } else {
            pages[slot].slots.initialize(repeating: TrySlot(), count: slotsPerPage)
        }
        pageOfNumber[number] = slot
        lastPage = number
        lastIndex = slot
    }

    private func transfer(_ slots: UnsafeMutablePointer<TrySlot>, page: Int, write: Bool) throws {
        if file < 0 {
            var template = Array((spillDirectory + "/.parsl-export-trace-XXXXXX").utf8CString)
            file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard file >= 0 else {
                throw ExportError(.outputFailed, "\(spillDirectory): cannot create a temporary file (\(String(cString: strerror(errno))))")
            }
            // Unlinked at once: the space returns to the system however the process ends.
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        let offset = off_t(page) * off_t(pageBytes)
        var done = 0
        let raw = UnsafeMutableRawPointer(slots)
        while done < pageBytes {
            let result =
                write
                ? pwrite(file, raw + done, pageBytes - done, offset + off_t(done))
                : pread(file, raw + done, pageBytes - done, offset + off_t(done))
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                throw ExportError(.outputFailed, "\(spillDirectory): temporary file: \(String(cString: strerror(errno)))")
            }
            done += result
        }
    }
}
