extension MonitoringDatabase {
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
            var total: Int64 = 0
            try inRowidRanges(from: first - 1, to: min(highWater, last)) { from, to in
                statement.bind(1, from)
                statement.bind(2, to)
                _ = try statement.step()
                total += statement.int64(0)
                statement.reset()
            }
            return total
        }
    }

    /// Calls `body` for consecutive rowid ranges `(from, to]` covering `after` to `end`, each meant to be one read
    /// transaction of its own: the ranges are sized by how long the last one took, to stay within
    /// `ReadOptions.lockBudgetMicros` whatever the table's size or density.
    func inRowidRanges(
        from after: Int64, to end: Int64, on connection: SQLiteConnection? = nil, startingWidth: Int64 = 4_096,
        _ body: (Int64, Int64) throws -> Void
    ) throws {
        let connection = connection ?? self.connection
        var from = after
        var width = startingWidth
        while from < end {
            let to = end - from <= width ? end : from + width
            // Waiting for the other connection's turn at the read gate holds no lock: it does not count.
            let started = monotonicMicros() - connection.readGateWaitMicros
            try body(from, to)
            let elapsed = max(monotonicMicros() - connection.readGateWaitMicros - started, 1)
            // Aim at half the budget: the next range may be denser.
            let scaled = Double(width) * Double(ReadOptions.lockBudgetMicros / 2) / Double(elapsed)
            width = max(256, min(width * 2, Int64(scaled)))
            from = to
        }
    }

    /// The first and last rowid (two b-tree descents: one min() and one max() together would scan); (1, 0) for an empty table.
    func rowidRange(_ name: String) throws -> (Int64, Int64) {
        let statement = try connection.prepare("SELECT (SELECT min(rowid) FROM \(name)), (SELECT max(rowid) FROM \(name))")
        defer { statement.reset() }
        _ = try statement.step()
        return statement.isNull(0) ? (1, 0) : (statement.int64(0), statement.int64(1))
    }

    /// The table's first rowid (one b-tree descent), or 1 when it is empty.
    func firstRowid(of table: String) throws -> Int64 {
        try rowidRange(quoteIdentifier(table)).0
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
