#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the Prometheus metrics look like: which optional labels they carry and the histogram buckets.
public struct PrometheusOptions: Sendable, Equatable {
    /// Optional labels of the task, try and resource families.
    public struct Labels: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// The app (task function) name: one series per app; apps are bounded by the code, not by the data.
        public static let app = Labels(rawValue: 1)
        /// The run id: one series per run, for databases that keep many runs.
        public static let runID = Labels(rawValue: 2)

        /// Parses `--labels`: a comma-separated subset of `app`, `run_id`, or `none`.
        public init(parsing text: String) throws {
            var labels: Labels = []
            for word in text.split(separator: ",").map({ $0.trimmingSpaces() }) where !word.isEmpty {
                switch word {
                case "app": labels.insert(.app)
                case "run_id": labels.insert(.runID)
                case "none": break
                default: throw ExportError(.usage, "--labels: unknown label '\(word)' (use app, run_id or none)")
                }
            }
            self = labels
        }
    }

    /// Default: `app` only. Safe for 10⁶ tasks: no family has a task or try id label.
    public var labels: Labels = [.app]
    public var runTimeBuckets: [Double] = PrometheusOptions.defaultRunTimeBuckets
    public var queueWaitBuckets: [Double] = PrometheusOptions.defaultQueueWaitBuckets
    /// A worker process counts as current (memory and process gauges) when sampled within this many seconds
    /// before the read. Parsl samples every `resource_monitoring_interval` (30 s by default) while a try runs.
    public var recentWindowSeconds: Double = PrometheusOptions.defaultRecentWindowSeconds

    public static let defaultRecentWindowSeconds: Double = 90

    public static let defaultRunTimeBuckets: [Double] = [
        0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 86400,
    ]
    public static let defaultQueueWaitBuckets: [Double] = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400]

    public init() {}

    /// Parses a `--buckets` list: increasing, finite, non-negative seconds.
    public static func parseBuckets(_ text: String, option: String) throws -> [Double] {
        var bounds: [Double] = []
        for word in text.split(separator: ",").map({ $0.trimmingSpaces() }) {
            guard let value = Double(word), value.isFinite, value >= 0 else {
                throw ExportError(.usage, "\(option): '\(word)' is not a number of seconds")
            }
            if let last = bounds.last, !(last < value) {
                throw ExportError(.usage, "\(option): bounds must increase (\(last) then \(value))")
            }
            bounds.append(value)
        }
        guard !bounds.isEmpty else { throw ExportError(.usage, "\(option): give at least one bound") }
        return bounds
    }
}

extension PrometheusOptions {
    /// The zone to read naive timestamps in: `given` (`--timezone`), else the exporter host's; nil for UTC, which
    /// needs no conversion.
    public static func naiveTimestampZone(given: String?) -> String? {
        if let given { return given }
        let host = hostTimeZone()
        return host == "UTC" ? nil : host
    }

    /// The zone naive Parsl timestamps are read in when `--timezone` is not given: the exporter host's own, since
    /// Parsl writes local wall-clock time and the exporter usually runs where Parsl ran. `TZ` if set, else the
    /// zone /etc/localtime links to (or /etc/timezone names), else UTC.
    public static func hostTimeZone(environment: [String: String]? = nil, root: String = "") -> String {
        func known(_ name: String) -> Bool {
            name == "UTC" || (!name.isEmpty && !name.contains("..") && access(root + "/usr/share/zoneinfo/" + name, R_OK) == 0)
        }
        let tz = environment.map { $0["TZ"] } ?? getenv("TZ").map { String(cString: $0) }
        if var tz, !tz.isEmpty {
            if tz.hasPrefix(":") { tz.removeFirst() }
            if let zone = zoneName(afterZoneinfo: tz) { tz = zone }
            return known(tz) ? tz : "UTC"
        }
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink(root + "/etc/localtime", &buffer, buffer.count - 1)
        if length > 0 {
            let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let zone = zoneName(afterZoneinfo: target), known(zone) { return zone }
        }
        if let file = fopen(root + "/etc/timezone", "r") {
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 256)
            if fgets(&line, Int32(line.count), file) != nil {
                let name = String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if known(name) { return name }
            }
        }
        return "UTC"
    }

    /// `Europe/Paris` of `/usr/share/zoneinfo/Europe/Paris`.
    private static func zoneName(afterZoneinfo path: String) -> String? {
        let marker = Array("zoneinfo/".utf8)
        let bytes = Array(path.utf8)
        guard bytes.count > marker.count else { return nil }
        for start in 0...(bytes.count - marker.count) where Array(bytes[start..<start + marker.count]) == marker {
            return String(decoding: bytes[(start + marker.count)...], as: UTF8.self)
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
