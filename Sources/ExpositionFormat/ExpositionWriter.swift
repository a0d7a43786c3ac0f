/// Writes metric families into a byte buffer in Prometheus text 0.0.4 or OpenMetrics 1.0.0.
///
/// Call ``begin(_:)`` for a family, then its samples, then the next family; ``finish()`` returns the
/// bytes. The writer enforces what would make a scraper reject the whole exposition: each family once
/// and contiguous with one HELP and one TYPE, no two families producing the same sample name, no
/// repeated label set in a family, the label count of the family, non-negative counters, `+Inf` equal
/// to `_count`. It never writes timestamps (exporters should not; node_exporter's textfile collector
/// rejects files that have them). Label values longer than ``maxLabelValueBytes`` are cut short, with a marker
/// (see ``bounded(_:)``), and listed in ``truncations``: one huge value would otherwise be repeated in every
/// sample of its series.
public struct ExpositionWriter: Sendable {
    /// The longest label value written as it is, in UTF-8 bytes.
    public static let maxLabelValueBytes = 1024

    /// A label value that was cut short: the label and the value's start.
    public struct Truncation: Sendable, Equatable {
        public var label: String
        public var example: String
    }

    /// Label values cut short so far, one per series and label.
    public private(set) var truncations: [Truncation] = []

    public let format: ExpositionFormat
    private var buffer: [UInt8] = []
    private var current: MetricFamily? = nil
    private var seriesInFamily = Set<[String]>()
    private var usedNames = Set<String>()
    private var finished = false

    public init(format: ExpositionFormat, capacity: Int = 4096) {
        self.format = format
        buffer.reserveCapacity(capacity)
    }

    /// The bytes written so far (without the OpenMetrics `# EOF` until ``finish()``).
    public var bytes: [UInt8] { buffer }

    /// Starts a family: writes its metadata lines.
    public mutating func begin(_ family: MetricFamily) throws(ExpositionError) {
        precondition(!finished, "ExpositionWriter used after finish()")
        for name in family.reservedNames {
            guard usedNames.insert(name).inserted else {
                throw ExpositionError("family \(family.name): the name \(name) is already used by a family written before")
            }
        }
        current = family
        seriesInFamily.removeAll(keepingCapacity: true)
        let help = ExpositionWriter.normalizedHelp(family.help)
        switch format {
        case .prometheusText:
            let name: String
            let type: String
            switch family.type {
            case .counter: (name, type) = (family.name + "_total", "counter")
            case .gauge: (name, type) = (family.name, "gauge")
            case .histogram: (name, type) = (family.name, "histogram")
            case .info: (name, type) = (family.name + "_info", "gauge")
            case .unknown: (name, type) = (family.name, "untyped")
            }
            if !help.isEmpty {
                append("# HELP ")
                append(name)
                buffer.append(0x20)
                appendEscaped(help, quote: false)
                buffer.append(0x0A)
            }
            append("# TYPE ")
            append(name)
            buffer.append(0x20)
            append(type)
            buffer.append(0x0A)
        case .openMetrics:
            let type: String
            switch family.type {
            case .counter: type = "counter"
            case .gauge: type = "gauge"
            case .histogram: type = "histogram"
            case .info: type = "info"
            case .unknown: type = "unknown"
            }
            append("# TYPE ")
            append(family.name)
            buffer.append(0x20)
            append(type)
            buffer.append(0x0A)
            if let unit = family.unit {
                append("# UNIT ")
                append(family.name)
                buffer.append(0x20)
                append(unit)
                buffer.append(0x0A)
            }
            if !help.isEmpty {
                append("# HELP ")
                append(family.name)
                buffer.append(0x20)
                appendEscaped(help, quote: true)
                buffer.append(0x0A)
            }
        }
    }

    /// A sample of a gauge or unknown family.
    public mutating func gauge(_ value: Double, labels: [String] = []) throws(ExpositionError) {
        let family = try expect([.gauge, .unknown], labels: labels)
        let labels = written(labels, family: family)
        appendSample(family.name, labels: labels, family: family)
        NumberText.appendValue(value, to: &buffer)
        buffer.append(0x0A)
    }

