#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds RFC 4180 CSV text row by row into a reusable byte buffer.
///
/// The output is UTF-8 with `,` between fields and CRLF after every row (the header too). Values are appended
/// one cell at a time with the `append…` methods, and ``endRow()`` ends a row. ``drain(_:)`` hands the bytes
/// written so far to a caller (a file, a gzip writer) and empties the buffer, keeping its capacity: after the
/// first few rows, nothing is allocated.
///
/// ## Text cells
///
/// Text arrives as bytes (as SQLite hands them out); they are copied unchanged, not validated or transcoded.
/// A text cell is enclosed in double quotes when, as written, it contains a comma, a double quote, CR or LF, or
/// starts or ends with a space or TAB (so that readers which trim unquoted fields keep them); inside quotes every
/// `"` is doubled. An empty text cell is an empty field, the same as NULL — CSV has no way to tell them apart. A row
/// made of a single empty field is written as `""`, because a blank line reads as a row with no fields.
///
/// ## Formula neutralisation (on by default)
///
/// With ``FormulaSafety/neutralize``, a text cell whose *first byte* is `=`, `+`, `-`, `@`, TAB or CR gets a
/// leading apostrophe `'`, as OWASP recommends against CSV injection; it is then quoted by the rules above (the
/// apostrophe itself needs no quoting). The rule looks at the first byte only and applies to every text cell,
/// including one that reads like a number such as `-5` or `+33 1 23`: such a value reached the writer as text,
/// and a "does it look like a number" exemption would be a second parser whose edge cases (`-1+1`, `-1e5`,
/// `-1,5` in a decimal-comma locale) are where formulas hide. A reader that wants the original text back strips
/// one leading `'` when it is followed by one of those six characters; values that themselves began with such an
/// apostrophe cannot be told apart — use ``FormulaSafety/raw`` when exact text matters.
///
/// Numbers are never altered: ``appendInteger(_:)`` and ``appendDouble(_:)`` are not neutralised, so a negative
/// number stays `-5`. Header names are quoted as needed but not neutralised: they come from the program, not
/// from the data.
///
/// ## Numbers and other values
///
/// - Integers: decimal digits, `-` for negatives.
/// - Doubles: the shortest text that reads back as the same `Double` (Swift's `description`): `0.1`, `1.0`,
///   `1e-05`, `1.5e+300`, `-0.0`; infinities and NaN as `inf`, `-inf`, `nan` (all read back by Python's
///   `float`). Integral values keep their `.0` as the `sqlite3` shell prints REAL values (`1.0`), so a REAL
///   column stays recognisable; exponent forms differ in spelling only (`1e+16` here, `1.0e+16` there), and
///   unlike the shell's 15 significant digits nothing is rounded. Numeric consumers read `1.0` and `1` alike.
/// - Booleans: `true` / `false`.
/// - NULL: an empty field.
public struct CSVWriter {
    /// The CSV bytes written since the last ``drain(_:)``.
    public private(set) var bytes: [UInt8]
    /// How text cells that look like formulas are written. May be changed between cells.
    public var formulaSafety: FormulaSafety
    private var fieldsInRow = 0
    /// No byte of the current row written yet: a lone empty field then needs `""`.
    private var rowIsBlank = true

    /// Creates a writer with an empty buffer.
    ///
    /// - Parameters:
    ///   - formulaSafety: see ``FormulaSafety``; ``FormulaSafety/neutralize`` unless the output feeds a program.
    ///   - byteOrderMark: start the output with the UTF-8 byte-order mark (EF BB BF), which Excel needs to read the
    ///     file as UTF-8.
    ///   - initialCapacity: bytes to reserve for the buffer.
    public init(
        formulaSafety: FormulaSafety = .neutralize,
        byteOrderMark: Bool = false,
        initialCapacity: Int = 64 << 10
    ) {
        self.formulaSafety = formulaSafety
        self.bytes = []
        self.bytes.reserveCapacity(initialCapacity)
        if byteOrderMark {
            self.bytes.append(contentsOf: [0xEF, 0xBB, 0xBF])
        }
    }

    /// The number of bytes waiting in ``bytes``; drain when it passes a threshold.
    public var count: Int { self.bytes.count }

    /// Passes the buffered bytes to `body` and empties the buffer, keeping its capacity.
    ///
    /// May be called in the middle of a row; the row continues with the next cell. The buffer is valid only
    /// during the call. If `body` throws, the bytes stay in the buffer.
    public mutating func drain(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try self.bytes.withUnsafeBytes { try body($0) }
        self.bytes.removeAll(keepingCapacity: true)
    }

    // MARK: - Rows

    /// Writes a header row: one text cell per name, quoted and neutralised like any text cell (a column name
    /// can come from the database); then ends the row.
    public mutating func writeHeader(_ names: some Sequence<String>) {
        for name in names { self.appendText(name) }
        self.endRow()
    }

