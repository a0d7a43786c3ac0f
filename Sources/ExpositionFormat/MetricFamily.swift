/// The type of a metric family.
public enum MetricType: Sendable, Hashable {
    /// Monotonic count. Give the family name without `_total`: the writer appends it to samples (and, in
    /// text 0.0.4, to the family name in HELP/TYPE too).
    case counter
    case gauge
    /// Cumulative buckets with `_bucket{le}`, `_sum`, `_count`. Bounds are fixed by the family.
    case histogram
    /// Constant 1 carrying labels. Give the name without `_info`. Text 0.0.4 has no info type, so
    /// there it is a gauge named `<name>_info`.
    case info
    /// `untyped` in text 0.0.4, `unknown` in OpenMetrics.
    case unknown
}

/// A validated description of one metric family: its name, type, help, unit, label names and, for a
/// histogram, bucket bounds.
///
/// Validation happens once here so that writing samples only escapes values.
public struct MetricFamily: Sendable, Hashable {
    public let name: String
    public let type: MetricType
    public let help: String
    /// The OpenMetrics unit (e.g. `seconds`); the name must end with `_<unit>`.
    public let unit: String?
    public let labelNames: [String]
    /// Finite histogram upper bounds in increasing order; `+Inf` is implicit.
    public let buckets: [Double]

    /// The sample names this family produces in OpenMetrics; two families may not share one.
    var reservedNames: [String] {
        switch type {
        case .counter: [name, name + "_total", name + "_created"]
        case .histogram: [name, name + "_bucket", name + "_sum", name + "_count", name + "_created"]
        case .info: [name, name + "_info"]
        case .gauge, .unknown: [name]
        }
    }

    public init(
        name: String,
        type: MetricType,
        help: String,
        unit: String? = nil,
        labelNames: [String] = [],
        buckets: [Double] = []
    ) throws(ExpositionError) {
        guard isValidMetricName(name) else {
            throw ExpositionError("invalid metric name \(quoted(name)): use [a-zA-Z_][a-zA-Z0-9_]* (no colons)")
        }
        switch type {
        case .counter:
            if name.hasSuffix("_total") || name.hasSuffix("_created") {
                throw ExpositionError("counter \(name): give the family name without _total/_created")
            }
        case .info:
            if name.hasSuffix("_info") { throw ExpositionError("info \(name): give the family name without _info") }
            if unit != nil { throw ExpositionError("info \(name): an info family has no unit") }
        case .gauge, .histogram, .unknown:
            // Only counters may end in _total (promtool lints it, OpenMetrics parsers take it as a counter).
            if name.hasSuffix("_total") { throw ExpositionError("\(name): only counters end in _total") }
        }
        if let unit {
            guard !unit.isEmpty, isValidMetricName(unit), name.hasSuffix("_" + unit) else {
                throw ExpositionError("\(name): unit \(quoted(unit)) must be a suffix of the name after _")
            }
        }
        var seen = Set<String>()
        for label in labelNames {
            guard isValidLabelName(label) else {
                throw ExpositionError("\(name): invalid label name \(quoted(label)): use [a-zA-Z_][a-zA-Z0-9_]*, not __*")
            }
            guard seen.insert(label).inserted else { throw ExpositionError("\(name): duplicate label name \(label)") }
            if type == .histogram && label == "le" { throw ExpositionError("\(name): le is the bucket label") }
            if label == "quantile" { throw ExpositionError("\(name): quantile is reserved for summaries") }
        }
        if type == .histogram {
            guard !buckets.isEmpty else { throw ExpositionError("histogram \(name): needs at least one bucket") }
            for (i, bound) in buckets.enumerated() {
                guard bound.isFinite else { throw ExpositionError("histogram \(name): bounds must be finite") }
                if i > 0 && !(buckets[i - 1] < bound) {
                    throw ExpositionError("histogram \(name): bounds must increase strictly")
                }
            }
        } else if !buckets.isEmpty {
            throw ExpositionError("\(name): only histograms have buckets")
        }
        self.name = name
        self.type = type
        self.help = help
        self.unit = unit
        self.labelNames = labelNames
        self.buckets = buckets
    }
}

/// Legacy metric-name charset without colons (reserved for recording rules); what node_exporter's
/// textfile collector and Prometheus 2 accept unquoted.
public func isValidMetricName(_ name: String) -> Bool {
    var first = true
    for byte in name.utf8 {
        let ok = isLetterOrUnderscore(byte) || (!first && isDigit(byte))
        if !ok { return false }
        first = false
    }
    return !first
}

/// Legacy label-name charset; names starting with `__` are reserved for Prometheus itself.
public func isValidLabelName(_ name: String) -> Bool {
    isValidMetricName(name) && !name.hasPrefix("__")
}

private func isLetterOrUnderscore(_ b: UInt8) -> Bool {
    (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
}

private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

func quoted(_ s: String) -> String { "\"" + s + "\"" }
