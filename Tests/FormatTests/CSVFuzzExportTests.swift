import CSVFormat
import GzipStream
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes random rows for `scripts/checks/csv_fuzz_roundtrip.py`, which reads them back with Python's `csv` and
/// compares them with the JSON list of expected cells written alongside. Runs only when `CSV_FUZZ_OUT` names a
/// directory (the script sets it); otherwise it is reported as skipped.
///
/// The last row holds a 200 KB text cell. Files: `raw.csv` (``FormulaSafety/raw``), `neutral.csv.gz` (the default neutralisation, through ``GzipWriter``
/// with small blocks so many block edges fall inside fields), `expected.json`.
@Suite(.enabled(if: getenv("CSV_FUZZ_OUT") != nil, "set CSV_FUZZ_OUT=DIR to write the Python cross-check files"))
struct CSVFuzzExportTests {
    @Test func writeRandomCellsForPython() throws {
        let directory = String(cString: getenv("CSV_FUZZ_OUT"))
        let seed = getenv("CSV_FUZZ_SEED").flatMap { UInt64(String(cString: $0)) } ?? 1
        let rowCount = getenv("CSV_FUZZ_ROWS").flatMap { Int(String(cString: $0)) } ?? 30_000
        var rng = SplitMix64(seed: seed)

        var raw = CSVWriter(formulaSafety: .raw)
        var neutral = CSVWriter(formulaSafety: .neutralize)
        var rawFile: [UInt8] = []
        var gzipFile: [UInt8] = []
        let gzip = try GzipWriter(threads: 2, blockSize: 32 << 10) { gzipFile.append(contentsOf: $0) }
        var json = Array("{\"seed\": \(seed), \"rows\": [\n".utf8)

        for rowIndex in 0..<rowCount {
            json.append(contentsOf: Array((rowIndex == 0 ? "[" : ",\n[").utf8))
            for column in 0..<Int.random(in: 1...7, using: &rng) {
                if column > 0 { json.append(0x2C) }
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<70:
                    let text = randomCSVText(using: &rng)
                    raw.appendText(text)
                    neutral.appendText(text)
                    json.append(contentsOf: Array("[\"s\",".utf8))
                    appendJSONString(text, to: &json)
                    json.append(0x5D)
                case 70..<80:
                    let value = Int64(bitPattern: rng.next()) >> Int.random(in: 0...63, using: &rng)
                    raw.appendInteger(value)
                    neutral.appendInteger(value)
                    json.append(contentsOf: Array("[\"i\",\(value)]".utf8))
                case 80..<90:
                    // Any bit pattern (NaN, infinities, subnormals) or an everyday value with few digits.
                    let value =
                        Bool.random(using: &rng)
                        ? Double(bitPattern: rng.next())
                        : Double(Int.random(in: -100_000...100_000, using: &rng)) / 100
                    raw.appendDouble(value)
                    neutral.appendDouble(value)
                    // The bits, not a decimal text: the expectation must not come from the code under test.
                    json.append(contentsOf: Array("[\"d\",\(value.bitPattern)]".utf8))
                case 90..<95:
                    let value = Bool.random(using: &rng)
                    raw.appendBool(value)
                    neutral.appendBool(value)
                    json.append(contentsOf: Array("[\"b\",\(value)]".utf8))
                default:
                    raw.appendNull()
                    neutral.appendNull()
                    json.append(contentsOf: Array("[\"n\"]".utf8))
                }
            }
            json.append(0x5D)
            raw.endRow()
            neutral.endRow()
            if raw.count > 1 << 16 {
                raw.drain { rawFile.append(contentsOf: $0) }
                try neutral.drain { try gzip.write($0) }
            }
        }
        // One 200 KB cell (quotes, CRLF, separators, non-ASCII), larger than a gzip block and than Python's default
        // csv field limit, so both have to be dealt with.
        var big = ""
        while big.utf8.count < 200_000 {
            big += randomCSVText(using: &rng)
        }
        raw.appendText(big)
        neutral.appendText(big)
        raw.appendInteger(-1)
        neutral.appendInteger(-1)
        raw.endRow()
        neutral.endRow()
        json.append(contentsOf: Array(",\n[[\"s\",".utf8))
        appendJSONString(big, to: &json)
        json.append(contentsOf: Array("],[\"i\",-1]]".utf8))

        raw.drain { rawFile.append(contentsOf: $0) }
        try neutral.drain { try gzip.write($0) }
        try gzip.finish()
        json.append(contentsOf: Array("\n]}\n".utf8))

        try ScratchFiles.write("\(directory)/raw.csv", rawFile)
        try ScratchFiles.write("\(directory)/neutral.csv.gz", gzipFile)
        try ScratchFiles.write("\(directory)/expected.json", json)
    }
}
