#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import ParslExport

struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Print a Grafana dashboard (JSON) for the metrics of `serve`.",
        discussion: """
            Built from the same metric definitions the exporter serves: tasks by \
            state and app, tries by outcome, retries, queue-wait and run-time \
            heatmaps, blocks and workers, worker memory and CPU, exporter health. \
            It has a `datasource` variable (any Prometheus) and a `run_id` \
            variable that filters every panel whose metrics carry run_id; give \
            the same --labels as to `serve` (with --labels app,run_id it filters \
            the task panels too).

            EXAMPLES
              parsl-export dashboard > parsl.json
              parsl-export dashboard --labels app,run_id \\
                > /var/lib/grafana/dashboards/parsl.json
            """
    )

    @OptionGroup var metrics: PrometheusMetricOptions

    func run() throws {
        let text = GrafanaDashboard(options: try metrics.resolved()).json()
        var remaining = Array(text.utf8)[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            guard written > 0 else {
                Console.error("parsl-export: cannot write the dashboard to standard output")
                throw ExitCode(ExportError.Code.outputFailed.rawValue)
            }
            remaining = remaining.dropFirst(written)
        }
    }
}
