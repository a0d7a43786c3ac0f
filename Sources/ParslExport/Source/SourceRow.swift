/// The current row of a query over the monitoring database, each value read by `ValueRules`, with the problems
/// recorded against the table and column that `warn` names (nil: read without reporting), or against `table` and
/// the statement's column name. The trace's rows and the metrics' rows read through it, the table batches through
/// `ValueRules` directly.
struct SourceRow {
    let statement: SQLiteStatement
    let warnings: ValueWarnings?
    let zone: TimeZoneConversion?
    /// Where problems go when `warn` is not given; the column is named by the statement (only when one occurs).
    var table: String? = nil

    typealias Column = (table: String, column: String)

    func isNull(_ column: Int32) -> Bool { statement.isNull(column) }

    func integer(_ column: Int32, warn: Column? = nil) -> Int64? {
        let (value, problem) = ValueRules.integer(statement.cell(column))
        report(problem, column, warn)
        return value
    }

    func double(_ column: Int32, warn: Column? = nil) -> Double? {
        let (value, problem) = ValueRules.double(statement.cell(column))
        report(problem, column, warn)
        return value
    }

    func boolean(_ column: Int32, warn: Column? = nil) -> Bool? {
        let (value, problem) = ValueRules.boolean(statement.cell(column))
        report(problem, column, warn)
        return value
    }

    /// A timestamp in the export's clock.
    func timestamp(_ column: Int32, warn: Column? = nil) -> Int64? {
        let (value, problem) = ValueRules.timestamp(statement.cell(column), zone: zone)
        report(problem, column, warn)
        return value
    }

    func text(_ column: Int32) -> String? { statement.string(column) }

    @inline(__always)
    private func report(_ problem: ValueRules.Problem?, _ index: Int32, _ at: Column?) {
        guard let problem, let warnings, let at = at ?? table.map({ ($0, statement.columnName(index)) }) else { return }
        warnings.record(table: at.table, column: at.column, problem: problem.rawValue, example: statement.string(index) ?? "")
    }
}
