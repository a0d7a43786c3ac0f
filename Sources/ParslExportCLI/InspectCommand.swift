import ArgumentParser
import ParslExport

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a monitoring database: schema era, tables, runs, value problems.",
        discussion: """
            EXAMPLES
              parsl-export inspect monitoring.db
              parsl-export inspect --immutable old-run.db
            """
    )

    @OptionGroup var options: DatabaseOptions

    func run() async throws {
        try runReportingErrors(quiet: options.quiet) {
            let inspection = try Inspection.inspect(options.request())
            print(inspection.report())
        }
    }
}

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the output schema every sink writes, generated from the mappings.",
        discussion: """
            EXAMPLES
              parsl-export schema
              parsl-export schema --markdown > SCHEMA.md
              parsl-export schema --mappings site-mappings/
            """
    )

    @Flag(help: "Markdown tables instead of plain text.")
    var markdown = false

    @Option(help: "Extra or overriding table mappings (*.json).", completion: .directory)
    var mappings: String?

    func run() async throws {
        try runReportingErrors(quiet: false) {
            let catalog = try ExportPipeline.catalog(mappingsDirectory: mappings)
            print(SchemaDocument.render(catalog, markdown: markdown), terminator: "")
        }
    }
}
