import Testing

@testable import ExpositionFormat

struct ExpositionNumberTests {
    @Test(arguments: [
        (0.0, "0"), (-0.0, "0"), (42, "42"), (-7, "-7"), (1e15, "1000000000000000"), (68_719_476_736, "68719476736"),
        (9_007_199_254_740_991, "9007199254740991"), (9_007_199_254_740_992, "9007199254740992"), (9_999_999_999_999_998, "9999999999999998"),
        (1e16, "1e+16"), (0.1, "0.1"), (1e-05, "1e-05"), (1.5, "1.5"), (0.1 + 0.2, "0.30000000000000004"),
        (Double.greatestFiniteMagnitude, "1.7976931348623157e+308"), (Double.leastNonzeroMagnitude, "5e-324"),
        (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"), (Double.nan, "NaN"),
    ])
    func valuesAreIntegersWhenExactAndShortestOtherwise(value: Double, expected: String) {
        #expect(NumberText.value(value) == expected)
    }

    /// The same renderings as Go's `%g` plus `.0`, and as prometheus_client's `floatToGoString`.
    @Test(arguments: [
        (1.0, "1.0"), (0.5, "0.5"), (0.0, "0.0"), (10, "10.0"), (100_000, "100000.0"), (1e6, "1e+06"),
        (1_234_567, "1.234567e+06"), (123_456.7, "123456.7"), (0.0001, "0.0001"), (0.00001, "1e-05"),
        (2.5e-7, "2.5e-07"), (1e21, "1e+21"), (3600, "3600.0"), (-2, "-2.0"), (Double.infinity, "+Inf"),
    ])
    func bucketBoundsUseTheCanonicalRendering(value: Double, expected: String) {
        #expect(NumberText.canonicalBound(value) == expected)
    }

    @Test func integersRenderAllDigits() {
        for v: UInt64 in [0, 9, 10, 99, 100, 12_345, UInt64.max] {
            var out: [UInt8] = []
            NumberText.appendInteger(v, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(v))
        }
        var out: [UInt8] = []
        NumberText.appendInteger(Int64.min, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == String(Int64.min))
    }

    @Test func everyRenderedValueParsesBackToTheSameDouble() {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<100_000 {
            let v = Double(bitPattern: rng.next())
            guard v.isFinite else { continue }
            let parsed = Double(NumberText.value(v))
            #expect(parsed == v, "\(v.bitPattern)")
            if parsed != v { return }
        }
    }
}
