import ArgumentParser
import Foundation
import Testing

@testable import ParslExport
@testable import ParslExportCLI

/// The Grafana dashboard, read back with a JSON parser, against Grafana's rules for a dashboard model; and the
/// help text generated from the same metric definitions.
struct PrometheusDashboardTests {
    static func parsed(_ labels: PrometheusOptions.Labels) throws -> [String: Any] {
        var options = PrometheusOptions()
        options.labels = labels
        let text = GrafanaDashboard(options: options).json()
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test(arguments: [PrometheusOptions.Labels.app, [.app, .runID], []])
    func dashboardFollowsGrafanasRules(labels: PrometheusOptions.Labels) throws {
        let dashboard = try Self.parsed(labels)
        let uid = try #require(dashboard["uid"] as? String)
        #expect(!uid.isEmpty && uid.count <= 40)
        #expect((dashboard["schemaVersion"] as? Int ?? 0) >= 36)
        let variables = try #require((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]])
        #expect(variables.contains { $0["name"] as? String == "datasource" && $0["type"] as? String == "datasource" })
        #expect(variables.contains { $0["name"] as? String == "run_id" })
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 15)
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "panel ids unique")
        var occupied: Set<[Int]> = []
        let known = Set(ParslMetric.all.flatMap { [$0.sampleName, $0.name + "_bucket"] })
        for panel in panels {
            let title = panel["title"] as? String ?? "?"
            let grid = try #require(panel["gridPos"] as? [String: Int], "\(title)")
            let (x, y, w, h) = (grid["x"] ?? -1, grid["y"] ?? -1, grid["w"] ?? 0, grid["h"] ?? 0)
            #expect(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0, "\(title) inside the 24-column grid")
            for cx in x..<max(x, x + w) {
                for cy in y..<max(y, y + h) { #expect(occupied.insert([cx, cy]).inserted, "\(title) overlaps at \(cx),\(cy)") }
            }
            #expect((panel["datasource"] as? [String: String])?["uid"] == "${datasource}", "\(title)")
            let targets = try #require(panel["targets"] as? [[String: Any]], "\(title)")
            #expect(!targets.isEmpty, "\(title)")
            for target in targets {
                let expr = target["expr"] as? String ?? ""
                #expect(!expr.isEmpty, "\(title): every target has an expression")
                // Every metric a query names is one the exporter serves.
                let names = expr.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
                    .filter { $0.hasPrefix("parsl_") }.map(String.init)
                #expect(!names.isEmpty && names.allSatisfy(known.contains), "\(title): \(names)")
                // The run filter only where the family carries run_id with these labels.
                if expr.contains("run_id=~") { #expect(names.allSatisfy { Self.carriesRunID($0, labels) }, "\(expr)") }
            }
        }
        let text = GrafanaDashboard(options: { var o = PrometheusOptions(); o.labels = labels; return o }()).json()
        #expect(text.contains("parsl_tasks{run_id=~") == labels.contains(.runID))
        #expect(text.contains("parsl_blocks{run_id=~\\\"$run_id\\\"}"))
    }

    static func carriesRunID(_ sample: String, _ labels: PrometheusOptions.Labels) -> Bool {
        var options = PrometheusOptions()
        options.labels = labels
        return ParslMetric.all.contains {
            ($0.sampleName == sample || $0.name + "_bucket" == sample) && $0.labelNames(options).contains("run_id")
        }
    }

    /// The METRICS section is readable at 80 columns: no line wraps, every family named once.
    @Test func helpFitsEightyColumns() throws {
        for help in [ServeCommand.helpMessage(columns: 80), PrometheusCommand.helpMessage(columns: 80)] {
            let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.allSatisfy { $0.count <= 80 }, "\(lines.filter { $0.count > 80 })")
            let section = try #require(help.range(of: "METRICS"))
            let metricsLines = help[section.lowerBound...].split(separator: "\n")
            for metric in ParslMetric.all {
                #expect(metricsLines.contains { $0.hasPrefix("  " + metric.sampleName) }, "\(metric.sampleName)")
            }
        }
    }

    @Test func hostTimeZoneDefault() {
        #expect(PrometheusOptions.hostTimeZone(environment: ["TZ": "Europe/Paris"]) == "Europe/Paris")
        #expect(PrometheusOptions.hostTimeZone(environment: ["TZ": ":America/Chicago"]) == "America/Chicago")
        #expect(PrometheusOptions.hostTimeZone(environment: ["TZ": "No/Such_Zone"]) == "UTC")
        #expect(PrometheusOptions.hostTimeZone(environment: [:], root: "/nonexistent") == "UTC")
    }
}
