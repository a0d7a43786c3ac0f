import Foundation
import Testing

@testable import TraceEventFormat

struct TraceEventEscapeTests {
    private func quoted(_ bytes: [UInt8]) -> String {
        String(decoding: JSONStringEscaper.quoted(validatingUTF8: bytes), as: UTF8.self)
    }

    /// Decodes one JSON string literal by RFC 8259, written separately from the escaper so that it can disagree.
    /// (Foundation's reader on Linux is not usable as the reference: it drops U+FEFF at the start of a string and
    /// after an escape.) Fails on anything RFC 8259 forbids, raw control characters included.
    private func parse(_ literal: String) throws -> String {
        struct Invalid: Error {}
        var scalars = Array(literal.unicodeScalars)[...]
        guard scalars.popFirst() == "\"", scalars.popLast() == "\"" else { throw Invalid() }
        var out = String.UnicodeScalarView()
        func hex4() throws -> UInt32 {
            guard scalars.count >= 4 else { throw Invalid() }
            let digits = String(String.UnicodeScalarView(scalars.prefix(4)))
            scalars = scalars.dropFirst(4)
            guard let value = UInt32(digits, radix: 16), digits.allSatisfy(\.isHexDigit) else { throw Invalid() }
            return value
        }
        while let scalar = scalars.popFirst() {
            switch scalar {
            case "\"": throw Invalid()
            case "\\":
                switch scalars.popFirst() {
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                case "/": out.append("/")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "u":
                    var value = try hex4()
                    if (0xD800..<0xDC00).contains(value) {
                        guard scalars.popFirst() == "\\", scalars.popFirst() == "u" else { throw Invalid() }
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Invalid() }
                        value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let decoded = Unicode.Scalar(value) else { throw Invalid() }
                    out.append(decoded)
                default: throw Invalid()
                }
            default:
                guard scalar.value >= 0x20 else { throw Invalid() }
                out.append(scalar)
            }
        }
        return String(out)
    }

    @Test func referenceDecoderRejectsWhatJSONForbids() {
        for bad in ["abc", #""a"b""#, "\"\u{01}\"", #""\x""#, #""\u12""#, #""\ud800""#] {
            #expect(throws: (any Error).self) { try parse(bad) }
        }
    }

    // MARK: - Escapes

    @Test func quotesAndBackslashesAreEscaped() {
        #expect(JSONStringEscaper.quoted(#"a"b\c"#) == #""a\"b\\c""#)
    }

    @Test func namedControlCharactersUseShortEscapes() {
        #expect(JSONStringEscaper.quoted("\n\r\t\u{08}\u{0C}") == #""\n\r\t\b\f""#)
    }

    @Test func otherControlCharactersUseUnicodeEscapes() {
        #expect(JSONStringEscaper.quoted("\u{00}\u{01}\u{1F}") == #""\u0000\u0001\u001f""#)
    }

    @Test func deleteAndNonASCIIPassThrough() {
        let text = "\u{7F}é日本🚀\u{2028}\u{FEFF}\u{10FFFF}"
        #expect(JSONStringEscaper.quoted(text) == "\"\(text)\"")
    }

    @Test func emptyStringIsTwoQuotes() {
        #expect(JSONStringEscaper.quoted("") == #""""#)
    }

    // MARK: - Invalid UTF-8

