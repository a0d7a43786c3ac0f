import Dispatch

extension MonitoringDatabase {
    /// How long one range count should hold its read lock: past it, Parsl's writer would notice.
    static let countBudgetNanoseconds: UInt64 = 20_000_000
    /// Tables spanning fewer rowids are counted whole, which takes a few milliseconds; larger ones by ranges. A
    /// size rather than a timer decides, so the same database is always checked the same way.
    static let wholeCountRows: Int64 = 65_536

    /// The rows of `table` up to `highWater` (of `runIDs` only, when given), counted once the table has been read,
    /// to tell whether the read saw them all: a damaged b-tree page can end a rowid-ordered walk early without
    /// SQLite reporting an error.
    ///
    /// No statement holds the read lock for long, whatever the table's size. A small table is counted whole:
    /// `count(*)` (which SQLite takes from its smallest index, so damage to the table's own pages shows as a
    /// difference) less the rows committed after `highWater`. A large
    /// table, or a selection of runs, is counted by rowid ranges sized to stay within the budget; that count
    /// walks the table's own b-tree, as the read did, so it catches less of such damage.
    func rowCount(of table: String, upTo highWater: Int64, runIDs: [String]?) throws -> Int64 {
        guard schema.tables[table] != nil, highWater > 0 else { return 0 }
        let name = quoteIdentifier(table)
        let runFilter = runIDs.flatMap { schema.has(table, "run_id") ? " AND run_id IN (\(sqlList($0)))" : nil }
        return try guarded {
            let (first, last) = try rowidRange(name)
            if runFilter == nil, min(highWater, last) - first < Self.wholeCountRows {
                return try count(
                    "SELECT (SELECT count(*) FROM \(name)) - (SELECT count(*) FROM \(name) WHERE rowid > ?1)", highWater)
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

    /// Runs a one-value counting statement.
    private func count(_ sql: String, _ argument: Int64) throws -> Int64 {
        let statement = try connection.prepare(sql)
        defer { statement.reset() }
        statement.bind(1, argument)
        _ = try statement.step()
        return statement.int64(0)
    }
}
