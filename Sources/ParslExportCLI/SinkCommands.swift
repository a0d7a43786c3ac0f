import ArgumentParser

/// The most compression threads an option accepts (each holds a deflate state and its buffers).
let maxThreads = 256

extension ExportCommands {
    /// One subcommand per sink, then `all`.
    static var sinkCommands: [any ParsableCommand.Type] {
        [CSVCommand.self, ParquetCommand.self, TraceCommand.self, PrometheusCommand.self, ServeCommand.self, AllCommand.self]
    }
}
