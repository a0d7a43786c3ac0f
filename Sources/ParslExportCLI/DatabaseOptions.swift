import ArgumentParser
import ParslExport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How reads are cut into transactions: every command that reads databases takes these.
struct ReadingOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Rows per batch and per read transaction (1 to \(ReadOptions.batchSizes.upperBound)).")
    var batchSize = 8192

    @Option(parsing: .unconditional, help: "Milliseconds to wait for a writer's lock before giving up (at most an hour).")
    var busyTimeout: Int32 = 5_000

    func validate() throws {
        try bounded("--batch-size", batchSize, ReadOptions.batchSizes)
        try bounded("--busy-timeout", Int(busyTimeout), 0...3_600_000)
    }
}

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

    @OptionGroup var reading: ReadingOptions

    @Flag(name: .shortAndLong, help: "No progress or warnings on stderr.")
    var quiet = false

    /// The export's request; the database and its companion files are protected from being written over.
    func request(tables: Set<String>? = nil, parallelTables: Bool = true) throws -> ExportRequest {
        Interrupts.databasePath = database
        ProtectedFiles.shared.protect(database: database)
        try checkImmutable()
        return ExportRequest(
            databasePath: database,
            immutable: immutable,
            runPrefixes: runs,
            latestRun: latest,
            tables: tables,
            mappingsDirectory: mappings,
            timeZone: timezone,
            batchSize: reading.batchSize,
            busyTimeoutMilliseconds: reading.busyTimeout,
            parallelTables: parallelTables
        )
    }

    func validate() throws {
        if latest && !runs.isEmpty { throw ValidationError("--latest and --run exclude each other: give one") }
    }

    /// `--immutable` promises that nothing writes the file, and SQLite then ignores a write-ahead log and a
    /// journal: committed rows still in the log would be missing, and a rolled-back transaction's rows exported.
    /// Both files say the promise does not hold, so the export is refused.
    func checkImmutable() throws {
        guard immutable else { return }
        var info = stat()
        if stat(database + "-wal", &info) == 0 && info.st_size > 0 {
            throw ExportError(
                .inputInvalid,
                "\(database): --immutable, but \(database)-wal holds transactions not yet in the database file; drop --immutable")
        }
        if stat(database + "-journal", &info) == 0 && info.st_size > 0 {
            throw ExportError(
                .inputInvalid,
                "\(database): --immutable, but \(database)-journal holds an unfinished transaction (a writer is at work or was interrupted); drop --immutable")
        }
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
        let summary = try ExportPipeline(request: try request(tables: tables, parallelTables: parallelTables))
            .run(into: sink, progress: progress.update)
        progress.done()
        report(summary, quiet: quiet)
    }
}

/// Prints the summary of an export on stderr: the files, the warnings, then one line of what was read.
func report(_ summary: ExportSummary, quiet: Bool) {
    guard !quiet else { return }
    for file in summary.files { Console.error("wrote \(printable(file))") }
    for line in summary.warnings.lines { Console.error("warning: \(line)") }
    Console.error(readLine(summary))
}

/// "read 1 run (unfinished: 1e437788-…): workflow 1, task 257, try 283 rows" — in Parsl's table order, so the line
/// reads the same every time. An unfinished run crashed or is still being written: the export holds what had been
/// committed when it began.
func readLine(_ summary: ExportSummary) -> String {
    let runs = summary.context.runs
    var line = "read \(runs.count) run\(runs.count == 1 ? "" : "s")"
    let unfinished = runs.filter(\.isUnfinished).map { printable($0.runID) }
    if !unfinished.isEmpty {
        line += " (unfinished, as committed when the export began: \(unfinished.joined(separator: ", ")))"
    }
    let order = ["workflow", "task", "try", "status", "resource", "block", "node", "try_summary"]
    let tables = summary.rowsRead.keys.sorted { (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1) }
    if !tables.isEmpty {
        line += ": " + tables.map { "\(printable($0)) \(summary.rowsRead[$0] ?? 0)" }.joined(separator: ", ") + " rows"
    }
    return line
}

/// Throws a one-line usage error unless `value` is within `range`.
func bounded<T: Comparable>(_ option: String, _ value: T, _ range: ClosedRange<T>) throws {
    guard range.contains(value) else {
        throw ValidationError("\(option) must be \(range.lowerBound) to \(range.upperBound), got \(value)")
    }
}

/// Throws a usage error for an empty output path (which would otherwise mean the current directory).
func validateOutput(_ output: String) throws {
    guard !output.isEmpty else { throw ValidationError("-o/--output must not be empty") }
}
