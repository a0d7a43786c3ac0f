import Testing

@testable import ExpositionFormat

struct ExpositionWriterTests {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    private func sampleExposition(_ format: ExpositionFormat) throws -> String {
        var w = ExpositionWriter(format: format)
        try w.begin(MetricFamily(name: "app_requests", type: .counter, help: "Requests served.", labelNames: ["code"]))
        try w.counter(3, created: 1_700_000_000.5, labels: ["200"])
        try w.begin(MetricFamily(name: "app_build", type: .info, help: "Build.", labelNames: ["version"]))
        try w.info(labels: ["1.2"])
        try w.begin(MetricFamily(name: "app_temperature_celsius", type: .gauge, help: "Now.", unit: "celsius"))
        try w.gauge(21.5)
        var h = Histogram(upperBounds: [0.5, 1, 1_000_000])
        for v in [0.1, 0.5, 0.7, 2, 3_000_000] { h.observe(v) }
        try w.begin(
            MetricFamily(
                name: "app_latency_seconds", type: .histogram, help: "Latency.", unit: "seconds", labelNames: ["path"],
                buckets: [0.5, 1, 1_000_000]))
        try w.histogram(h, labels: ["/"])
        return text(w.finish())
    }

    @Test func prometheusTextNamesCountersAndInfoTheWayPrometheusDoes() throws {
        let expected = """
            # HELP app_requests_total Requests served.
            # TYPE app_requests_total counter
            app_requests_total{code="200"} 3
            # HELP app_build_info Build.
            # TYPE app_build_info gauge
            app_build_info{version="1.2"} 1
            # HELP app_temperature_celsius Now.
            # TYPE app_temperature_celsius gauge
            app_temperature_celsius 21.5
            # HELP app_latency_seconds Latency.
            # TYPE app_latency_seconds histogram
            app_latency_seconds_bucket{path="/",le="0.5"} 2
            app_latency_seconds_bucket{path="/",le="1.0"} 3
            app_latency_seconds_bucket{path="/",le="1e+06"} 4
            app_latency_seconds_bucket{path="/",le="+Inf"} 5
            app_latency_seconds_sum{path="/"} 3000003.3
            app_latency_seconds_count{path="/"} 5

            """
        #expect(try sampleExposition(.prometheusText) == expected)
    }

    @Test func openMetricsNamesFamiliesAndEndsWithEOF() throws {
        let body = try sampleExposition(.openMetrics)
        let expected = """
            # TYPE app_requests counter
            # HELP app_requests Requests served.
            app_requests_total{code="200"} 3
            app_requests_created{code="200"} 1700000000.5
            # TYPE app_build info
            # HELP app_build Build.
            app_build_info{version="1.2"} 1
            # TYPE app_temperature_celsius gauge
            # UNIT app_temperature_celsius celsius
            # HELP app_temperature_celsius Now.
            app_temperature_celsius 21.5
            # TYPE app_latency_seconds histogram
            # UNIT app_latency_seconds seconds
            # HELP app_latency_seconds Latency.
            app_latency_seconds_bucket{path="/",le="0.5"} 2
            app_latency_seconds_bucket{path="/",le="1.0"} 3
            app_latency_seconds_bucket{path="/",le="1e+06"} 4
            app_latency_seconds_bucket{path="/",le="+Inf"} 5
            app_latency_seconds_sum{path="/"} 3000003.3
            app_latency_seconds_count{path="/"} 5
            # EOF

            """
        #expect(body == expected)
    }

    @Test func labelValuesEscapeBackslashQuoteAndNewlineOnly() throws {
        for format in [ExpositionFormat.prometheusText, .openMetrics] {
            var w = ExpositionWriter(format: format)
            try w.begin(MetricFamily(name: "x", type: .gauge, help: "h", labelNames: ["v"]))
            try w.gauge(1, labels: ["a\\b\"c\nd\re\tf{g}=,h é 🙂"])
            #expect(text(w.bytes).contains(#"x{v="a\\b\"c\nd"# + "\re\tf{g}=,h é 🙂\"} 1\n"))
        }
    }

    @Test func helpEscapesQuoteOnlyInOpenMetrics() throws {
        let help = #"say "hi" \ then"# + "\nnext"
        var text004 = ExpositionWriter(format: .prometheusText)
        try text004.begin(MetricFamily(name: "x", type: .gauge, help: help))
        #expect(text(text004.bytes).hasPrefix(#"# HELP x say "hi" \\ then\nnext"# + "\n"))
        var om = ExpositionWriter(format: .openMetrics)
        try om.begin(MetricFamily(name: "x", type: .gauge, help: help))
        #expect(text(om.bytes).contains(#"# HELP x say \"hi\" \\ then\nnext"# + "\n"))
    }

