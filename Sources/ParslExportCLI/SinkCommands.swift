import ArgumentParser

extension ExportCommands {
    /// One subcommand per sink, then `all`.
    static var sinkCommands: [any ParsableCommand.Type] {
        [CSVCommand.self, ParquetCommand.self, TraceCommand.self, PrometheusCommand.self, ServeCommand.self, AllCommand.self]
    }
}