    /// A counter sample: `<name>_total`, and in OpenMetrics `<name>_created` when `created` (Unix seconds)
    /// is given. Text 0.0.4 has no `_created`, so there it is left out.
    public mutating func counter(_ value: Double, created: Double? = nil, labels: [String] = []) throws(ExpositionError) {
        let family = try expect([.counter], labels: labels)
        let labels = written(labels, family: family)
        guard value >= 0 else { throw ExpositionError("counter \(family.name): value \(value) is negative or NaN") }
        appendSample(family.name + "_total", labels: labels, family: family)
        NumberText.appendValue(value, to: &buffer)
        buffer.append(0x0A)
        if format == .openMetrics, let created {
            appendSample(family.name + "_created", labels: labels, family: family)
            NumberText.appendValue(created, to: &buffer)
            buffer.append(0x0A)
        }
    }

    /// An info sample (value 1).
    public mutating func info(labels: [String]) throws(ExpositionError) {
        let family = try expect([.info], labels: labels)
        let labels = written(labels, family: family)
        appendSample(family.name + "_info", labels: labels, family: family)
        buffer.append(contentsOf: [0x31, 0x0A])
    }

    /// A histogram series: cumulative `_bucket{le}` lines ending with `+Inf`, then `_sum` and `_count`,
    /// and in OpenMetrics `_created` when given.
    public mutating func histogram(_ histogram: Histogram, created: Double? = nil, labels: [String] = []) throws(ExpositionError) {
        let family = try expect([.histogram], labels: labels)
        let labels = written(labels, family: family)
        guard histogram.upperBounds == family.buckets else {
            throw ExpositionError("histogram \(family.name): observed with other bounds than the family's")
        }
        guard histogram.sum >= 0 else {
            throw ExpositionError("histogram \(family.name): a negative or NaN sum cannot be exposed")
        }
        var cumulative: UInt64 = 0
        let bucketName = family.name + "_bucket"
        for i in histogram.counts.indices {
            cumulative &+= histogram.counts[i]
            let bound = i < family.buckets.count ? NumberText.canonicalBound(family.buckets[i]) : "+Inf"
            appendSample(bucketName, labels: labels, family: family, le: bound)
            NumberText.appendInteger(cumulative, to: &buffer)
            buffer.append(0x0A)
        }
        appendSample(family.name + "_sum", labels: labels, family: family)
        NumberText.appendValue(histogram.sum, to: &buffer)
        buffer.append(0x0A)
        appendSample(family.name + "_count", labels: labels, family: family)
        NumberText.appendInteger(cumulative, to: &buffer)
        buffer.append(0x0A)
        if format == .openMetrics, let created {
            appendSample(family.name + "_created", labels: labels, family: family)
            NumberText.appendValue(created, to: &buffer)
            buffer.append(0x0A)
        }
    }

    /// Ends the exposition (`# EOF` in OpenMetrics) and returns it.
    public mutating func finish() -> [UInt8] {
        if !finished {
            finished = true
            if format == .openMetrics { append("# EOF\n") }
        }
        return buffer
    }

    /// HELP without leading and trailing whitespace. Text 0.0.4 cannot carry them: Go's parser drops
    /// leading blanks and prometheus_client strips the line, so writing them would not round-trip.
    public static func normalizedHelp(_ help: String) -> String {
        let scalars = help.unicodeScalars
        guard let start = scalars.firstIndex(where: { !isStrippedWhitespace($0) }) else { return "" }
        let end = scalars.lastIndex(where: { !isStrippedWhitespace($0) })!
        return String(scalars[start...end])
    }

    // MARK: - Private

