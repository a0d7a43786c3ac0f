import ArgumentParser

extension ExportCommands {
    /// One subcommand per sink.
    static var sinkCommands: [any ParsableCommand.Type] { [] }
}
