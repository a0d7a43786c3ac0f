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
        } catch let error as ExportError {
            throw ValidationError(error.message)
        }
        return options
    }

    static let familiesHelp = """
        METRICS
          parsl_workflow_info{run_id,workflow_name,host,user}   1 per run
          parsl_workflow_start_time_seconds, parsl_workflow_end_time_seconds, parsl_workflow_completed {run_id}
          parsl_tasks{app,state}                  tasks by current state (gauge)
          parsl_tries_total{app,outcome}          tries that ended, by outcome (counter)
          parsl_task_retries_total{app}           fail_retryable tries (counter)
          parsl_try_queue_wait_seconds{app}       launched → running (histogram)
          parsl_try_run_time_seconds{app}         running → end of try (histogram)
          parsl_block_status{run_id,executor,block,status} 1, parsl_blocks{executor,status}
          parsl_node_{managers,active_managers,workers,cpus,memory_bytes,last_heartbeat_timestamp_seconds}
                                                  {run_id,block,host}
          parsl_resource_resident_memory_bytes{host}, parsl_resource_cpu_seconds_total{host}
          parsl_export_{database_up,initial_read_done,rows_read_total,rows_skipped_total,read_errors_total,
                        scrape_duration_seconds}
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
            var configuration = MetricsCollector.Configuration(path: database.database)
            configuration.immutable = database.immutable
            configuration.runPrefixes = database.runs
            configuration.latestRun = database.latest
            configuration.timeZone = database.timezone
            configuration.batchSize = database.batchSize
            configuration.busyTimeoutMilliseconds = database.busyTimeout
            let sink = PrometheusSink(
                path: output, options: options, format: openmetrics ? .openMetrics : .prometheusText,
                configuration: configuration)
            try database.export(into: sink, tables: [])
        }
    }
}
