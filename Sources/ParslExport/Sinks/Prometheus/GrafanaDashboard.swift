import ExpositionFormat

/// A Grafana dashboard (JSON model, schema 39) for the metrics `serve` exposes, built from ``ParslMetric``
/// definitions so that a renamed family cannot leave a panel querying nothing. Label filters follow `--labels`:
/// the `run_id` variable filters every family that carries run_id with those options.
public struct GrafanaDashboard {
    public struct Target: Sendable {
        public var expr: String
        public var legend: String
        public var heatmap = false
    }

    public struct Panel: Sendable {
        public enum Kind: String, Sendable { case stat, timeseries, heatmap }
        public var id: Int
        public var title: String
        public var kind: Kind
        public var description: String
        public var unit: String?
        /// Grafana's grid: 24 columns.
        public var x: Int, y: Int, width: Int, height: Int
        public var targets: [Target]
    }

    public static let uid = "parsl-export-workflow"
    public static let title = "Parsl workflow (parsl-export)"

    public let options: PrometheusOptions
    public private(set) var panels: [Panel] = []

    public init(options: PrometheusOptions) {
        self.options = options
        build()
    }

    // MARK: Queries

    /// `name{run_id=~"$run_id"}` when the family carries run_id with these options, else the bare name.
    func select(_ metric: ParslMetric, suffix: String = "") -> String {
        let name = (metric.type == .histogram ? metric.name : metric.sampleName) + suffix
        return metric.labelNames(options).contains("run_id") ? name + "{run_id=~\"$run_id\"}" : name
    }

    private var byApp: String { options.labels.contains(.app) ? "app" : "" }

    private mutating func build() {
        var y = 0
        var nextID = 1
        func row(_ height: Int, _ items: [(title: String, kind: Panel.Kind, unit: String?, description: String, targets: [Target])]) {
            let width = 24 / items.count
            for (i, item) in items.enumerated() {
                panels.append(
                    Panel(
                        id: nextID, title: item.title, kind: item.kind, description: item.description, unit: item.unit,
                        x: i * width, y: y, width: width, height: height, targets: item.targets))
                nextID += 1
            }
            y += height
        }
        func t(_ expr: String, _ legend: String = "") -> Target { Target(expr: expr, legend: legend) }
        let app = byApp
        let byAppState = app.isEmpty ? "state" : "app, state"
        let rate = "$__rate_interval"

        row(4, [
            ("Runs in progress", .stat, nil, "Runs without a completion time.",
             [t("sum(1 - \(select(.workflowCompleted)))")]),
            ("Tasks running now", .stat, nil, "Tasks whose current state is running, in runs not completed.",
             [t("sum(\(select(.tasksRunning)))")]),
            ("Workers connected", .stat, nil, "Workers of active managers in blocks not ended.",
             [t("sum(\(select(.workersConnected)))")]),
            ("Newest row age", .stat, "s", "How long Parsl has written nothing (at the exporter's last read).",
             [t("max(\(select(.newestRowAge)))")]),
        ])
        row(8, [
            ("Tasks by state", .timeseries, nil, "Tasks by current state.",
             [t("sum by (state) (\(select(.tasks)))", "{{state}}")]),
            ("Tasks running by app", .timeseries, nil, "Tasks running now.",
             [t(app.isEmpty ? "sum(\(select(.tasksRunning)))" : "sum by (app) (\(select(.tasksRunning)))",
                app.isEmpty ? "running" : "{{app}}")]),
        ])
        row(8, [
            ("Tries by outcome", .timeseries, nil, "Tries that ended per interval, by outcome.",
             [t("sum by (outcome) (increase(\(select(.tries))[\(rate)]))", "{{outcome}}")]),
            ("Retries", .timeseries, nil, "Tries failed and retried per interval.",
             [t(app.isEmpty ? "sum(increase(\(select(.retries))[\(rate)]))"
                : "sum by (app) (increase(\(select(.retries))[\(rate)]))", app.isEmpty ? "retries" : "{{app}}")]),
        ])
        row(8, [
            ("Tasks by app and state", .timeseries, nil, "Tasks by current state, per app when labelled.",
             [t("sum by (\(byAppState)) (\(select(.tasks)))", app.isEmpty ? "{{state}}" : "{{app}} {{state}}")]),
        ])
        var queue = t("sum by (le) (increase(\(select(.queueWait, suffix: "_bucket"))[\(rate)]))", "{{le}}")
        queue.heatmap = true
        var runTime = t("sum by (le) (increase(\(select(.runTime, suffix: "_bucket"))[\(rate)]))", "{{le}}")
        runTime.heatmap = true
        row(9, [
            ("Queue wait (launched → running)", .heatmap, "s", "Tries by queue wait, per interval.", [queue]),
            ("Run time (running → end of try)", .heatmap, "s", "Tries by run time, per interval.", [runTime]),
        ])
        row(8, [
            ("Blocks by status", .timeseries, nil, "Blocks by latest status.",
             [t("sum by (status) (\(select(.blocks)))", "{{status}}")]),
            ("Workers and managers", .timeseries, nil, "Registered now, in blocks not ended.",
             [t("sum(\(select(.workersConnected)))", "workers connected"),
              t("sum(\(select(.nodeWorkers)))", "workers"),
              t("sum(\(select(.nodeManagers)))", "managers")]),
        ])
        row(8, [
            ("Worker resident memory", .timeseries, "bytes", "Worker processes sampled recently, per host.",
             [t("sum by (host) (\(select(.residentMemory)))", "{{host}}")]),
            ("Worker CPU", .timeseries, "percentunit", "CPU time of the workers per second, per host.",
             [t("sum by (host) (rate(\(select(.cpu))[\(rate)]))", "{{host}}")]),
        ])
        row(6, [
            ("Database up", .stat, nil, "1 when the exporter's last read succeeded.",
             [t("min(\(select(.databaseUp)))")]),
            ("Exporter read duration", .timeseries, "s", "Time to read new rows and render.",
             [t("max(\(select(.scrapeDuration)))", "read")]),
            ("Rows read", .timeseries, "ops", "Rows read per second, per table.",
             [t("sum by (table) (rate(\(select(.rowsRead))[\(rate)]))", "{{table}}")]),
            ("Read errors and replacements", .timeseries, nil, "Failed reads and replaced files per interval.",
             [t("sum(increase(\(select(.readErrors))[\(rate)]))", "read errors"),
              t("sum(increase(\(select(.replacements))[\(rate)]))", "replacements")]),
        ])
    }

