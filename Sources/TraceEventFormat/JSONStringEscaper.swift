/// Writes JSON string literals.
///
/// Valid UTF-8 passes through unchanged (JSON is UTF-8 and readers accept it), so only `"`, `\` and the C0 controls
/// are escaped. Raw bytes of unknown quality (text columns read straight from a database) are validated on the way:
/// each ill-formed sequence becomes one U+FFFD, following Unicode's "maximal subpart" practice, which is what Swift's
/// `String(decoding:as:)` and Python's `bytes.decode("utf-8", "replace")` do too.
public enum JSONStringEscaper {
    /// Returns `text` as a quoted JSON string literal.
    public static func quoted(_ text: String) -> String {
        var buffer = ByteBuffer(capacity: text.utf8.count + 2)
        defer { buffer.deallocate() }
        appendQuoted(text, to: &buffer)
        return String(decoding: buffer.bytes, as: UTF8.self)
    }

    /// Returns `bytes` (any bytes, not necessarily UTF-8) as a quoted JSON string literal of valid UTF-8.
    public static func quoted(validatingUTF8 bytes: some Collection<UInt8>) -> [UInt8] {
        var buffer = ByteBuffer(capacity: bytes.count + 2)
        defer { buffer.deallocate() }
        let copy = Array(bytes)
        copy.withUnsafeBytes { appendQuoted(validating: $0, to: &buffer) }
        return Array(buffer.bytes)
    }

    // MARK: - Into a buffer

    static func appendQuoted(_ text: String, to buffer: inout ByteBuffer) {
        var text = text
        // Native strings are contiguous UTF-8, so this does not copy; bridged ones are made native once.
        text.withUTF8 { utf8 in
            buffer.append(UInt8(ascii: "\""))
            appendEscaped(UnsafeRawBufferPointer(utf8), to: &buffer)
            buffer.append(UInt8(ascii: "\""))
        }
    }

    static func appendQuoted(validating bytes: UnsafeRawBufferPointer, to buffer: inout ByteBuffer) {
        buffer.append(UInt8(ascii: "\""))
        appendEscaped(validating: bytes, to: &buffer)
        buffer.append(UInt8(ascii: "\""))
    }

    /// Escapes bytes already known to be valid UTF-8 (the contents of a Swift `String`).
    static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to buffer: inout ByteBuffer) {
        var runStart = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            // Copy the clean run in one go, then the escape.
            buffer.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            appendEscape(for: byte, to: &buffer)
            index += 1
            runStart = index
        }
        buffer.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count]))
    }

    /// Escapes arbitrary bytes, replacing each ill-formed UTF-8 sequence with U+FFFD.
    static func appendEscaped(validating bytes: UnsafeRawBufferPointer, to buffer: inout ByteBuffer) {
        var runStart = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte < 0x80 {
                if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                    index += 1
                    continue
                }
                buffer.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                appendEscape(for: byte, to: &buffer)
                index += 1
                runStart = index
                continue
            }
            let valid = wellFormedLength(bytes, at: index)
            if valid.complete {
                index += valid.length
                continue
            }
            buffer.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            buffer.append(0xEF)
            buffer.append(0xBF)
            buffer.append(0xBD)
            index += valid.length
            runStart = index
        }
        buffer.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count]))
    }

    /// For the non-ASCII sequence starting at `start`: its length when well formed, otherwise the length of its
    /// maximal subpart (at least 1), which is replaced by a single U+FFFD (Unicode 15, table 3-7).
    @inline(__always)
    private static func wellFormedLength(
        _ bytes: UnsafeRawBufferPointer,
        at start: Int
    ) -> (complete: Bool, length: Int) {
        let lead = bytes[start]
        let needed: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: needed = 1
        case 0xE0:
            needed = 2
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: needed = 2
        case 0xED:
            needed = 2
            high = 0x9F  // no UTF-16 surrogates
        case 0xF0:
            needed = 3
            low = 0x90
        case 0xF1...0xF3: needed = 3
        case 0xF4:
            needed = 3
            high = 0x8F  // nothing above U+10FFFF
        default: return (false, 1)  // a stray continuation byte, C0, C1 or F5...FF
        }
        // Only the first continuation byte has a narrowed range.
        for offset in 1...needed {
            let position = start + offset
            guard position < bytes.count else { return (false, offset) }
            let byte = bytes[position]
            if byte < low || byte > high { return (false, offset) }
            low = 0x80
            high = 0xBF
        }
        return (true, needed + 1)
    }

    @inline(__always)
    private static func appendEscape(for byte: UInt8, to buffer: inout ByteBuffer) {
        switch byte {
        case UInt8(ascii: "\""): buffer.append("\\\"")
        case UInt8(ascii: "\\"): buffer.append("\\\\")
        case 0x0A: buffer.append("\\n")
        case 0x0D: buffer.append("\\r")
        case 0x09: buffer.append("\\t")
        case 0x08: buffer.append("\\b")
        case 0x0C: buffer.append("\\f")
        default:
            let hex: StaticString = "0123456789abcdef"
            buffer.append("\\u00")
            buffer.append(hex.utf8Start[Int(byte >> 4)])
            buffer.append(hex.utf8Start[Int(byte & 0x0F)])
        }
    }
}
