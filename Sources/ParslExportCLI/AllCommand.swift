import ArgumentParser
import ParslExport

/// Sinks that `all` adds besides CSV and Parquet register here.
struct AllSinkFactory {
    /// Makes a sink writing under the output directory.
    var make: (_ directory: String) throws -> any ExportSink
}

struct AllCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Write every format from one export of the database.",
        discussion: """
            Reads each table once, for every format (the traces sort a private copy of the columns they need), and \
            writes DIR/csv/*.csv.gz, DIR/parquet/*.parquet, the Chrome traces and the Prometheus textfile, all from \
            one snapshot. Options of the single-format commands apply.

            EXAMPLES
              parsl-export all monitoring.db -o export/
              parsl-export all monitoring.db -o export/ --latest --compression gzip
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .shortAndLong, help: "Output directory (created if missing).", completion: .directory)
    var output: String
    @OptionGroup var csv: CSVOptions
    @OptionGroup var parquet: ParquetOptions
    @OptionGroup var selection: TableSelection

    func validate() throws { try validateOutput(output) }

    func run() async throws {
        try runReportingErrors(quiet: database.quiet) {
            let tables = try selection.resolved()
            var sinks: [any ExportSink] = [
                CSVSink(options: csv.sinkOptions(directory: output + "/csv"), tables: tables),
                ParquetSink(options: parquet.sinkOptions(directory: output + "/parquet"), tables: tables),
            ]
            for factory in Self.extraSinks { sinks.append(try factory.make(output)) }
            // Every format at once already keeps the cores busy compressing and encoding: a second reading lane
            // would add its buffers to the peak memory and win no time (measured at 100k tasks).
            try database.export(into: MultiplexSink(sinks), tables: tables, parallelTables: false)
        }
    }

    /// Trace and Prometheus outputs, with their default options.
    static var extraSinks: [AllSinkFactory] {
        [
            // `all` asked for everything: no event cap on the traces (the trace command keeps its guard).
            // The trace reads the stream the other outputs read (a copy of its columns), not the database again.
            AllSinkFactory {
                var options = TraceSink.Options(output: $0 + "/trace", outputIsDirectory: true, maxEvents: 0)
                options.readsFromStream = true
                return TraceSink(options: options)
            },
            AllSinkFactory { directory in PrometheusSink(path: directory + "/parsl.prom", options: PrometheusOptions()) },
        ]
    }
}
