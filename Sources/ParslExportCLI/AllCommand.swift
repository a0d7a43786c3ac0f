import ArgumentParser
import ExpositionFormat
import ParslExport

/// Sinks that `all` adds besides CSV and Parquet register here.
struct AllSinkFactory {
    /// Makes a sink writing under the command's output directory, with the command's options for it.
    var make: (_ command: AllCommand) throws -> any ExportSink
}

struct AllCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Write every format from one export of the database.",
        discussion: """
            Reads each table once, for every format (the traces sort a private copy of the columns they need), and \
            writes DIR/csv/*.csv.gz, DIR/parquet/*.parquet, DIR/trace/ (Chrome JSON, or Perfetto protobuf with \
            --format perfetto) and the Prometheus textfile DIR/parsl.prom, all from one snapshot. Options of the \
            single-format commands apply: --no-gzip, --level and --threads to the CSV files and the traces, \
            --format, --absolute, --since, --until and --max-events to the traces (no event limit unless given), \
            --labels, the bucket options, --recent-window and --openmetrics to the metrics.

            EXAMPLES
              parsl-export all monitoring.db -o export/
              parsl-export all monitoring.db -o export/ --latest --compression gzip
              parsl-export all monitoring.db -o export/ --format perfetto --labels app,run_id
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .shortAndLong, help: "Output directory (created if missing).", completion: .directory)
    var output: String
    @OptionGroup var csv: CSVOptions
    @OptionGroup var parquet: ParquetOptions
    @OptionGroup var selection: TableSelection
    @OptionGroup var trace: TraceLayoutOptions
    @OptionGroup var metrics: PrometheusMetricOptions
    @Flag(help: "Write the metrics as OpenMetrics 1.0 (node_exporter reads only the default text format).")
    var openmetrics = false

    func validate() throws { try validateOutput(output) }

    func run() async throws {
        try runReportingErrors(quiet: database.quiet) {
            let tables = try selection.resolved()
            var sinks: [any ExportSink] = [
                CSVSink(options: csv.sinkOptions(directory: output + "/csv"), tables: tables),
                ParquetSink(options: parquet.sinkOptions(directory: output + "/parquet"), tables: tables),
            ]
            for factory in Self.extraSinks { sinks.append(try factory.make(self)) }
            // Every format at once already keeps the cores busy compressing and encoding: a second reading lane
            // would add its buffers to the peak memory and win no time (measured at 100k tasks).
            try database.export(into: MultiplexSink(sinks), tables: tables, parallelTables: false)
        }
    }

    /// Trace and Prometheus outputs.
    static var extraSinks: [AllSinkFactory] {
        [
            // The trace reads the stream the other outputs read (a copy of its columns), not the database again.
            AllSinkFactory { command in
                var options = TraceSink.Options(
                    output: command.output + "/trace",
                    outputIsDirectory: true,
                    format: command.trace.format ?? .json,
                    gzipInDirectory: !command.csv.noGzip,
                    gzipLevel: command.csv.level,
                    threads: command.csv.threads,
                    absoluteTime: command.trace.absolute,
                    since: try command.trace.sinceBound(),
                    until: try command.trace.untilBound(),
                    // `all` asked for everything: no event cap unless given (the trace command keeps its guard).
                    maxEvents: command.trace.maxEvents ?? 0
                )
                options.readsFromStream = true
                return TraceSink(options: options)
            },
            AllSinkFactory { command in
                PrometheusSink(
                    path: command.output + "/parsl.prom",
                    options: try command.metrics.resolved(),
                    format: command.openmetrics ? .openMetrics : .prometheusText
                )
            },
        ]
    }
}
