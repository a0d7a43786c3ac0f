/// What a try's times and status rows mean, written once for every sink: which status decides its final state,
/// whether it ran, its queue wait and its run time. try_summary, the trace and the metrics use these.
public enum TryLifecycle {
    /// A try ends in a terminal task state or in fail_retryable (the task then gets another try).
    public static func isFinal(_ state: String) -> Bool { TaskState.isTerminalForTry(state) }

    /// The rank of a status in deciding a try's final state: final states beat any other; among equals the later
    /// timestamp, then the later row, wins (status order is not logical order in Parsl data).
    public static func finalStateRank(_ state: String) -> Int { isFinal(state) ? 1 : 0 }

    /// A try ran when it has a running time.
    public static func ran(running: Int64?) -> Bool { running != nil }

    /// Microseconds from launched to running; a negative difference (running stamped by the worker's clock
    /// before launched, as join_apps and thread pools do) counts as 0.
    public static func queueWait(launched: Int64?, running: Int64?) -> Int64? {
        guard let launched, let running else { return nil }
        return max(0, running - launched)
    }

    /// Microseconds from running to returned, never negative.
    public static func runTime(running: Int64?, returned: Int64?) -> Int64? {
        guard let running, let returned else { return nil }
        return max(0, returned - running)
    }
}
