/// Number rendering that Go's `ParseFloat` (Prometheus, promtool, node_exporter) and Python's
/// `int`/`float` (prometheus_client) read back to the same value.
public enum NumberText {
    /// Doubles with an integer value below 10^16 are written as integers ("42", not "42.0" or
    /// "4.2e+01"; exact, since such a double is an exact integer); others in shortest round-trip form ("0.1", "1e-05", "1.5e+300"); specials as
    /// `+Inf`, `-Inf`, `NaN`.
    public static func value(_ v: Double) -> String {
        var bytes: [UInt8] = []
        appendValue(v, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func appendValue(_ v: Double, to out: inout [UInt8]) {
        if v.isNaN {
            out.append(contentsOf: "NaN".utf8)
        } else if v.isInfinite {
            out.append(contentsOf: (v > 0 ? "+Inf" : "-Inf").utf8)
        } else if v == v.rounded(.towardZero) && v.magnitude < 1e16 {
            appendInteger(Int64(v), to: &out)
        } else {
            out.append(contentsOf: v.description.utf8)
        }
    }

    static func appendInteger(_ v: Int64, to out: inout [UInt8]) {
        if v < 0 { out.append(UInt8(ascii: "-")) }
        appendInteger(v.magnitude, to: &out)
    }

    static func appendInteger(_ v: UInt64, to out: inout [UInt8]) {
        if v < 10 {
            out.append(0x30 + UInt8(v))
            return
        }
        var digits: (UInt64, [UInt8]) = (v, [])
        digits.1.reserveCapacity(20)
        while digits.0 > 0 {
            digits.1.append(0x30 + UInt8(digits.0 % 10))
            digits.0 /= 10
        }
        out.append(contentsOf: digits.1.reversed())
    }

    /// The canonical rendering OpenMetrics asks for in `le` (and `quantile`) labels: Go's `%g` with the
    /// shortest digits, `.0` appended when that has neither a point nor an exponent. `1` → `1.0`,
    /// `0.25` → `0.25`, `1e6` → `1e+06`, `+Inf`. prometheus_client renders bounds the same way.
    public static func canonicalBound(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == 0 { return v.sign == .minus ? "-0.0" : "0.0" }
        let (negative, digits, pointPosition) = decimalDigits(v)
        var s = negative ? "-" : ""
        let exponent = pointPosition - 1
        if exponent < -4 || exponent >= 6 {
            s.append(Character(Unicode.Scalar(digits[0])))
            if digits.count > 1 {
                s.append(".")
                s.append(String(decoding: digits[1...], as: UTF8.self))
            }
            s.append(exponent < 0 ? "e-" : "e+")
            let magnitude = exponent.magnitude
            if magnitude < 10 { s.append("0") }
            s.append(String(magnitude))
            return s
        }
        if pointPosition <= 0 {
            s.append("0.")
            s.append(String(repeating: "0", count: -pointPosition))
            s.append(String(decoding: digits, as: UTF8.self))
        } else if pointPosition >= digits.count {
            s.append(String(decoding: digits, as: UTF8.self))
            s.append(String(repeating: "0", count: pointPosition - digits.count))
            s.append(".0")
        } else {
            s.append(String(decoding: digits[..<pointPosition], as: UTF8.self))
            s.append(".")
            s.append(String(decoding: digits[pointPosition...], as: UTF8.self))
        }
        return s
    }

    /// Shortest round-trip decimal digits of a finite non-zero `v` (from Swift's `description`, which is
    /// shortest round-trip), without leading or trailing zeros, and the decimal point position: the
    /// value is 0.d₁d₂… × 10^pointPosition.
    static func decimalDigits(_ v: Double) -> (negative: Bool, digits: [UInt8], pointPosition: Int) {
        let text = Array(v.magnitude.description.utf8)
        var mantissa: [UInt8] = []
        var pointIndex: Int? = nil
        var exponent = 0
        var i = 0
        while i < text.count {
            let c = text[i]
            if c == UInt8(ascii: ".") {
                pointIndex = mantissa.count
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                exponent = Int(String(decoding: text[(i + 1)...], as: UTF8.self)) ?? 0
                break
            } else {
                mantissa.append(c)
            }
            i += 1
        }
        var point = (pointIndex ?? mantissa.count) + exponent
        while let first = mantissa.first, first == UInt8(ascii: "0") {
            mantissa.removeFirst()
            point -= 1
        }
        while let last = mantissa.last, last == UInt8(ascii: "0") { mantissa.removeLast() }
        return (v.sign == .minus, mantissa, point)
    }
}
