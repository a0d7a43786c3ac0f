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

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
