/// Where things go in the trace: a process per executor block, thread lanes inside it. Perfetto drops a slice
/// that partially overlaps another on its thread, so lanes are packed so that this cannot happen. The layout pass
/// feeds the tries in start order (`place`); `finish` then numbers processes and threads for display.
struct TraceLayout {
    struct Thread {
        var tid: Int
        var name: String
    }

    struct Process {
        enum Kind: Comparable {
            /// The run itself: its start and end as instants across the whole trace.
            case workflow
            /// Block lifecycles, one thread per block.
            case blocks
            /// One executor block: tries on worker lanes, resource and node counters.
            case block
            /// An executor without blocks (thread pools, Parsl's internal executor for join_app bodies).
            case executor
            /// Tries that never ran (memo_done, dep_fail, still waiting in a crashed run).
            case notRun
        }

        var kind: Kind
        var executor: String
        var block: String
        var host: String?
        var pid = 0
        var threads: [Thread] = []
        var lanes = LanePacker()
        /// Worker pid → tid, once `finish` has numbered the lanes.
        var workerTID: [Int32: Int] = [:]

        var name: String {
            switch kind {
            case .workflow: "workflow " + executor
            case .blocks: "blocks"
            case .block: (executor.isEmpty ? "" : executor + " ") + "block \(block)" + (host.map { " @ \($0)" } ?? "")
            case .executor: "\(executor) (no blocks)"
            case .notRun: "not run (memoized, dependency failed, waiting)"
            }
        }
    }

    /// Blocks are named by executor (absent in node rows and in the oldest try rows) and block id.
    struct BlockKey: Hashable {
        var executor: String?
        var block: String?
    }

    private(set) var processes: [Process] = []
    private var blockProcess: [BlockKey: Int] = [:]
    private var executorProcess: [String?: Int] = [:]
    /// Block process of each block id alone, for node rows, which do not name their executor.
    private(set) var processForBlockID: [String?: Int] = [:]
    /// The lifecycle thread of each block on the "blocks" process.
    private(set) var blockLifecycleThread: [BlockKey: Int] = [:]
    private(set) var notRunProcess: Int?
    private(set) var blocksProcess: Int?
    let workflowProcess = 0

    init(workflowName: String) {
        processes.append(Process(kind: .workflow, executor: workflowName, block: ""))
    }

    /// The process of a try that ran on `executor` and `block`, or of one that never ran.
    mutating func process(ran: Bool, executor: String?, block: String?, host: String?) -> Int {
        if !ran {
            if let notRunProcess { return notRunProcess }
            processes.append(Process(kind: .notRun, executor: "", block: ""))
            notRunProcess = processes.count - 1
            return processes.count - 1
        }
        if block != nil {
            let index = blockProcess(BlockKey(executor: executor, block: block))
            if processes[index].host == nil { processes[index].host = host }
            return index
        }
        if let known = executorProcess[executor] { return known }
        processes.append(Process(kind: .executor, executor: executor ?? "?", block: ""))
        executorProcess[executor] = processes.count - 1
        return processes.count - 1
    }

    /// The process of a block, if the layout has one.
    func existingBlockProcess(_ key: BlockKey) -> Int? { blockProcess[key] }

    mutating func setHost(_ process: Int, _ host: String?) {
        if processes[process].host == nil { processes[process].host = host }
    }

    mutating func blockProcess(_ key: BlockKey) -> Int {
        if let index = blockProcess[key] { return index }
        processes.append(Process(kind: .block, executor: key.executor ?? "", block: key.block ?? "?"))
        blockProcess[key] = processes.count - 1
        if processForBlockID[key.block] == nil { processForBlockID[key.block] = processes.count - 1 }
        return processes.count - 1
    }

    /// A block named by node rows, which give its host but not its executor.
    mutating func nodeBlock(_ block: String?, host: String?) {
        let index = processForBlockID[block] ?? blockProcess(BlockKey(executor: nil, block: block))
        if processes[index].host == nil { processes[index].host = host }
    }

    /// A block with lifecycle rows: a process of its own and a thread on the "blocks" process.
    mutating func lifecycleBlock(_ key: BlockKey) {
        _ = blockProcess(key)
        if blocksProcess == nil {
            processes.append(Process(kind: .blocks, executor: "", block: ""))
            blocksProcess = processes.count - 1
        }
        if blockLifecycleThread[key] == nil { blockLifecycleThread[key] = 0 }
    }

    /// Places a try on a shared lane of `process`, and its execution (running → end) on the lane of its worker
    /// when the worker is known and free then. Tries must come in start order.
    mutating func place(
        process: Int, start: Int64, end: Int64, execution: (workerPID: Int32, from: Int64)?
    ) -> (lane: Int32, executionOnWorker: Bool) {
        let lane = processes[process].lanes.place(start: start, end: end)
        guard processes[process].kind == .block, let execution, execution.from < end else { return (lane, false) }
        let placed = processes[process].lanes.occupyWorker(execution.workerPID, from: execution.from, to: end)
        return (lane, placed)
    }

