import CSVFormat
import Testing

struct CSVWriterTests {
    // MARK: - Quoting

    @Test(arguments: [
        ("abc", "abc"),
        ("a b", "a b"),
        ("a\tb", "a\tb"),
        ("a'b", "a'b"),
        ("a;b", "a;b"),
        ("back\\slash", "back\\slash"),
        ("a,b", "\"a,b\""),
        (",", "\",\""),
        ("a\"b", "\"a\"\"b\""),
        ("\"", "\"\"\"\""),
        ("\"\"", "\"\"\"\"\"\""),
        ("\"quoted\"", "\"\"\"quoted\"\"\""),
        ("a\rb", "\"a\rb\""),
        ("a\nb", "\"a\nb\""),
        ("a\r\nb", "\"a\r\nb\""),
        ("\n", "\"\n\""),
        (" a", "\" a\""),
        ("a ", "\"a \""),
        (" ", "\" \""),
        ("\ta", "\"\ta\""),
        ("a\t", "\"a\t\""),
        ("ñodé-ü", "ñodé-ü"),
        ("日本語 函数", "日本語 函数"),
        ("emoji 🚀", "emoji 🚀"),
        ("007", "007"),
        ("12345678901234567890", "12345678901234567890"),
        ("2024-01-01 00:00:00.123456", "2024-01-01 00:00:00.123456"),
        ("long, with \"all\"\r\nof it ", "\"long, with \"\"all\"\"\r\nof it \""),
    ])
    func textIsQuotedOnlyWhenNeeded(text: String, expected: String) {
        // A second cell, so the row is never the single-empty-field special case.
        #expect(csvString([text, "x"]) == expected + ",x\r\n")
    }

