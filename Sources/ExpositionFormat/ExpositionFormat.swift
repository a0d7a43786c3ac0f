/// The two text formats a scrape target can answer with.
///
/// Both are written by ``ExpositionWriter`` from the same calls; the differences (counter naming, `info`,
/// `# UNIT`, `_created`, `# EOF`, HELP escaping) are handled there.
public enum ExpositionFormat: Sendable, Hashable, CustomStringConvertible {
    /// Prometheus text format 0.0.4: what node_exporter's textfile collector and every Prometheus read.
    case prometheusText
    /// OpenMetrics text 1.0.0.
    case openMetrics

    /// The absolute `Content-Type` to send with a body in this format.
    public var contentType: String {
        switch self {
        case .prometheusText: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    public var description: String {
        switch self {
        case .prometheusText: "Prometheus text 0.0.4"
        case .openMetrics: "OpenMetrics 1.0.0"
        }
    }

    /// Picks the format for an HTTP `Accept` header.
    ///
    /// The highest-weighted media range that this writer can serve wins; on a tie the one listed first.
    /// OpenMetrics is served for `application/openmetrics-text` with no version or version 1.0.0 (or
    /// 0.0.1, its draft, which 1.0.0 bodies satisfy); text 0.0.4 for `text/plain` with no version or
    /// 0.0.4, `text/*` and `*/*`. Anything else, or no header, falls back to text 0.0.4 as the
    /// content-negotiation rules require.
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept else { return .prometheusText }
        var best: (format: ExpositionFormat, q: Double)? = nil
        for range in accept.split(separator: ",") {
            let parameters = range.split(separator: ";").map { trimmedASCII($0) }
            guard let mediaType = parameters.first?.lowercased(), !mediaType.isEmpty else { continue }
            var q = 1.0
            var version: String? = nil
            for parameter in parameters.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { trimmedASCII($0) }
                guard pair.count == 2 else { continue }
                let value = pair[1].filter { $0 != "\"" }
                switch pair[0].lowercased() {
                case "q": q = Double(value) ?? 0
                case "version": version = value
                default: break
                }
            }
            let candidate: ExpositionFormat?
            switch mediaType {
            case "application/openmetrics-text":
                candidate = (version == nil || version == "1.0.0" || version == "0.0.1") ? .openMetrics : nil
            case "text/plain":
                candidate = (version == nil || version == "0.0.4") ? .prometheusText : nil
            case "text/*", "*/*":
                candidate = .prometheusText
            default:
                candidate = nil
            }
            guard let candidate, q > 0 else { continue }
            if best == nil || q > best!.q { best = (candidate, q) }
        }
        return best?.format ?? .prometheusText
    }
}

private func trimmedASCII(_ s: Substring) -> String {
    var view = s[...]
    while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
    while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
    return String(view)
}
