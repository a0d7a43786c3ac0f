/// Where each try of a run goes in the trace: a process per executor block, thread lanes inside it, and the span
/// each try occupies. Perfetto drops a slice that partially overlaps another on its thread, so lanes are packed
/// so that this cannot happen.
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

    private(set) var processes: [Process] = []
    /// Block process by (executor, block) interned ids.
    private(set) var blockProcess: [BlockKey: Int] = [:]
    /// The lifecycle thread of each block on the "blocks" process.
    private(set) var blockLifecycleThread: [BlockKey: Int] = [:]
    /// Try indexes sorted by (task, try): a lookup table without a dictionary's memory.
    private(set) var byKey: [Int32] = []
    /// Block process of each block id alone, for node rows, which do not name their executor.
    private(set) var processForBlockID: [Int32: Int] = [:]
    private(set) var notRunProcess: Int?

    struct BlockKey: Hashable {
        var executor: Int32
        var block: Int32
    }

    /// Computes every try's span and lane. `data.tries` is updated in place (start, end, open, process, tid).
    init(_ data: TraceRunData) {
        let lastSeen = data.lastSeen
        let runOpen = data.run.isUnfinished
        byKey = data.tries.indices.map { Int32($0) }
        byKey.sort {
            (data.tries[Int($0)].taskID, data.tries[Int($0)].tryID) < (
                data.tries[Int($1)].taskID, data.tries[Int($1)].tryID
            )
        }

        // Never-ran tries have no launched→returned span of their own: use their status rows too.
        var statusRange: [Int: (Int64, Int64)] = [:]
        for status in data.statuses {
            guard let index = find(data, task: status.taskID, attempt: Int32(status.tryID)), !data.tries[index].ran
            else { continue }
            let range = statusRange[index] ?? (status.time, status.time)
            statusRange[index] = (min(range.0, status.time), max(range.1, status.time))
        }

        var placeable: [Int32] = []
        for index in data.tries.indices {
            var entry = data.tries[index]
            var times: [Int64] = [entry.launched, entry.running, entry.returned].filter { $0 != traceMissing }
            if !entry.ran, let range = statusRange[index] { times += [range.0, range.1] }
            guard let first = times.min(), let latest = times.max() else { continue }
            // Slice from the first moment of the try; an inverted running-before-launched pair starts at running.
            entry.start = first
            if entry.returned != traceMissing && entry.ran {
                entry.end = max(entry.returned, first)
            } else if entry.unfinishedState && runOpen {
                // A crashed run: the try is still open at the last moment the database saw anything.
                entry.end = max(lastSeen, first)
                entry.open = true
            } else {
                entry.end = latest
                entry.open = entry.unfinishedState && entry.returned == traceMissing
            }
            data.tries[index] = entry
            placeable.append(Int32(index))
        }

        // Processes.
        processes.append(Process(kind: .workflow, executor: data.run.workflowName ?? data.run.runID, block: ""))
        if !data.blocks.isEmpty {
            processes.append(Process(kind: .blocks, executor: "", block: ""))
        }
        var executorProcess: [Int32: Int] = [:]
        func blockProcessIndex(_ key: BlockKey) -> Int {
            if let index = blockProcess[key] { return index }
            processes.append(
                Process(
                    kind: .block,
                    executor: data.strings[key.executor] ?? "",
                    block: data.strings[key.block] ?? "?"
                )
            )
            blockProcess[key] = processes.count - 1
            if processForBlockID[key.block] == nil { processForBlockID[key.block] = processes.count - 1 }
            return processes.count - 1
        }
        for index in placeable.lazy.map({ Int($0) }) {
            let entry = data.tries[index]
            let process: Int
            if !entry.ran {
                if notRunProcess == nil {
                    processes.append(Process(kind: .notRun, executor: "", block: ""))
                    notRunProcess = processes.count - 1
                }
                process = notRunProcess!
            } else if entry.block >= 0 {
                process = blockProcessIndex(BlockKey(executor: entry.executor, block: entry.block))
                if processes[process].host == nil { processes[process].host = data.strings[entry.host] }
            } else if let known = executorProcess[entry.executor] {
                process = known
            } else {
                processes.append(Process(kind: .executor, executor: data.strings[entry.executor] ?? "?", block: ""))
                process = processes.count - 1
                executorProcess[entry.executor] = process
            }
            data.tries[index].process = Int32(process)
        }
        for row in data.blocks {
            _ = blockProcessIndex(BlockKey(executor: row.executor, block: row.block))
        }
        for (block, host) in data.nodeHosts.sorted(by: { $0.key < $1.key }) {
            // A block seen only in node rows (which do not name the executor), or none at all (old node rows).
            let process = processForBlockID[block] ?? blockProcessIndex(BlockKey(executor: -1, block: block))
            if processes[process].host == nil { processes[process].host = data.strings[host] }
        }
        for row in data.nodes where processForBlockID[row.block] == nil {
            _ = blockProcessIndex(BlockKey(executor: -1, block: row.block))
        }

        // Lanes: each worker pid has a lane of its own, which a try takes when it is free at the try's start;
        // tries whose pid is unknown, or whose worker lane is taken (HTEX launches tries long before a worker runs
        // them, so launched→returned spans of one worker overlap), are packed into the fewest shared lanes.
        var members: [Int: [Int32]] = [:]
        for index in placeable { members[Int(data.tries[Int(index)].process), default: []].append(index) }
        for (process, indexes) in members {
            let usesWorkers = processes[process].kind == .block
            let (workers, shared) = Self.pack(indexes, in: &data.tries, byWorker: usesWorkers)
            for (offset, pid) in workers.enumerated() {
                processes[process].threads.append(Thread(tid: offset + 1, name: "worker \(pid)"))
            }
            for lane in 0..<shared {
                processes[process].threads.append(Thread(tid: workers.count + Int(lane) + 1, name: "lane \(lane + 1)"))
            }
            // pack() left worker lanes as -(rank + 1) and shared lanes as their index.
            for index in indexes.lazy.map({ Int($0) }) {
                let lane = data.tries[index].tid
                data.tries[index].tid = lane < 0 ? -lane : Int32(workers.count) + lane + 1
            }
        }

        // Block lifecycle threads, one per block, in block order.
        if let blocksIndex = processes.firstIndex(where: { $0.kind == .blocks }) {
            let keys = Set(data.blocks.map { BlockKey(executor: $0.executor, block: $0.block) })
            let ordered = keys.sorted { Self.blockOrder(data, $0, $1) }
            for (offset, key) in ordered.enumerated() {
                blockLifecycleThread[key] = offset + 1
                let name = "\(data.strings[key.executor] ?? "?") block \(data.strings[key.block] ?? "?")"
                processes[blocksIndex].threads.append(Thread(tid: offset + 1, name: name))
            }
        }

        // Process ids in display order: lifecycles, blocks by executor and number, executors, never-ran.
        let order = processes.indices.sorted { lhs, rhs in
            let a = processes[lhs]
            let b = processes[rhs]
            if a.kind != b.kind { return a.kind < b.kind }
            if a.executor != b.executor { return a.executor < b.executor }
            return Self.numericOrder(a.block, b.block)
        }
        for (position, index) in order.enumerated() { processes[index].pid = position + 1 }
    }

    /// The try `attempt` of `task`, by binary search.
    func find(_ data: TraceRunData, task: Int32, attempt: Int32) -> Int? {
        let range = attempts(data, of: task)
        for position in range where data.tries[Int(byKey[position])].tryID == attempt { return Int(byKey[position]) }
        return nil
    }

    /// The positions in `byKey` of the tries of `task`, in try order.
    func attempts(_ data: TraceRunData, of task: Int32) -> Range<Int> {
        var low = 0
        var high = byKey.count
        while low < high {
            let middle = (low + high) / 2
            if data.tries[Int(byKey[middle])].taskID < task { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < byKey.count && data.tries[Int(byKey[end])].taskID == task { end += 1 }
        return low..<end
    }

    /// Assigns lanes in start order. With `byWorker`, a try with a known worker pid takes that worker's lane when
    /// the lane is free before the try starts. Everything else takes the lowest-numbered free shared lane (greedy
    /// interval partitioning: optimal in the number of lanes). "Free" is strict, so that an instant at the end of
    /// one try never lands inside the next. Marks worker lanes as -(rank of the pid + 1) and shared lanes by index
    /// in `tid`; returns the worker pids in lane order and the number of shared lanes.
    private static func pack(
        _ members: [Int32],
        in tries: inout ChunkedArray<TraceTry>,
        byWorker: Bool
    ) -> ([Int32], Int32) {
        let sorted = members.lazy.map { Int($0) }.sorted {
            (tries[$0].start, tries[$1].end, tries[$0].taskID, tries[$0].tryID)
                < (tries[$1].start, tries[$0].end, tries[$1].taskID, tries[$1].tryID)
        }
        var workerBusyUntil: [Int32: Int64] = [:]
        var onWorker: [(index: Int, pid: Int32)] = []
        var sharedCount: Int32 = 0
        var busy = MinHeap<(end: Int64, lane: Int32)>(by: { $0.end < $1.end || ($0.end == $1.end && $0.lane < $1.lane) }
        )
        var free = MinHeap<Int32>(by: <)
        for index in sorted {
            let entry = tries[index]
            if byWorker, entry.workerPID != compactMissing {
                if let until = workerBusyUntil[entry.workerPID], until >= entry.start {
                    // Taken: fall through to the shared lanes.
                } else {
                    workerBusyUntil[entry.workerPID] = entry.end
                    onWorker.append((index, entry.workerPID))
                    continue
                }
            }
            while let top = busy.peek, top.end < entry.start {
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
            busy.push((entry.end, lane))
            tries[index].tid = lane
        }
        let pids = workerBusyUntil.keys.sorted()
        var rank: [Int32: Int32] = [:]
        for (offset, pid) in pids.enumerated() { rank[pid] = Int32(offset) }
        for (index, pid) in onWorker { tries[index].tid = -(rank[pid]! + 1) }
        return (pids, sharedCount)
    }

    private static func blockOrder(_ data: TraceRunData, _ a: BlockKey, _ b: BlockKey) -> Bool {
        let executorA = data.strings[a.executor] ?? ""
        let executorB = data.strings[b.executor] ?? ""
        if executorA != executorB { return executorA < executorB }
        return numericOrder(data.strings[a.block] ?? "", data.strings[b.block] ?? "")
    }

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

/// A binary heap ordered by a comparison closure.
struct MinHeap<Element> {
    private var items: [Element] = []
    private let less: (Element, Element) -> Bool

    init(by less: @escaping (Element, Element) -> Bool) { self.less = less }

    var peek: Element? { items.first }

    mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(items[child], items[parent]) else { break }
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
            if left < items.count && less(items[left], items[smallest]) { smallest = left }
            if right < items.count && less(items[right], items[smallest]) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