    /// `value` if it fits in ``maxLabelValueBytes``; otherwise its start (whole characters) followed by
    /// `…[truncated N bytes fnv1a64:<hex>]`, whose hash of the whole value keeps distinct values distinct.
    public static func bounded(_ value: String) -> String {
        let utf8 = value.utf8
        guard utf8.count > maxLabelValueBytes else { return value }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        var kept = ""
        var used = 0
        for scalar in value.unicodeScalars {
            used += UTF8.width(scalar)
            if used > maxLabelValueBytes { break }
            kept.unicodeScalars.append(scalar)
        }
        let hex = String(hash, radix: 16)
        return kept + "…[truncated \(utf8.count) bytes fnv1a64:\(String(repeating: "0", count: 16 - hex.count) + hex)]"
    }

    /// The label values to write, each bounded; the ones cut short are listed in `truncations`.
    private mutating func written(_ labels: [String], family: MetricFamily) -> [String] {
        guard labels.contains(where: { $0.utf8.count > Self.maxLabelValueBytes }) else { return labels }
        return labels.indices.map { i in
            let value = labels[i]
            guard value.utf8.count > Self.maxLabelValueBytes else { return value }
            truncations.append(Truncation(label: family.labelNames[i], example: String(value.prefix(80))))
            return Self.bounded(value)
        }
    }

    private mutating func expect(_ types: [MetricType], labels: [String]) throws(ExpositionError) -> MetricFamily {
        guard let family = current else { throw ExpositionError("sample written before begin()") }
        guard types.contains(family.type) else {
            throw ExpositionError("family \(family.name) is a \(family.type), not a \(types[0])")
        }
        guard labels.count == family.labelNames.count else {
            throw ExpositionError("family \(family.name): \(labels.count) label values for \(family.labelNames.count) labels")
        }
        guard seriesInFamily.insert(labels).inserted else {
            throw ExpositionError("family \(family.name): label set \(labels) written twice")
        }
        return family
    }

    private mutating func appendSample(_ name: String, labels: [String], family: MetricFamily, le: String? = nil) {
        append(name)
        if !labels.isEmpty || le != nil {
            buffer.append(UInt8(ascii: "{"))
            for i in labels.indices {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                append(family.labelNames[i])
                buffer.append(contentsOf: [UInt8(ascii: "="), UInt8(ascii: "\"")])
                appendEscaped(labels[i], quote: true)
                buffer.append(UInt8(ascii: "\""))
            }
            if let le {
                if !labels.isEmpty { buffer.append(UInt8(ascii: ",")) }
                append("le=\"")
                append(le)
                buffer.append(UInt8(ascii: "\""))
            }
            buffer.append(UInt8(ascii: "}"))
        }
        buffer.append(0x20)
    }

    private mutating func append(_ s: String) {
        buffer.append(contentsOf: s.utf8)
    }

    /// `\` → `\\`, line feed → `\n`, and `"` → `\"` when `quote` (label values, OpenMetrics HELP).
    /// Every other character, control characters included, is valid UTF-8 text in both formats.
    private mutating func appendEscaped(_ s: String, quote: Bool) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { bytes in
            appendEscapedBytes(bytes, quote: quote)
        }
        if done == nil {
            let copy = Array(s.utf8)
            copy.withUnsafeBufferPointer { appendEscapedBytes($0, quote: quote) }
        }
    }

    private mutating func appendEscapedBytes(_ bytes: UnsafeBufferPointer<UInt8>, quote: Bool) {
        var runStart = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            let escape: UInt8
            switch b {
            case UInt8(ascii: "\\"): escape = UInt8(ascii: "\\")
            case 0x0A: escape = UInt8(ascii: "n")
            case UInt8(ascii: "\"") where quote: escape = UInt8(ascii: "\"")
            default: continue
            }
            if runStart < i { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(escape)
            runStart = i + 1
        }
        if runStart < bytes.count { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...])) }
    }
}

/// Whitespace as Python's `str.strip()` sees it (Unicode White_Space plus the information separators
/// U+001C–U+001F), a superset of what Go's parser drops.
private func isStrippedWhitespace(_ s: Unicode.Scalar) -> Bool {
    switch s.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        true
    default:
        false
    }
}
