extension MetricsAggregator {
    /// Adds the model's values of one batch, whichever reader gave them (the pipeline's stream for `prometheus`
    /// and `all`, ``MetricsCollector`` for `serve`). `utc` turns the batch's times into UTC microseconds. Returns
    /// the table the batch came from and its rows, for the rows-read counters (nil for try rows, which are not
    /// counted there).
    @discardableResult
    public func add(_ batch: DomainBatch, utc: (Int64?) -> Int64? = { $0 }) throws -> (table: String, rows: Int)? {
        switch batch {
        case .runs(let runs):
            for run in runs {
                add(
                    MetricRow.Run(
                        runID: run.runID, workflowName: run.workflowName, host: run.host, user: run.user,
                        began: utc(run.began), completed: utc(run.completed)))
            }
            return ("workflow", runs.count)
        case .tasks(let tasks):
            for task in tasks { try add(MetricRow.Task(runID: task.runID, taskID: task.taskID, app: task.app)) }
            return ("task", tasks.count)
        case .tryAttempts(let tries):
            for attempt in tries {
                try add(
                    MetricRow.Try(
                        runID: attempt.runID, taskID: attempt.taskID, tryID: attempt.tryID, host: attempt.hostname,
                        block: attempt.blockID, launched: utc(attempt.launched), running: utc(attempt.running),
                        returned: utc(attempt.returned)))
            }
            return nil
        case .statusChanges(let changes):
            for change in changes {
                guard !change.state.isEmpty else {
                    skip("status")
                    continue
                }
                try add(
                    MetricRow.Status(
                        runID: change.runID, taskID: change.taskID, tryID: change.tryID, state: change.state,
                        time: utc(change.time)))
            }
            return ("status", changes.count)
        case .resourceSamples(let samples):
            for sample in samples {
                var cpu: Double?
                if let user = sample.cpuUserSeconds, let system = sample.cpuSystemSeconds { cpu = user + system }
                // A sample without a try (a schema without try ids) has the host it names, or "".
                let ofTry = sample.tryID != nil && sample.taskID >= 0
                try add(
                    MetricRow.Resource(
                        runID: sample.runID, host: ofTry ? sample.hostname : (sample.hostname ?? ""), pid: sample.pid,
                        time: utc(sample.time), residentBytes: sample.residentBytes, cpuSeconds: cpu,
                        taskID: ofTry ? sample.taskID : nil, tryID: ofTry ? sample.tryID : nil, block: sample.blockID))
            }
            return ("resource", samples.count)
        case .blockTransitions(let transitions):
            for block in transitions {
                add(
                    MetricRow.Block(
                        runID: block.runID, executor: block.executor, block: block.blockID, status: block.status,
                        time: utc(block.time)))
            }
            return ("block", transitions.count)
        case .nodeSnapshots(let nodes):
            for node in nodes {
                let host = node.hostname ?? ""
                let block = node.blockID ?? ""
                add(
                    MetricRow.Node(
                        runID: node.runID, manager: node.uid ?? (host + "\u{0}" + block), host: host, block: block,
                        cpus: node.cpuCount, memoryBytes: node.totalMemoryBytes, active: node.active,
                        workers: node.workerCount, lastHeartbeat: utc(node.lastHeartbeat)))
            }
            return ("node", nodes.count)
        case .tries:
            return nil
        }
    }
}