    /// Names the lanes and numbers processes in display order: lifecycles, blocks by executor and number,
    /// executors, never-ran.
    mutating func finish() {
        for index in processes.indices {
            let workers = processes[index].lanes.workers.sorted()
            for (offset, pid) in workers.enumerated() {
                processes[index].threads.append(Thread(tid: offset + 1, name: "worker \(pid)"))
                processes[index].workerTID[pid] = offset + 1
            }
            for lane in 0..<Int(processes[index].lanes.sharedCount) {
                processes[index].threads.append(Thread(tid: workers.count + lane + 1, name: "lane \(lane + 1)"))
            }
        }
        if let blocksProcess {
            let ordered = blockLifecycleThread.keys.sorted { a, b in
                if (a.executor ?? "") != (b.executor ?? "") { return (a.executor ?? "") < (b.executor ?? "") }
                return Self.numericOrder(a.block ?? "", b.block ?? "")
            }
            for (offset, key) in ordered.enumerated() {
                blockLifecycleThread[key] = offset + 1
                let name = "\(key.executor ?? "?") block \(key.block ?? "?")"
                processes[blocksProcess].threads.append(Thread(tid: offset + 1, name: name))
            }
        }
        let order = processes.indices.sorted { lhs, rhs in
            let a = processes[lhs]
            let b = processes[rhs]
            if a.kind != b.kind { return a.kind < b.kind }
            if a.executor != b.executor { return a.executor < b.executor }
            return Self.numericOrder(a.block, b.block)
        }
        for (position, index) in order.enumerated() { processes[index].pid = position + 1 }
        for index in processes.indices {
            let pid = processes[index].pid
            for thread in processes[index].threads.indices {
                processes[index].threads[thread].tid = Self.tid(processes[index].threads[thread].tid, avoiding: pid)
            }
            processes[index].workerTID = processes[index].workerTID.mapValues { Self.tid($0, avoiding: pid) }
        }
        if let blocksProcess {
            let pid = processes[blocksProcess].pid
            blockLifecycleThread = blockLifecycleThread.mapValues { Self.tid($0, avoiding: pid) }
        }
    }

    /// Thread numbers skip their process's pid: Perfetto takes the thread whose tid equals the pid for the
    /// process's main thread and lists it first, whatever its sort index.
    static func tid(_ number: Int, avoiding pid: Int) -> Int { number >= pid ? number + 1 : number }

    /// The shared lane a try was placed on.
    func tid(process: Int, lane: Int32) -> Int {
        Self.tid(processes[process].workerTID.count + Int(lane) + 1, avoiding: processes[process].pid)
    }

    /// The lane of a worker of a block process.
    func workerTID(process: Int, workerPID: Int32) -> Int { processes[process].workerTID[workerPID] ?? 1 }

    /// Block ids are numbers in text: "2" before "10".
    static func numericOrder(_ a: String, _ b: String) -> Bool {
        switch (Int(a), Int(b)) {
        case (let x?, let y?): x < y
        case (.some, nil): true
        case (nil, .some): false
        case (nil, nil): a < b
        }
    }
}

/// Lanes of one process, assigned as tries arrive in start order. A try's whole life (launched → returned) takes
/// the lowest-numbered free shared lane (greedy interval partitioning: optimal in the number of lanes); HTEX
/// launches tries long before a worker runs them, so these spans overlap and need lanes of their own. What a
/// worker did is shown on its own lane: each try's execution (running → returned), when the worker is free by
/// then (a worker runs one task at a time, but its start and end come from different clocks). "Free" is strict,
/// so that an instant at the end of one slice never lands inside the next.
struct LanePacker {
    private var workerBusyUntil: [Int32: Int64] = [:]
    private(set) var sharedCount: Int32 = 0
    private var busy = MinHeap<Busy>()
    private var free = MinHeap<Int32>()

    /// A shared lane in use until `end`.
    private struct Busy: Comparable {
        var end: Int64
        var lane: Int32
        static func < (a: Busy, b: Busy) -> Bool { (a.end, a.lane) < (b.end, b.lane) }
    }

    /// Workers with at least one execution on their lane.
    var workers: Dictionary<Int32, Int64>.Keys { workerBusyUntil.keys }

    /// A shared lane for a try's whole span.
    mutating func place(start: Int64, end: Int64) -> Int32 {
        while let top = busy.peek, top.end < start {
            busy.pop()
            free.push(top.lane)
        }
        let lane: Int32
        if let reused = free.pop() {
            lane = reused
        } else {
            lane = sharedCount
            sharedCount += 1
        }
        busy.push(Busy(end: end, lane: lane))
        return lane
    }

    /// Puts an execution on its worker's lane if the lane is free before `from`.
    mutating func occupyWorker(_ pid: Int32, from: Int64, to: Int64) -> Bool {
        if let until = workerBusyUntil[pid], until >= from { return false }
        workerBusyUntil[pid] = to
        return true
    }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var peek: Element? { items.first }

    mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count && items[left] < items[smallest] { smallest = left }
            if right < items.count && items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
