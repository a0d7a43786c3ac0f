import ArgumentParser
import ParslExport

/// The `parsl-export` command tree.
public struct ParslExportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "parsl-export",
        abstract: "Export a Parsl monitoring database to CSV, Parquet, Chrome trace JSON and Prometheus metrics.",
        discussion: """
            Reads monitoring.db (any Parsl schema era from 1.1 to today) read-only, also while a workflow is still \
            writing it, and writes files that spreadsheets, pandas, DuckDB, Perfetto and Prometheus read.

            EXAMPLES
              parsl-export inspect runinfo/monitoring.db
              parsl-export csv runinfo/monitoring.db -o export/
              parsl-export all runinfo/monitoring.db -o export/ --latest

            EXIT CODES
            \(ExitCodes.table)
            """,
        version: "parsl-export \(ExportPipeline.exporterVersion)\n\(LinkedLibraries.summary)",
        subcommands: ExportCommands.all
    )

    public init() {}
}

extension ParslExportCommand {
    /// Entry point for the executable, which holds no logic of its own.
    public static func runAsMain() async {
        Interrupts.install()
        do {
            try RepeatedOptions.check(Array(CommandLine.arguments.dropFirst()), root: Self.self)
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // A bad command line is one line, like every other error (`--help` shows the usage).
            if !(error is ExitCode), exitCode(for: error) == .validationFailure {
                Console.error("parsl-export: \(printable(message(for: error)))")
                exit(withError: ExitCode.validationFailure)
            }
            exit(withError: error)
        }
    }
}

/// The subcommands; sinks register theirs here.
enum ExportCommands {
    static var all: [any ParsableCommand.Type] {
        [InspectCommand.self, SchemaCommand.self] + sinkCommands + [DatasetCommand.self, DashboardCommand.self]
    }
}

enum ExitCodes {
    static var table: String {
        (["  0    success (warnings about dropped values go to stderr)"]
            + ExportError.Code.allCases.sorted { $0.rawValue < $1.rawValue }.map {
                "  \(String($0.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0)) \($0.summary)"
            }).joined(separator: "\n")
    }
}

extension String {
    fileprivate func padding(toLength length: Int, withPad pad: String, startingAt _: Int) -> String {
        count >= length ? self : self + String(repeating: pad, count: length - count)
    }
}
