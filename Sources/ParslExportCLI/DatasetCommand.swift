#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import ParslExport

struct DatasetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Keep a Hive-partitioned Parquet dataset of every run of many databases up to date.",
        discussion: """
            Writes ROOT/<table>/run_id=<run id>/part-0.parquet for workflow, task, try, status, resource, block, \
            node and try_summary, typed as by the parquet command (every column nullable, one schema per table for \
            every schema era; try_summary gains task_key, the task across runs). Run ids are escaped as Hive does \
            (%2F ...); run_id is also stored in the files, always equal to the directory's.

            Run it again to update: databases that did not change are not opened, finished runs already in the \
            dataset are not read again, new runs are added and unfinished runs are exported again. Each run's \
            partitions are written beside the tables and swapped in whole. ROOT/_parsl_export_manifest.json records \
            every run's source and rows; ROOT/_SUCCESS is touched after each successful update. A run id already \
            exported from another database is reported with both paths and skipped.

            EXAMPLES
              parsl-export dataset runinfo/monitoring.db site-b/monitoring.db -o runs/
              duckdb -c "SELECT run_id, count(*) FROM read_parquet('runs/task/**/*.parquet', hive_partitioning = true) GROUP BY 1"
            """
    )

    @Argument(help: "Parsl monitoring databases (monitoring.db).", completion: .file(extensions: ["db", "sqlite", "sqlite3"]))
    var databases: [String]

    @Option(name: .shortAndLong, help: "Dataset root directory (created if missing).", completion: .directory)
    var output: String

    @OptionGroup var parquet: ParquetOptions

    @Option(help: "Extra or overriding table mappings (*.json), e.g. a site's extra column.", completion: .directory)
    var mappings: String?

    @Option(help: "IANA zone the databases' naive timestamps were written in; converts them to UTC (the whole dataset must agree).")
    var timezone: String?

    @OptionGroup var reading: ReadingOptions

    @Flag(help: "Wait for another update of the same dataset to end instead of failing.")
    var wait = false

    @Flag(name: .shortAndLong, help: "No progress, warnings or summary on stderr.")
    var quiet = false

    func validate() throws {
        guard !databases.isEmpty else { throw ValidationError("at least one database is needed") }
    }

    func run() async throws {
        try runReportingErrors(quiet: quiet) {
            let update = DatasetUpdate(
                options: DatasetUpdate.Options(
                    root: output, databases: databases, parquet: parquet.sinkOptions(directory: output),
                    mappingsDirectory: mappings, timeZone: timezone, batchSize: reading.batchSize,
                    busyTimeoutMilliseconds: reading.busyTimeout, waitForLock: wait))
            Interrupts.cleanup = { update.removeStaging() }
            let display = DatasetProgress(quiet: quiet)
            let summary = try update.run { step in
                // An interrupt names the database being read, as the other commands' do.
                if case .database(_, _, let path) = step { Interrupts.databasePath = path }
                display.show(step)
            }
            display.done()
            guard !quiet else { return }
            for duplicate in summary.duplicates {
                Console.error(
                    "warning: run \(duplicate.runID) of \(duplicate.path) was already exported from \(duplicate.owner); kept that one")
            }
            Console.error("dataset \(output): \(summary.line)")
        }
    }
}

/// Progress of a dataset update on stderr, when it is a terminal: database, run, table and rows.
final class DatasetProgress: @unchecked Sendable {
    private let enabled: Bool
    private var database = ""
    private var run = ""
    private var last: UInt64 = 0

    init(quiet: Bool) { enabled = !quiet && Console.stderrIsTerminal }

    func show(_ step: DatasetUpdate.Step) {
        guard enabled else { return }
        switch step {
        case .waitingForLock:
            Console.error("waiting for another update of this dataset to end")
            return
        case .database(let index, let count, let path):
            database = "[\(index)/\(count)] \(path)"
            run = ""
        case .run(let runID, let index, let count):
            run = " run \(runID.prefix(8)) (\(index)/\(count))"
        case .rows(let table, let rows):
            let now = MonotonicClock.nanoseconds()
            guard now - last > 200_000_000 else { return }
            last = now
            write("\(database)\(run) \(table): \(rows) rows")
            return
        }
        write(database + run)
    }

    private func write(_ line: String) {
        var text = "\r\u{1B}[K" + line
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    func done() {
        guard enabled else { return }
        var text = "\r\u{1B}[K"
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

private enum MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
