import ArgumentParser
import ExpositionFormat
import ParslExport

/// Metric options shared by `prometheus` and `serve`.
struct PrometheusMetricOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Optional labels of the task, try and resource metrics: app, run_id, both (app,run_id) or none.",
            discussion: "Runs, blocks and nodes always carry run_id. No metric has a task or try id label."))
    var labels = "app"

    @Option(help: "Upper bounds (seconds, comma-separated) of the try run time histogram.")
    var runTimeBuckets: String?

    @Option(help: "Upper bounds (seconds, comma-separated) of the queue wait histogram.")
    var queueWaitBuckets: String?

    @Option(help: "Seconds since its latest sample within which a worker process counts as current (memory gauges).")
    var recentWindow: Double = PrometheusOptions.defaultRecentWindowSeconds

    func validate() throws { _ = try resolved() }

    func resolved() throws -> PrometheusOptions {
        var options = PrometheusOptions()
        do {
            options.labels = try PrometheusOptions.Labels(parsing: labels)
            if let runTimeBuckets {
                options.runTimeBuckets = try PrometheusOptions.parseBuckets(runTimeBuckets, option: "--run-time-buckets")
            }
            if let queueWaitBuckets {
                options.queueWaitBuckets = try PrometheusOptions.parseBuckets(queueWaitBuckets, option: "--queue-wait-buckets")
            }
            guard recentWindow.isFinite, recentWindow > 0 else {
                throw ExportError(.usage, "--recent-window: give a positive number of seconds")
            }
            options.recentWindowSeconds = recentWindow
        } catch let error as ExportError {
            throw ValidationError(error.message)
        }
        return options
    }

    /// The METRICS section of the help, generated from the definitions the exporter serves.
    static var familiesHelp: String { ParslMetric.helpSection() }

    /// How many runs a file shows, said once for both commands (and in the README).
    static let manyRunsHelp = """
        MANY RUNS IN ONE FILE
          Tasks, tries, retries and the histograms count every run read (select
          runs with --run/--latest, split them with --labels run_id). Runs,
          blocks, nodes and workers always carry run_id. The gauges that say
          what is true now (tasks running, workers connected, nodes, worker
          memory and processes) count only runs that have not completed.
          Naive Parsl timestamps are read in this host's time zone (TZ, else
          /etc/localtime) unless --timezone names the zone Parsl ran in.
        """
}

struct PrometheusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prometheus",
        abstract: "Write Prometheus metrics to a file for node_exporter's textfile collector.",
        discussion: """
            Writes Prometheus text format 0.0.4 (or OpenMetrics 1.0 with --openmetrics): task states, tries, \
            run-time and queue-wait histograms, blocks, nodes and per-host resources. No timestamps; the file is \
            written under a temporary name in the same directory and renamed into place.

            \(PrometheusMetricOptions.familiesHelp)

            \(PrometheusMetricOptions.manyRunsHelp)

            EXAMPLES
              parsl-export prometheus monitoring.db -o /var/lib/node_exporter/textfile/parsl.prom
              parsl-export prometheus monitoring.db -o parsl.prom --labels app,run_id --latest
              parsl-export prometheus monitoring.db -o parsl.prom --run-time-buckets 1,10,60,600,3600
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .shortAndLong, help: "Output file; node_exporter reads only names ending in .prom.", completion: .file())
    var output: String
    @OptionGroup var metrics: PrometheusMetricOptions
    @Flag(help: "Write OpenMetrics 1.0 (node_exporter reads only the default text format).")
    var openmetrics = false

    func validate() throws { try validateOutput(output) }

    func run() async throws {
        let options = try metrics.resolved()
        try runReportingErrors(quiet: database.quiet) {
            let sink = PrometheusSink(
                path: output, options: options, format: openmetrics ? .openMetrics : .prometheusText)
            try database.export(into: sink, tables: [])
        }
    }
}