    // MARK: JSON

    /// The dashboard's JSON model, ready for Grafana's file provisioning or its import dialog.
    public func json() -> String {
        let datasource: JSON = .object([("type", "prometheus"), ("uid", "${datasource}")])
        let runFilter = ParslMetric.workflow.sampleName
        let variables: [JSON] = [
            .object([
                ("name", "datasource"), ("label", "Data source"), ("type", "datasource"), ("query", "prometheus"),
                ("current", .object([])), ("hide", 0), ("refresh", 1), ("options", .array([])),
            ]),
            .object([
                ("name", "run_id"), ("label", "Run"), ("type", "query"), ("datasource", datasource),
                ("definition", .string("label_values(\(runFilter), run_id)")),
                ("query", .object([("query", .string("label_values(\(runFilter), run_id)")), ("refId", "run_id")])),
                ("includeAll", true), ("multi", true), ("allValue", ".*"), ("refresh", 2), ("sort", 0),
                ("current", .object([("text", "All"), ("value", .array(["$__all"]))])), ("options", .array([])),
            ]),
        ]
        let panelJSON: [JSON] = panels.map { panel in
            var fields: [(String, JSON)] = [
                ("id", .number(Double(panel.id))), ("type", .string(panel.kind.rawValue)), ("title", .string(panel.title)),
                ("description", .string(panel.description)), ("datasource", datasource),
                ("gridPos", .object([
                    ("h", .number(Double(panel.height))), ("w", .number(Double(panel.width))),
                    ("x", .number(Double(panel.x))), ("y", .number(Double(panel.y))),
                ])),
            ]
            var defaults: [(String, JSON)] = []
            if let unit = panel.unit { defaults.append(("unit", .string(unit))) }
            fields.append(("fieldConfig", .object([("defaults", .object(defaults)), ("overrides", .array([]))])))
            switch panel.kind {
            case .heatmap:
                fields.append(("options", .object([
                    ("calculate", false), ("cellGap", 1), ("color", .object([("mode", "scheme"), ("scheme", "Oranges")])),
                    ("yAxis", .object([("unit", .string(panel.unit ?? ""))])),
                ])))
            case .stat:
                fields.append(("options", .object([("reduceOptions", .object([("calcs", .array(["lastNotNull"]))]))])))
            case .timeseries:
                fields.append(("options", .object([("legend", .object([("displayMode", "list"), ("placement", "bottom")]))])))
            }
            let letters = Array("ABCDEFGHIJ")
            fields.append(("targets", .array(panel.targets.enumerated().map { i, target in
                var t: [(String, JSON)] = [
                    ("refId", .string(String(letters[i]))), ("datasource", datasource), ("expr", .string(target.expr)),
                    ("legendFormat", .string(target.legend)), ("range", true),
                ]
                if target.heatmap { t.append(("format", "heatmap")) }
                return .object(t)
            })))
            return .object(fields)
        }
        let dashboard: JSON = .object([
            ("uid", .string(Self.uid)), ("title", .string(Self.title)),
            ("description", "Live Parsl workflow metrics from parsl-export serve. Generated by `parsl-export dashboard`."),
            ("tags", .array(["parsl", "parsl-export"])), ("timezone", "browser"), ("editable", true),
            ("schemaVersion", 39), ("version", 1), ("refresh", "10s"), ("graphTooltip", 1),
            ("time", .object([("from", "now-1h"), ("to", "now")])),
            ("templating", .object([("list", .array(variables))])),
            ("annotations", .object([("list", .array([]))])),
            ("panels", .array(panelJSON)),
        ])
        var out = ""
        dashboard.write(into: &out, indent: 0)
        return out + "\n"
    }
}

/// Just enough JSON for the dashboard model: objects keep their key order.
enum JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([JSON])
    case object([(String, JSON)])

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .number(Double(value)) }
    init(booleanLiteral value: Bool) { self = .bool(value) }

    func write(into out: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent + 1)
        let end = String(repeating: "  ", count: indent)
        switch self {
        case .string(let s): JSON.quote(s, into: &out)
        case .number(let n): out += n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : "\(n)"
        case .bool(let b): out += b ? "true" : "false"
        case .array(let items):
            guard !items.isEmpty else { return out += "[]" }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                item.write(into: &out, indent: indent + 1)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += end + "]"
        case .object(let fields):
            guard !fields.isEmpty else { return out += "{}" }
            out += "{\n"
            for (i, (key, value)) in fields.enumerated() {
                out += pad
                JSON.quote(key, into: &out)
                out += ": "
                value.write(into: &out, indent: indent + 1)
                out += i == fields.count - 1 ? "\n" : ",\n"
            }
            out += end + "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
