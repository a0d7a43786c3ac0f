import Testing

@testable import ExpositionFormat

@Suite("Label values are bounded")
struct ExpositionLabelBoundTests {
    private let limit = ExpositionWriter.maxLabelValueBytes

    @Test("a huge label value is cut at a character boundary, marked, and listed; short ones are untouched")
    func hugeValueIsCut() throws {
        // A two-byte character straddles the limit: the cut keeps whole characters.
        let huge = String(repeating: "a", count: limit - 1) + "é" + String(repeating: "b", count: 20 << 20)
        var w = ExpositionWriter(format: .prometheusText)
        try w.begin(
            MetricFamily(name: "parsl_tries", type: .histogram, help: "Tries.", labelNames: ["app"], buckets: [1, 10]))
        var h = Histogram(upperBounds: [1, 10])
        h.observe(2)
        try w.histogram(h, labels: [huge])
        try w.histogram(h, labels: ["short"])
        let text = String(decoding: w.finish(), as: UTF8.self)
        // Five samples of the huge series (three buckets, sum, count), each bounded.
        #expect(text.utf8.count < 6 * (limit + 200) + 1_000)
        let cut = String(repeating: "a", count: limit - 1) + "…[truncated \(huge.utf8.count) bytes fnv1a64:"
        #expect(text.split(separator: "\n").filter { $0.contains(cut) }.count == 5)
        #expect(text.contains("app=\"short\""))
        #expect(w.truncations.count == 1)
        #expect(w.truncations.first?.label == "app")
    }

    @Test("two long values with the same start stay two series")
    func distinctValuesStayDistinct() throws {
        let start = String(repeating: "x", count: limit)
        var w = ExpositionWriter(format: .openMetrics)
        try w.begin(MetricFamily(name: "parsl_tasks", type: .gauge, help: "Tasks.", labelNames: ["app"]))
        try w.gauge(1, labels: [start + "one"])
        try w.gauge(2, labels: [start + "two"])
        #expect(ExpositionWriter.bounded(start + "one") != ExpositionWriter.bounded(start + "two"))
        #expect(ExpositionWriter.bounded(start) == start)
        #expect(w.truncations.count == 2)
    }
}