    @Test func quotingDecisionIsExactForEveryByteAtEveryPosition() {
        // Covers the eight-bytes-at-a-time scan: every byte value, at every offset of fields up to 3 words long,
        // against the plain rule. The bytes 0x80-0xFF include 0xAC/0xA2/0x8D/0x8A, the specials with the top bit.
        for length in 1...24 {
            for position in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    var field = [UInt8](repeating: 0x61, count: length)
                    field[position] = byte
                    var writer = CSVWriter(formulaSafety: .raw)
                    field.withUnsafeBufferPointer { writer.appendText($0) }
                    let special = [0x2C, 0x22, 0x0D, 0x0A].contains(byte)
                    let atEdge = position == 0 || position == length - 1
                    let shouldQuote = special || (atEdge && (byte == 0x20 || byte == 0x09))
                    if (writer.bytes.first == 0x22) != shouldQuote {
                        Issue.record("byte \(byte) at \(position) of \(length): got \(writer.bytes)")
                        return
                    }
                }
            }
        }
    }

    // MARK: - Rows, NULL, BOM

    @Test func rowsEndWithCRLFAndFieldsAreCommaSeparated() {
        var writer = CSVWriter()
        writer.writeHeader(["id", "name"])
        writer.appendInteger(1)
        writer.appendText("a")
        writer.endRow()
        writer.appendInteger(2)
        writer.appendNull()
        writer.endRow()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "id,name\r\n1,a\r\n2,\r\n")
    }

    @Test func aRowOfOneEmptyFieldIsWrittenAsTwoQuotes() throws {
        var writer = CSVWriter()
        writer.appendNull()
        writer.endRow()
        writer.appendText("")
        writer.endRow()
        writer.appendNull()
        writer.appendNull()
        writer.endRow()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "\"\"\r\n\"\"\r\n,\r\n")
        #expect(try parseCSV(writer.bytes) == [[""], [""], ["", ""]])
    }

    @Test func aRowOfOneNonEmptyCellIsWrittenAsIs() throws {
        var writer = CSVWriter()
        writer.appendInteger(7)
        writer.endRow()
        writer.appendDouble(1.5)
        writer.endRow()
        writer.appendBool(false)
        writer.endRow()
        writer.appendText("t")
        writer.endRow()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "7\r\n1.5\r\nfalse\r\nt\r\n")
    }

    @Test(arguments: [true, false])
    func byteOrderMarkOnlyWhenAsked(bom: Bool) {
        var writer = CSVWriter(byteOrderMark: bom)
        writer.writeHeader(["a"])
        let expected: [UInt8] = (bom ? [0xEF, 0xBB, 0xBF] : []) + Array("a\r\n".utf8)
        #expect(writer.bytes == expected)
    }

    /// A source column the mappings do not know keeps its database name, which a spreadsheet would run as a
    /// formula like any other cell.
    @Test(arguments: [(FormulaSafety.neutralize, "'-x,\"a,b\",'=sum\r\n"), (.raw, "-x,\"a,b\",=sum\r\n")])
    func headerIsQuotedAndNeutralisedLikeAnyCell(safety: FormulaSafety, expected: String) {
        var writer = CSVWriter(formulaSafety: safety)
        writer.writeHeader(["-x", "a,b", "=sum"])
        #expect(String(decoding: writer.bytes, as: UTF8.self) == expected)
    }

    @Test func drainHandsOutTheBytesAndKeepsTheRowGoing() {
        var writer = CSVWriter()
        writer.appendText("a")
        var drained: [UInt8] = []
        writer.drain { drained.append(contentsOf: $0) }
        #expect(writer.count == 0)
        writer.appendText("b")
        writer.endRow()
        writer.drain { drained.append(contentsOf: $0) }
        #expect(String(decoding: drained, as: UTF8.self) == "a,b\r\n")
    }

    // MARK: - Formula neutralisation

    @Test(arguments: [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "\"'\rx\""),
        ("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        ("=a,b", "\"'=a,b\""),
        ("-x ", "\"'-x \""),
        ("a=b", "a=b"),
        (" =1", "\" =1\""),
        ("'=1", "'=1"),
        ("", ""),
    ])
    func formulaStartersGetAnApostropheByDefault(text: String, expected: String) throws {
        #expect(csvString([text, "x"], safety: .neutralize) == expected + ",x\r\n")
        // The written cell reads back as the documented rule says.
        #expect(try parseCSV(csvBytes([text, "x"], safety: .neutralize)) == [[neutralized(text), "x"]])
    }

    @Test(arguments: ["=1+1", "+cmd", "-5", "@SUM(A1)", "\tx", "\rx"])
    func rawLeavesFormulaStartersAlone(text: String) throws {
        #expect(try parseCSV(csvBytes([text, "x"], safety: .raw)) == [[text, "x"]])
        #expect(csvBytes([text], safety: .raw).first != 0x27)
    }

    @Test func defaultIsNeutralise() {
        var writer = CSVWriter()
        writer.appendText("=1")
        #expect(writer.bytes == Array("'=1".utf8))
    }

    @Test func numbersAreNeverNeutralised() {
        var writer = CSVWriter(formulaSafety: .neutralize)
        writer.appendInteger(-5)
        writer.appendDouble(-1.5)
        writer.appendDouble(-.infinity)
        writer.endRow()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "-5,-1.5,-inf\r\n")
    }

    // MARK: - Numbers and booleans

    @Test(arguments: [0, 1, -1, 9, 10, -10, 1_234_567_890, Int64.max, Int64.min, Int64.min + 1])
    func integersAreDecimal(value: Int64) {
        var writer = CSVWriter()
        writer.appendInteger(value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == String(value))
    }

    @Test(arguments: [
        (1.0, "1.0"), (0.1, "0.1"), (-0.0, "-0.0"), (0.0, "0.0"), (1e-5, "1e-05"), (123.456, "123.456"),
        (1e16, "1e+16"), (Double.infinity, "inf"), (Double.nan, "nan"), (Double.leastNonzeroMagnitude, "5e-324"),
    ])
    func doublesUseTheShortestRoundTripText(value: Double, expected: String) {
        var writer = CSVWriter()
        writer.appendDouble(value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == expected)
    }

    @Test func randomDoublesReadBackBitForBit() throws {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<20_000 {
            let value = Double(bitPattern: rng.next())
            guard value.isFinite else { continue }
            var writer = CSVWriter()
            writer.appendDouble(value)
            let parsed = try #require(Double(String(decoding: writer.bytes, as: UTF8.self)))
            #expect(parsed.bitPattern == value.bitPattern)
        }
    }

    @Test func booleansAreWords() {
        var writer = CSVWriter()
        writer.appendBool(true)
        writer.appendBool(false)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "true,false")
    }

    // MARK: - Property: random text round-trips

    @Test(arguments: [FormulaSafety.raw, .neutralize])
    func tenThousandRandomRowsRoundTripThroughAStrictReader(safety: FormulaSafety) throws {
        var rng = SplitMix64(seed: safety == .raw ? 1 : 2)
        var writer = CSVWriter(formulaSafety: safety)
        var expected: [[String]] = []
        for _ in 0..<10_000 {
            let cells = (0..<Int.random(in: 1...6, using: &rng)).map { _ in randomCSVText(using: &rng) }
            for cell in cells {
                writer.appendText(cell)
            }
            writer.endRow()
            expected.append(safety == .raw ? cells : cells.map(neutralized))
        }
        let rows = try parseCSV(writer.bytes)
        #expect(rows.count == expected.count)
        for (index, (got, want)) in zip(rows, expected).enumerated() where got != want {
            Issue.record("row \(index): got \(got.debugDescription), want \(want.debugDescription)")
            break
        }
    }

    @Test func theTestReaderRejectsMalformedCSV() {
        // The round-trip proof is only as good as the reader: it must refuse what a lenient reader accepts.
        for bad in ["\"unterminated\r\n", "a\"b\r\n", "\"a\"b\r\n", "a\nb\r\n", "a,b", "a\rb\r\n"] {
            #expect(throws: CSVParseError.self, "\(bad.debugDescription)") { try parseCSV(Array(bad.utf8)) }
        }
    }
}
