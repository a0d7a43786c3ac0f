import ArgumentParser
import ParslExport

public struct ParslExportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "parsl-export")
    public init() {}
    public func run() async throws {
        let catalog = try MappingCatalog.embedded()
        print(catalog.tableNames)
    }
}

extension ParslExportCommand {
    /// Entry point for the executable, which holds no logic of its own.
    public static func runAsMain() async { await main() }
}