    @Test func helpLosesOnlySurroundingWhitespaceAndEmptyHelpIsOmitted() throws {
        #expect(ExpositionWriter.normalizedHelp(" \t\u{1F}\u{3000}a  b\u{85}\u{2029} ") == "a  b")
        #expect(ExpositionWriter.normalizedHelp("\u{200B}x") == "\u{200B}x")  // zero-width space is not whitespace
        var w = ExpositionWriter(format: .prometheusText)
        try w.begin(MetricFamily(name: "x", type: .gauge, help: " \n "))
        #expect(text(w.bytes) == "# TYPE x gauge\n")
    }

    @Test func rejectsWhatAScraperWouldRejectWholesale() throws {
        var w = ExpositionWriter(format: .openMetrics)
        let family = try MetricFamily(name: "jobs", type: .counter, help: "h", labelNames: ["state"])
        try w.begin(family)
        try w.counter(1, labels: ["done"])
        #expect(throws: ExpositionError.self) { try w.counter(2, labels: ["done"]) }  // same series twice
        #expect(throws: ExpositionError.self) { try w.counter(-1, labels: ["failed"]) }
        #expect(throws: ExpositionError.self) { try w.counter(.nan, labels: ["lost"]) }
        #expect(throws: ExpositionError.self) { try w.counter(1, labels: []) }  // wrong label count
        #expect(throws: ExpositionError.self) { try w.gauge(1, labels: ["x"]) }  // wrong type
        #expect(throws: ExpositionError.self) { try w.begin(family) }  // family twice
        // A gauge that would produce the counter's sample name.
        let clash = try MetricFamily(name: "jobs_created", type: .gauge, help: "h")
        #expect(throws: ExpositionError.self) { try w.begin(clash) }
        var fresh = ExpositionWriter(format: .prometheusText)
        #expect(throws: ExpositionError.self) { try fresh.gauge(1) }  // before begin
    }

    @Test func histogramMustBeObservedWithTheFamilyBounds() throws {
        var w = ExpositionWriter(format: .prometheusText)
        try w.begin(MetricFamily(name: "d_seconds", type: .histogram, help: "h", buckets: [1, 2]))
        #expect(throws: ExpositionError.self) { try w.histogram(Histogram(upperBounds: [1, 3])) }
        var negative = Histogram(upperBounds: [1, 2])
        negative.observe(-5)
        #expect(throws: ExpositionError.self) { try w.histogram(negative) }
    }

    @Test func histogramCountsAreCumulativeAndInfEqualsCount() throws {
        var h = Histogram(upperBounds: [1, 2, 4])
        for v in [0.0, 1, 1.5, 2, 3, 4, 100, .nan] { h.observe(v) }
        #expect(h.counts == [2, 2, 2, 1])  // NaN ignored; bounds are inclusive
        #expect(h.count == 7)
        #expect(h.sum == 111.5)
        var w = ExpositionWriter(format: .prometheusText)
        try w.begin(MetricFamily(name: "d_seconds", type: .histogram, help: "h", buckets: [1, 2, 4]))
        try w.histogram(h)
        let lines = text(w.bytes).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(
            lines == [
                #"d_seconds_bucket{le="1.0"} 2"#, #"d_seconds_bucket{le="2.0"} 4"#, #"d_seconds_bucket{le="4.0"} 6"#,
                #"d_seconds_bucket{le="+Inf"} 7"#, "d_seconds_sum 111.5", "d_seconds_count 7",
            ])
        var merged = h
        merged.merge(h)
        #expect(merged.count == 14 && merged.sum == 223)
    }

    @Test func familyValidationFollowsTheNamingRules() {
        let bad: [(String, MetricType, String?, [String])] = [
            ("", .gauge, nil, []), ("1abc", .gauge, nil, []), ("a-b", .gauge, nil, []), ("rule:x", .gauge, nil, []),
            ("é", .gauge, nil, []), ("x_total", .counter, nil, []), ("x_total", .gauge, nil, []),
            ("x_info", .info, nil, []), ("x", .gauge, nil, ["__reserved"]), ("x", .gauge, nil, ["a", "a"]),
            ("x", .gauge, nil, ["bad-label"]), ("x", .gauge, nil, ["quantile"]), ("x_seconds", .gauge, "bytes", []),
            ("x", .info, "seconds", []),
        ]
        for (name, type, unit, labels) in bad {
            #expect(throws: ExpositionError.self, "\(name) \(type) \(labels)") {
                try MetricFamily(name: name, type: type, help: "h", unit: unit, labelNames: labels)
            }
        }
        #expect(throws: ExpositionError.self) {
            try MetricFamily(name: "h", type: .histogram, help: "h", labelNames: ["le"], buckets: [1])
        }
        for buckets in [[], [2.0, 1.0], [1.0, 1.0], [1.0, .infinity], [.nan]] {
            #expect(throws: ExpositionError.self, "\(buckets)") {
                try MetricFamily(name: "h", type: .histogram, help: "h", buckets: buckets)
            }
        }
        #expect(throws: ExpositionError.self) { try MetricFamily(name: "g", type: .gauge, help: "h", buckets: [1]) }
        #expect(throws: Never.self) {
            try MetricFamily(name: "_ok_Name9", type: .gauge, help: "h", labelNames: ["_a", "b9", "le"])
        }
    }
}
