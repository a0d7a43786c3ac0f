import CSVFormat
import Testing

// Helpers for the CSV tests: a seeded generator, random cells, a strict RFC 4180 reader, the documented
// neutralisation rule restated independently, and a small JSON writer.

/// A random string biased towards what breaks CSV: separators, quotes, CR/LF, TAB, spaces, formula starters,
/// control characters, and any Unicode scalar (all planes, no surrogates, which `Unicode.Scalar` cannot hold).
func randomCSVText(using rng: inout SplitMix64) -> String {
    let tricky: [Unicode.Scalar] = [",", "\"", "\r", "\n", "\t", " ", "'", "=", "+", "-", "@", "\\", ";", "\0"]
    let length: Int
    switch Int.random(in: 0..<100, using: &rng) {
    case 0..<10: length = 0
    case 10..<95: length = Int.random(in: 1...12, using: &rng)
    default: length = Int.random(in: 13...600, using: &rng)
    }
    var text = String.UnicodeScalarView()
    for _ in 0..<length {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<4:
            text.append(tricky[Int.random(in: 0..<tricky.count, using: &rng)])
        case 4..<7:
            text.append(Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &rng)))
        case 7:
            text.append(Unicode.Scalar(UInt8.random(in: 0...0x1F, using: &rng)))
        default:
            var scalar: Unicode.Scalar?
            while scalar == nil {
                scalar = Unicode.Scalar(UInt32.random(in: 0x80...0x10FFFF, using: &rng))
            }
            text.append(scalar!)
        }
    }
    return String(text)
}

/// The cell text a spreadsheet-safe file holds for `text`, restated from the CSVWriter documentation.
func neutralized(_ text: String) -> String {
    guard let first = text.utf8.first, [0x3D, 0x2B, 0x2D, 0x40, 0x09, 0x0D].contains(first) else { return text }
    return "'" + text
}

/// The bytes a writer produced for one row of text cells.
func csvBytes(_ cells: [String], safety: FormulaSafety = .raw) -> [UInt8] {
    var writer = CSVWriter(formulaSafety: safety)
    for cell in cells {
        writer.appendText(cell)
    }
    writer.endRow()
    return writer.bytes
}

func csvString(_ cells: [String], safety: FormulaSafety = .raw) -> String {
    String(decoding: csvBytes(cells, safety: safety), as: UTF8.self)
}

struct CSVParseError: Error, CustomStringConvertible {
    var description: String
}

/// A strict RFC 4180 reader: CRLF row ends, `"` only around a whole field, `""` inside quotes; anything else (a
/// bare quote, text after a closing quote, an unterminated field, a bare CR or LF outside quotes, a missing final
/// CRLF) is an error. Works on bytes so any UTF-8 survives.
func parseCSV(_ bytes: [UInt8]) throws -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var field: [UInt8] = []
    var index = 0
    func fail(_ why: String) -> CSVParseError { CSVParseError(description: "\(why) at byte \(index)") }
    while index < bytes.count {
        // Start of a field.
        if bytes[index] == 0x22 {
            index += 1
            while true {
                guard index < bytes.count else { throw fail("unterminated quoted field") }
                if bytes[index] == 0x22 {
                    if index + 1 < bytes.count && bytes[index + 1] == 0x22 {
                        field.append(0x22)
                        index += 2
                    } else {
                        index += 1
                        break
                    }
                } else {
                    field.append(bytes[index])
                    index += 1
                }
            }
        } else {
            while index < bytes.count, bytes[index] != 0x2C, bytes[index] != 0x0D {
                if bytes[index] == 0x22 || bytes[index] == 0x0A { throw fail("bare quote or LF in unquoted field") }
                field.append(bytes[index])
                index += 1
            }
        }
        row.append(String(decoding: field, as: UTF8.self))
        field.removeAll(keepingCapacity: true)
        // After a field: a comma, or CRLF ending the row.
        guard index < bytes.count else { throw fail("missing CRLF at end of data") }
        if bytes[index] == 0x2C {
            index += 1
        } else if bytes[index] == 0x0D && index + 1 < bytes.count && bytes[index + 1] == 0x0A {
            index += 2
            rows.append(row)
            row.removeAll()
        } else {
            throw fail("unexpected byte \(bytes[index]) after a field")
        }
    }
    return rows
}

// MARK: - JSON for the Python cross-check

/// Appends `text` as a JSON string: `"` `\` and C0 controls escaped, everything else as raw UTF-8.
func appendJSONString(_ text: String, to out: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    out.append(0x22)
    for byte in text.utf8 {
        switch byte {
        case 0x22, 0x5C:
            out.append(0x5C)
            out.append(byte)
        case 0..<0x20:
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        default:
            out.append(byte)
        }
    }
    out.append(0x22)
}