    /// Ends the current row with CRLF.
    public mutating func endRow() {
        if self.fieldsInRow == 1 && self.rowIsBlank {
            // `""`: a blank line would read as no field at all
            self.bytes.append(0x22)
            self.bytes.append(0x22)
        }
        self.bytes.append(0x0D)
        self.bytes.append(0x0A)
        self.fieldsInRow = 0
        self.rowIsBlank = true
    }

    // MARK: - Cells

    /// Appends a text cell from UTF-8 bytes, quoting and (per ``formulaSafety``) neutralising as documented on
    /// ``CSVWriter``. The bytes are only read during the call.
    public mutating func appendText(_ text: UnsafeBufferPointer<UInt8>) {
        self.appendText(text, neutralize: self.formulaSafety == .neutralize)
    }

    /// Appends a text cell from a `String`: the same rules as for bytes, for callers that hold a `String`.
    public mutating func appendText(_ text: String) {
        var text = text
        text.withUTF8 { self.appendText($0) }
    }

    /// Appends an integer cell. Never quoted, never neutralised.
    public mutating func appendInteger(_ value: Int64) {
        self.beginField()
        self.rowIsBlank = false
        var magnitude = value.magnitude
        // 19 digits for Int64.min's magnitude, plus the sign.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = 0x30 &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            if value < 0 {
                start -= 1
                digits[start] = 0x2D
            }
            self.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// Appends a floating-point cell as the shortest text that reads back as the same value. Never quoted, never
    /// neutralised.
    public mutating func appendDouble(_ value: Double) {
        self.beginField()
        self.rowIsBlank = false
        // Shortest round-trip text; at most 15 bytes in nearly all cases, which a String holds without allocating.
        var text = value.description
        text.withUTF8 { self.bytes.append(contentsOf: $0) }
    }

    /// Appends `true` or `false`.
    public mutating func appendBool(_ value: Bool) {
        self.beginField()
        self.rowIsBlank = false
        if value {
            self.bytes.append(contentsOf: [0x74, 0x72, 0x75, 0x65])
        } else {
            self.bytes.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])
        }
    }

    /// Appends an empty field (SQL NULL).
    public mutating func appendNull() {
        self.beginField()
    }

    // MARK: - Internals

    @inline(__always)
    private mutating func beginField() {
        if self.fieldsInRow > 0 {
            self.bytes.append(0x2C)
            self.rowIsBlank = false
        }
        self.fieldsInRow += 1
    }

    private mutating func appendText(_ text: UnsafeBufferPointer<UInt8>, neutralize: Bool) {
        self.beginField()
        guard let base = text.baseAddress, !text.isEmpty else { return }
        self.rowIsBlank = false
        let count = text.count
        let first = base[0]
        let last = base[count - 1]
        let prefix = neutralize && startsFormula(first)
        // Decided on the cell as written: after a prefix, the first byte is the apostrophe.
        let quote =
            (!prefix && (first == 0x20 || first == 0x09)) || last == 0x20 || last == 0x09
            || containsQuotingByte(UnsafeRawPointer(base), count)
        if !quote {
            if prefix {
                self.bytes.append(0x27)
            }
            self.bytes.append(contentsOf: text)
            return
        }
        self.bytes.append(0x22)
        if prefix {
            self.bytes.append(0x27)
        }
        // Copy up to and including each `"`, then add a second one.
        var start = 0
        while start < count, let hit = memchr(base + start, 0x22, count - start) {
            let end = UnsafeRawPointer(hit) - UnsafeRawPointer(base) + 1
            self.bytes.append(contentsOf: UnsafeBufferPointer(start: base + start, count: end - start))
            self.bytes.append(0x22)
            start = end
        }
        self.bytes.append(contentsOf: UnsafeBufferPointer(start: base + start, count: count - start))
        self.bytes.append(0x22)
    }
}

/// `=`, `+`, `-`, `@`, TAB, CR: the first bytes that make a spreadsheet read a cell as a formula (OWASP).
@inline(__always)
func startsFormula(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x3D, 0x2B, 0x2D, 0x40, 0x09, 0x0D: true
    default: false
    }
}

/// Whether any byte is `,`, `"`, CR or LF. Eight bytes at a time: a byte equal to `c` is a zero byte in
/// `word ^ c×0x01…01`, and `(x - 0x01…01) & ~x & 0x80…80` is non-zero exactly when `x` has a zero byte.
@inline(__always)
func containsQuotingByte(_ base: UnsafeRawPointer, _ count: Int) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    @inline(__always) func hasZeroByte(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
    var offset = 0
    while offset + 8 <= count {
        let word = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        if hasZeroByte(word ^ (ones &* 0x2C)) || hasZeroByte(word ^ (ones &* 0x22))
            || hasZeroByte(word ^ (ones &* 0x0D)) || hasZeroByte(word ^ (ones &* 0x0A))
        {
            return true
        }
        offset += 8
    }
    while offset < count {
        switch base.load(fromByteOffset: offset, as: UInt8.self) {
        case 0x2C, 0x22, 0x0D, 0x0A: return true
        default: offset += 1
        }
    }
    return false
}
