import CParslSQLite
import Dispatch

extension MonitoringDatabase {
    /// How long one counting statement may hold its read lock: past it, Parsl's writer would notice.
    static let countBudgetNanoseconds: UInt64 = 20_000_000
    /// Tables of up to this many rowids are counted whole (a few milliseconds); larger ones by ranges. The timer
    /// that interrupts a whole count only backs this up: on a loaded machine it may fire late.
    static let wholeCountRows: Int64 = 65_536

    /// The rows of `table` up to `highWater` (of `runIDs` only, when given), counted once the table has been read,
    /// to tell whether the read saw them all: a damaged b-tree page can end a rowid-ordered walk early without
    /// SQLite reporting an error.
    ///
    /// No statement holds the read lock for long, whatever the table's size. A small table is counted whole:
    /// `count(*)` (which SQLite takes from its smallest index, so damage to the table's own pages shows as a
    /// difference) less the rows committed after `highWater`, interrupted if it runs past the budget. A large
    /// table, or a selection of runs, is counted by rowid ranges sized to stay within the budget; that count
    /// walks the table's own b-tree, as the read did, so it catches less of such damage.
    func rowCount(of table: String, upTo highWater: Int64, runIDs: [String]?) throws -> Int64 {
        guard schema.tables[table] != nil, highWater > 0 else { return 0 }
        let name = quoteIdentifier(table)
        let runFilter = runIDs.flatMap { schema.has(table, "run_id") ? " AND run_id IN (\(sqlList($0)))" : nil }
        return try guarded {
            let (first, last) = try rowidRange(name)
            if runFilter == nil, min(highWater, last) - first < Self.wholeCountRows,
                let whole = try countWithinBudget(
                    "SELECT (SELECT count(*) FROM \(name)) - (SELECT count(*) FROM \(name) WHERE rowid > ?1)", highWater)
            {
                return whole
            }
            let statement = try connection.prepare(
                "SELECT count(*) FROM \(name) WHERE rowid > ?1 AND rowid <= ?2" + (runFilter ?? ""))
            let end = min(highWater, last)
            var total: Int64 = 0
            var from = first - 1
            var width: Int64 = 16_384
            while from < end {
                let to = min(end, from + width)
                let started = DispatchTime.now().uptimeNanoseconds
                statement.bind(1, from)
                statement.bind(2, to)
                _ = try statement.step()
                total += statement.int64(0)
                statement.reset()
                let elapsed = max(DispatchTime.now().uptimeNanoseconds - started, 1)
                // Aim at half the budget: the next range may be denser.
                let scaled = Double(width) * Double(Self.countBudgetNanoseconds / 2) / Double(elapsed)
                width = max(1_024, min(width * 4, Int64(scaled)))
                from = to
            }
            return total
        }
    }

    /// The first and last rowid (two b-tree descents: one min() and one max() together would scan); (1, 0) for an empty table.
    private func rowidRange(_ name: String) throws -> (Int64, Int64) {
        let statement = try connection.prepare("SELECT (SELECT min(rowid) FROM \(name)), (SELECT max(rowid) FROM \(name))")
        defer { statement.reset() }
        _ = try statement.step()
        return statement.isNull(0) ? (1, 0) : (statement.int64(0), statement.int64(1))
    }

    /// Runs a one-value counting statement, interrupting it at the budget; nil when it was interrupted.
    private func countWithinBudget(_ sql: String, _ argument: Int64) throws -> Int64? {
        let statement = try connection.prepare(sql)
        statement.bind(1, argument)
        let watch = InterruptTimer(connection: connection, after: Self.countBudgetNanoseconds)
        defer { statement.reset() }
        do {
            _ = try statement.step()
            watch.cancel()
            return statement.int64(0)
        } catch let error as SQLiteError where error.code & 0xff == SQLITE_INTERRUPT {
            watch.cancel()
            return nil
        } catch {
            watch.cancel()
            throw error
        }
    }
}

/// Interrupts a connection's running statement once a time is up, unless cancelled first. The interrupt is made
/// under a lock that `cancel` takes too, so it can never land on a statement started after the cancel.
private final class InterruptTimer: @unchecked Sendable {
    // @unchecked: `armed` is read and written under `lock` only; the handle is only passed to sqlite3_interrupt,
    // which may be called from any thread.
    private let lock = Locked(true)
    private let handle: OpaquePointer

    init(connection: SQLiteConnection, after nanoseconds: UInt64) {
        handle = connection.handle
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in
            lock.withLock { armed in if armed { sqlite3_interrupt(handle) } }
        }
    }

    func cancel() { lock.withLock { $0 = false } }
}
