/// `TryLifecycle`'s final-state rule as SQL, for the reads that decide it in the database (try_summary, the trace).
extension TryLifecycle {
    /// `finalStateRank` as SQL over the status alias `s`.
    static var finalStateRankSQL: String {
        let states = (TaskState.terminal.union(["fail_retryable"])).sorted().map { "'\($0)'" }.joined(separator: ", ")
        return "CASE WHEN s.task_status_name IN (\(states)) THEN 1 ELSE 0 END"
    }

    /// A scalar subquery giving a try's final state from the status table (aliased `s`): the statuses of the task
    /// (and of the try, where the era's status rows name their try) ordered as `finalStateRank` says.
    /// `task`, `attempt`, `run` are SQL expressions; `filter` adds conditions on `s` (a snapshot's rowid bound).
    static func finalStateSQL(task: String, attempt: String, run: String?, statusHasTry: Bool, filter: String? = nil)
        -> String
    {
        var sql = "(SELECT s.task_status_name FROM status AS s WHERE s.task_id = \(task)"
        if let filter { sql += " AND \(filter)" }
        if let run { sql += " AND s.run_id = \(run)" }
        if statusHasTry { sql += " AND s.try_id = \(attempt)" }
        return sql + " ORDER BY \(finalStateRankSQL) DESC, s.timestamp DESC, s.rowid DESC LIMIT 1)"
    }
}