    @Test(
        arguments: [
            ([0xFF], "\u{FFFD}"),
            ([0x61, 0x80, 0x62], "a\u{FFFD}b"),
            ([0xC0, 0xAF], "\u{FFFD}\u{FFFD}"),  // overlong: C0 is never valid, then a stray continuation
            ([0xE0, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),  // overlong three-byte form
            ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),  // a UTF-16 surrogate
            ([0xF0, 0x9F, 0x9A], "\u{FFFD}"),  // truncated emoji: one replacement for the maximal subpart
            ([0xF0, 0x9F, 0x9A, 0x22], "\u{FFFD}\""),
            ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),  // above U+10FFFF
            ([0xE2, 0x82], "\u{FFFD}"),
            ([0xE2, 0x82, 0xAC], "€"),
        ] as [([UInt8], String)]
    )
    func invalidSequencesBecomeReplacementCharacters(bytes: [UInt8], expected: String) throws {
        #expect(try parse(quoted(bytes)) == expected)
    }

    @Test func validationMatchesTheStandardLibraryDecoderOnRandomBytes() throws {
        var random = SplitMix64(seed: 0x5EED_0001)
        for _ in 0..<20_000 {
            let bytes = random.bytes(maxCount: 24)
            let literal = quoted(bytes)
            #expect(literal.utf8.elementsEqual(JSONStringEscaper.quoted(validatingUTF8: bytes)))
            #expect(try parse(literal) == String(decoding: bytes, as: UTF8.self), "bytes \(bytes)")
        }
    }

    @Test func randomStringsDecodeBackToThemselves() throws {
        var random = SplitMix64(seed: 0x5EED_0002)
        for _ in 0..<20_000 {
            let text = random.string(maxScalars: 16)
            #expect(
                try parse(JSONStringEscaper.quoted(text)) == text,
                "\(text.unicodeScalars.map { String($0.value, radix: 16) })"
            )
        }
    }

    // MARK: - Round trip through Python's json (scripts/checks/json_escape_roundtrip.py)

    static let roundTripFile = ProcessInfo.processInfo.environment["TRACE_JSON_ROUNDTRIP_FILE"]

    /// Writes `hex(bytes) TAB literal` lines for the Python script to compare: strings from all of Unicode (valid
    /// input), then arbitrary bytes (invalid UTF-8). The seed is in the file so a failure can be replayed.
    @Test(.enabled(if: roundTripFile != nil, "set TRACE_JSON_ROUNDTRIP_FILE to write the round-trip corpus"))
    func writeRoundTripCorpus() throws {
        let path = try #require(Self.roundTripFile)
        let count = Int(ProcessInfo.processInfo.environment["TRACE_JSON_ROUNDTRIP_COUNT"] ?? "") ?? 100_000
        let seed = UInt64(ProcessInfo.processInfo.environment["TRACE_JSON_ROUNDTRIP_SEED"] ?? "") ?? 0x5EED_0003
        var random = SplitMix64(seed: seed)
        var out = "# seed \(seed)\n"
        func line(_ bytes: some Collection<UInt8>, _ literal: some Collection<UInt8>) {
            for byte in bytes {
                out += String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
            }
            out += "\t"
            out += String(decoding: literal, as: UTF8.self)
            out += "\n"
        }
        for _ in 0..<count {
            let text = random.string(maxScalars: 40)
            line(Array(text.utf8), JSONStringEscaper.quoted(text).utf8)
        }
        for _ in 0..<count / 2 {
            let bytes = random.bytes(maxCount: 40)
            line(bytes, JSONStringEscaper.quoted(validatingUTF8: bytes))
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

extension SplitMix64 {
    /// Scalars drawn from the whole Unicode range, weighted towards the ones an escaper gets wrong: controls,
    /// quotes, backslashes, and the edges of each UTF-8 length.
    mutating func scalar() -> Unicode.Scalar {
        let edges: [UInt32] = [0x7F, 0x80, 0x7FF, 0x800, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF, 0x2028, 0x2029, 0xFEFF]
        let value: UInt32
        switch Int.random(in: 0..<10, using: &self) {
        case 0: value = UInt32.random(in: 0..<0x20, using: &self)
        case 1: value = [0x22, 0x5C, 0x2F][Int.random(in: 0..<3, using: &self)]
        case 2: value = edges[Int.random(in: 0..<edges.count, using: &self)]
        case 3, 4: value = UInt32.random(in: 0x20..<0x7F, using: &self)
        case 5: value = UInt32.random(in: 0x80..<0x800, using: &self)
        case 6: value = UInt32.random(in: 0x800..<0x10000, using: &self)
        default: value = UInt32.random(in: 0..<0x110000, using: &self)
        }
        // Surrogate code points are not scalars; map them into the astral planes instead.
        return Unicode.Scalar(value) ?? Unicode.Scalar(value + 0x10000)!
    }

    mutating func string(maxScalars: Int) -> String {
        var view = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...maxScalars, using: &self) { view.append(scalar()) }
        return String(view)
    }

    /// Arbitrary bytes, weighted towards UTF-8 lead and continuation bytes so that near-valid sequences are common.
    mutating func bytes(maxCount: Int) -> [UInt8] {
        (0..<Int.random(in: 0...maxCount, using: &self)).map { _ in
            switch Int.random(in: 0..<4, using: &self) {
            case 0: UInt8.random(in: 0x80...0xBF, using: &self)
            case 1: UInt8.random(in: 0xC0...0xFF, using: &self)
            case 2: UInt8.random(in: 0x00...0x7F, using: &self)
            default: UInt8.random(in: 0x00...0xFF, using: &self)
            }
        }
    }
}
