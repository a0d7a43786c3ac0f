import Testing

@testable import ExpositionFormat

/// Writes random label values and HELP texts in both formats for `scripts/checks/exposition_roundtrip.py`,
/// which parses them with prometheus_client's text and OpenMetrics parsers and compares every value with
/// the originals listed here. Set `EXPOSITION_ROUNDTRIP_DIR` to run it; `EXPOSITION_ROUNDTRIP_CASES`
/// (default 100 000) and `EXPOSITION_ROUNDTRIP_SEED` are optional.
@Suite(.enabled(if: environment("EXPOSITION_ROUNDTRIP_DIR") != nil, "set EXPOSITION_ROUNDTRIP_DIR to write the cases"))
struct ExpositionRoundTripTests {
    @Test func writeRandomCasesForThePythonParsers() throws {
        let directory = environment("EXPOSITION_ROUNDTRIP_DIR")!
        let cases = environment("EXPOSITION_ROUNDTRIP_CASES").flatMap { Int($0) } ?? 100_000
        let seed = environment("EXPOSITION_ROUNDTRIP_SEED").flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64.max)
        var rng = SplitMix64(seed: seed)

        var text = ExpositionWriter(format: .prometheusText, capacity: cases * 300)
        var om = ExpositionWriter(format: .openMetrics, capacity: cases * 300)
        var expected: [UInt8] = Array("seed \(seed) cases \(cases)\n".utf8)
        for i in 0..<cases {
            let help = randomText(&rng)
            let a = randomText(&rng)
            let b = randomText(&rng)
            let name = "case_\(i)"
            var line = "\(i) "
            switch i % 4 {
            case 0:
                let value = randomValue(&rng)
                let family = try MetricFamily(name: name, type: .gauge, help: help, labelNames: ["a", "b"])
                for w in [0, 1] { try withWriter(w, &text, &om) { try $0.begin(family); try $0.gauge(value, labels: [a, b]) } }
                line += "g \(hex(help)) \(hex(a)) \(hex(b)) \(bits(value))"
            case 1:
                var value = randomValue(&rng).magnitude
                if value.isNaN { value = 0 }
                let created = Double(rng.next() % 2_000_000_000) + 0.25
                let family = try MetricFamily(name: name, type: .counter, help: help, labelNames: ["a", "b"])
                for w in [0, 1] {
                    try withWriter(w, &text, &om) { try $0.begin(family); try $0.counter(value, created: created, labels: [a, b]) }
                }
                line += "c \(hex(help)) \(hex(a)) \(hex(b)) \(bits(value)) \(bits(created))"
            case 2:
                let family = try MetricFamily(name: name, type: .info, help: help, labelNames: ["a", "b"])
                for w in [0, 1] { try withWriter(w, &text, &om) { try $0.begin(family); try $0.info(labels: [a, b]) } }
                line += "i \(hex(help)) \(hex(a)) \(hex(b))"
            default:
                var bounds = Set<Double>()
                while bounds.count < 4 { bounds.insert(randomBound(&rng)) }
                let sorted = bounds.sorted()
                var h = Histogram(upperBounds: sorted)
                for _ in 0..<Int(rng.next() % 20) { h.observe(randomBound(&rng) * 1.5) }
                let family = try MetricFamily(name: name, type: .histogram, help: help, labelNames: ["a", "b"], buckets: sorted)
                for w in [0, 1] { try withWriter(w, &text, &om) { try $0.begin(family); try $0.histogram(h, labels: [a, b]) } }
                let boundList = sorted.map { bits($0) }.joined(separator: ",")
                let countList = h.counts.map { String($0) }.joined(separator: ",")
                line += "h \(hex(help)) \(hex(a)) \(hex(b)) \(boundList) \(countList) \(bits(h.sum))"
            }
            expected.append(contentsOf: line.utf8)
            expected.append(0x0A)
        }
        try writeFile(directory + "/roundtrip.prom", text.finish())
        try writeFile(directory + "/roundtrip.om", om.finish())
        try writeFile(directory + "/roundtrip.expected", expected)
    }
}

private func withWriter(
    _ which: Int, _ a: inout ExpositionWriter, _ b: inout ExpositionWriter,
    _ body: (inout ExpositionWriter) throws -> Void
) rethrows {
    if which == 0 { try body(&a) } else { try body(&b) }
}

/// "x" + hex of the UTF-8 bytes, so that empty strings and any byte survive a whitespace-split line.
private func hex(_ s: String) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = [UInt8(ascii: "x")]
    for byte in s.utf8 {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func bits(_ v: Double) -> String { String(v.bitPattern, radix: 16) }

/// Text drawn from all of Unicode, weighted towards what breaks exposition parsers: backslashes,
/// quotes, newlines, braces, commas, `#`, control characters, Unicode whitespace.
func randomText(_ rng: inout SplitMix64) -> String {
    let length = Int(rng.next() % 25)
    var scalars = String.UnicodeScalarView()
    let specials: [UInt32] = [0x5C, 0x22, 0x0A, 0x0D, 0x09, 0x7B, 0x7D, 0x2C, 0x3D, 0x23, 0x20, 0x6E, 0x00]
    let whitespace: [UInt32] = [0x0B, 0x0C, 0x1C, 0x1F, 0x85, 0xA0, 0x1680, 0x2000, 0x2028, 0x2029, 0x202F, 0x3000, 0xFEFF]
    for _ in 0..<length {
        let value: UInt32
        switch rng.next() % 100 {
        case 0..<25: value = UInt32(0x20 + rng.next() % 95)  // printable ASCII
        case 25..<50: value = specials[Int(rng.next() % UInt64(specials.count))]
        case 50..<62: value = UInt32(rng.next() % 0x20 + (rng.next() % 2 == 0 ? 0 : 0x7F))  // C0, DEL, C1
        case 62..<70: value = whitespace[Int(rng.next() % UInt64(whitespace.count))]
        case 70..<88: value = UInt32(0xA0 + rng.next() % (0xFFFE - 0xA0))  // BMP
        default: value = UInt32(0x10000 + rng.next() % (0x110000 - 0x10000))  // astral planes
        }
        // Surrogate code points are not scalars; take a neighbour.
        scalars.append(Unicode.Scalar(value) ?? Unicode.Scalar(0xE000)!)
    }
    return String(scalars)
}

private func randomValue(_ rng: inout SplitMix64) -> Double {
    switch rng.next() % 6 {
    case 0: return Double(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64))
    case 1: return [Double.infinity, -.infinity, .nan, 0, -0.0, 1e-300][Int(rng.next() % 6)]
    case 2: return Double(rng.next() % 1_000_000) / 1000
    default:
        let v = Double(bitPattern: rng.next())
        return v.isNaN ? 0.5 : v
    }
}

private func randomBound(_ rng: inout SplitMix64) -> Double {
    switch rng.next() % 3 {
    case 0: return Double(rng.next() % 10_000) / 100
    case 1: return Double(rng.next() % 100_000_000)
    default: return Double(rng.next() % 1_000) * 1e-6
    }
}
