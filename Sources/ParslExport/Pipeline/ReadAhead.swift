import Dispatch
import Synchronization

/// Reads the tables on a thread of its own, a few batches ahead of the sinks, so SQLite reading and value
/// conversion run on one core while the sinks format and compress on the others. Memory stays bounded: at most
/// `capacity` batches wait in the queue.
final class ReadAhead: @unchecked Sendable {
    // @unchecked: the reading thread is the only one that touches the database until `stop()` returns; the ring's
    // slots and indexes are handed between the two threads by the semaphores.

    enum Item: Sendable {
        case tableStart(String)
        case batch(RecordBatch)
        case tableEnd(String, rows: Int, snapshot: MonitoringDatabase.TableSnapshot)
        case failed(any Error)
        case done
    }

    struct Plan: @unchecked Sendable {
        var tables: [String]
        /// Where each table stood when the export started; a table missing here, or without a row count, gets its
        /// snapshot when its turn comes (only when nothing can be writing the file, so the moment does not matter).
        var snapshots: [String: MonitoringDatabase.TableSnapshot]
        /// Tables read only for their domain events, with the columns the events need.
        var eventColumns: [String: Set<String>] = [:]
        var options: ReadOptions
        var warnings: ValueWarnings
    }

    private let database: MonitoringDatabase
    private let plan: Plan
    /// A ring of `capacity` slots: the semaphores hand each slot from the reading thread to the consumer and
    /// back, so each slot (and each index) is touched by one thread at a time, with a happens-before edge that
    /// sanitizers see too.
    private let ring: UnsafeMutablePointer<Item?>
    private var writeIndex = 0
    private var readIndex = 0
    private let available = DispatchSemaphore(value: 0)
    private let slots: DispatchSemaphore
    private let stopped = DispatchSemaphore(value: 0)
    private let cancelled = Atomic<Bool>(false)
    private let capacity: Int

    init(database: MonitoringDatabase, plan: Plan, capacity: Int = 2) {
        self.database = database
        self.plan = plan
        self.capacity = capacity
        slots = DispatchSemaphore(value: capacity)
        ring = .allocate(capacity: capacity)
        ring.initialize(repeating: nil, count: capacity)
    }

    deinit {
        ring.deinitialize(count: capacity)
        ring.deallocate()
    }

    func start() {
        startDedicatedThread { [self] in
            produce()
            stopped.signal()
        }
    }

    private func produce() {
        do {
            for table in plan.tables {
                guard push(.tableStart(table)) else { return }
                var rows = 0
                // A table without a counted snapshot is counted now, just before it is read (see `Plan`).
                let known = plan.snapshots[table].flatMap { $0.rows >= 0 ? $0 : nil }
                let snapshot = try known ?? database.countedSnapshot(of: table, runIDs: plan.options.runIDs)
                try database.read(
                    table: table, snapshot: snapshot, columns: plan.eventColumns[table], options: plan.options,
                    warnings: plan.warnings
                ) {
                    rows += $0.rowCount
                    guard push(.batch($0)) else { throw Cancelled() }
                }
                guard push(.tableEnd(table, rows: rows, snapshot: snapshot)) else { return }
            }
            _ = push(.done)
        } catch is Cancelled {
            return
        } catch {
            _ = push(.failed(error))
        }
    }

    private struct Cancelled: Error {}

    /// Waits for a free slot; false once the consumer has given up.
    private func push(_ item: Item) -> Bool {
        slots.wait()
        if cancelled.load(ordering: .acquiring) { return false }
        ring[writeIndex] = item
        writeIndex = (writeIndex + 1) % capacity
        available.signal()
        return true
    }

    /// The next item, waiting for it.
    func next() -> Item {
        available.wait()
        let item = ring[readIndex].take()!
        readIndex = (readIndex + 1) % capacity
        slots.signal()
        return item
    }

    /// Stops the reading thread (if it still runs) and waits for it, so the database is free again.
    func stop() {
        cancelled.store(true, ordering: .releasing)
        for _ in 0...capacity { slots.signal() }
        stopped.wait()
    }
}
