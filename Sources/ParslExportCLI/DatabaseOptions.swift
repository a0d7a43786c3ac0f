import ArgumentParser
import ParslExport

/// Options every command that reads a database shares.
struct DatabaseOptions: ParsableArguments {
    @Argument(help: "The Parsl monitoring database (monitoring.db).", completion: .file(extensions: ["db", "sqlite", "sqlite3"]))
    var database: String

    @Option(name: .customLong("run"), help: "Only this run (repeatable; a unique prefix of the run id is enough).")
    var runs: [String] = []

    @Flag(help: "Only the most recent run.")
    var latest = false

    @Flag(help: "The run is finished and nothing writes the file: read it without any locking (faster).")
    var immutable = false

    @Option(help: "Extra or overriding table mappings (*.json), e.g. a site's extra column.", completion: .directory)
    var mappings: String?

    @Option(help: "IANA zone the database's naive timestamps were written in; converts them to UTC (e.g. Europe/Paris).")
    var timezone: String?

    @Option(help: "Rows per batch and per read transaction.")
    var batchSize = 8192

    @Option(help: "Milliseconds to wait for a writer's lock before giving up.")
    var busyTimeout: Int32 = 5_000

    @Flag(name: .shortAndLong, help: "No progress or warnings on stderr.")
    var quiet = false

    func request(tables: Set<String>? = nil, parallelTables: Bool = true) -> ExportRequest {
        Interrupts.databasePath = database
        return ExportRequest(
            databasePath: database,
            immutable: immutable,
            runPrefixes: runs,
            latestRun: latest,
            tables: tables,
            mappingsDirectory: mappings,
            timeZone: timezone,
            batchSize: batchSize,
            busyTimeoutMilliseconds: busyTimeout,
            parallelTables: parallelTables
        )
    }

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard busyTimeout >= 0 else { throw ValidationError("--busy-timeout must not be negative") }
    }
}

/// Runs an export body, printing a one-line error and exiting with the documented code on failure.
func runReportingErrors(quiet: Bool, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExportError {
        // The sinks have discarded their files; directories made for them go too, so a failure leaves nothing.
        TemporaryFiles.shared.removeAll()
        Console.error("parsl-export: \(error.message)")
        throw ExitCode(error.code.rawValue)
    } catch let error as SQLiteError {
        // Every read is meant to name its file; should one slip through, it still gets the one line and the code.
        TemporaryFiles.shared.removeAll()
        let described = MonitoringDatabase.describe(error, path: Interrupts.databasePath)
        Console.error("parsl-export: \(described.message)")
        throw ExitCode(described.code.rawValue)
    } catch {
        TemporaryFiles.shared.removeAll()
        throw error
    }
}

extension DatabaseOptions {
    /// Runs the pipeline into `sink`, with progress on stderr when it is a terminal, then reports what it wrote.
    func export(into sink: any ExportSink, tables: Set<String>? = nil, parallelTables: Bool = true) throws {
        let progress = Progress(quiet: quiet)
        let summary = try ExportPipeline(request: request(tables: tables, parallelTables: parallelTables))
            .run(into: sink, progress: progress.update)
        progress.done()
        report(summary, quiet: quiet)
    }
}

/// Prints the summary of an export on stderr.
func report(_ summary: ExportSummary, quiet: Bool) {
    guard !quiet else { return }
    for file in summary.files { Console.error("wrote \(file)") }
    for line in summary.warnings.lines { Console.error("warning: \(line)") }
}
