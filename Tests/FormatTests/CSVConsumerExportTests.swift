import CSVFormat
import GzipStream
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes a spreadsheet fixture for `scripts/checks/csv_gzip_consumers.sh` (pandas, LibreOffice): hostile text
/// from the consumer notes, neutralised as by default, with a BOM, gzip-compressed in small blocks so block edges
/// fall inside rows. Runs only when `CSV_CONSUMER_OUT` names a directory; otherwise it is reported as skipped.
///
/// Files: `sheet.csv.gz`, `sheet.csv` (the same, uncompressed), `sheet-expected.json` (the cells as given to the
/// writer, before neutralisation: id, text, value).
@Suite(.enabled(if: getenv("CSV_CONSUMER_OUT") != nil, "set CSV_CONSUMER_OUT=DIR to write the consumer fixture"))
struct CSVConsumerExportTests {
    static let hostile = [
        "line\nbreak", "crlf\r\nbreak", "tab\there", "comma, here", "say \"hi\"", "\"\"", "ñodé-ü", "日本語 函数",
        "emoji 🚀", "007", "12345678901234567890", "9007199254740993", "=1+1", "+cmd", "@SUM(A1)", "-2+3", "-5",
        "=HYPERLINK(\"http://example.invalid\",\"x\")", "2024-01-01 00:00:00.123456", "2024-01-01T00:00:01Z",
        "01/02/2024", "2024-13-45", "", " leading space", "trailing space ", "back\\slash", "'quoted'",
    ]

    @Test func writeSpreadsheetFixture() throws {
        let directory = String(cString: getenv("CSV_CONSUMER_OUT"))
        var rng = SplitMix64(seed: 5)
        var rows: [(Int64, String, Double)] = Self.hostile.enumerated().map { (Int64($0 + 1), $1, Double($0) / 8 - 1) }
        let hex = Array("0123456789abcdef")
        for id in (rows.count + 1)...4000 {
            let uuid = String((0..<32).map { _ in hex[Int(rng.next() % 16)] })
            rows.append((Int64(id), "run \(uuid) 2026-11-24 23:30:\(id % 50 + 10).489918", Double(id) * 0.25))
        }

        var writer = CSVWriter(formulaSafety: .neutralize, byteOrderMark: true)
        var plain: [UInt8] = []
        var compressed: [UInt8] = []
        let gzip = try GzipWriter(threads: 2, blockSize: 32 << 10) { compressed.append(contentsOf: $0) }
        var json = Array("[\n".utf8)
        writer.writeHeader(["id", "text", "value"])
        for (index, (id, text, value)) in rows.enumerated() {
            writer.appendInteger(id)
            writer.appendText(text)
            writer.appendDouble(value)
            writer.endRow()
            json.append(contentsOf: Array("\(index == 0 ? "" : ",\n")[\(id),".utf8))
            appendJSONString(text, to: &json)
            json.append(contentsOf: Array(",\(value.bitPattern)]".utf8))
            if writer.count > 8 << 10 {
                plain.append(contentsOf: writer.bytes)
                try writer.drain { try gzip.write($0) }
            }
        }
        plain.append(contentsOf: writer.bytes)
        try writer.drain { try gzip.write($0) }
        try gzip.finish()
        json.append(contentsOf: Array("\n]\n".utf8))
        try ScratchFiles.write("\(directory)/sheet.csv", plain)
        try ScratchFiles.write("\(directory)/sheet.csv.gz", compressed)
        try ScratchFiles.write("\(directory)/sheet-expected.json", json)
    }
}
