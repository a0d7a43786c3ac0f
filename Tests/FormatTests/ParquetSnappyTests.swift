import Testing

@testable import ParquetFormat

/// Snappy raw blocks: exact bytes for hand-traced inputs, round trips through a decoder written from
/// format_description.txt, and (see scripts/checks/parquet_format_check.py) through cramjam.
struct ParquetSnappyTests {
    private func compress(_ input: [UInt8]) -> [UInt8] {
        var compressor = SnappyCompressor()
        var out: [UInt8] = []
        input.withUnsafeBytes { compressor.compress($0, into: &out) }
        return out
    }

    @Test func emptyAndTinyInputs() {
        #expect(compress([]) == [0x00])
        #expect(compress([0x61]) == [0x01, 0x00, 0x61])
    }

    @Test func literalLongerThan60UsesAnExtraLengthByte() {
        let input = (0..<61).map { UInt8($0) }  // no 4-byte window repeats: nothing to match
        #expect(compress(input) == [0x3D, 0xF0, 0x3C] + input)
    }

    @Test func repeatedTextBecomesLiteralPlusTwoByteOffsetCopy() {
        let input = Array(String(repeating: "0123456789", count: 3).utf8)
        // Literal "0123456789", then copy offset 10 length 20 (tag 2 | 19 << 2).
        #expect(compress(input) == [0x1E, 0x24] + Array("0123456789".utf8) + [0x4E, 0x0A, 0x00])
    }

    @Test func shortNearCopyUsesTheOneByteOffsetForm() {
        let input = Array("abcdefghabcdefgh0123456789ABCDEF".utf8)
        let expected: [UInt8] =
            [0x20, 0x1C] + Array("abcdefgh".utf8)
            + [0x11, 0x08]  // copy, 1-byte offset: length 8 → (8-4) << 2, offset 8
            + [0x3C] + Array("0123456789ABCDEF".utf8)
        #expect(compress(input) == expected)
    }

    @Test(arguments: SnappySamples.names)
    func roundTrips(sample: String) throws {
        let input = SnappySamples.make(sample)
        let compressed = compress(input)
        #expect(try snappyDecompress(compressed) == input)
        #expect(compressed.count <= SnappyCompressor.maxCompressedLength(input.count) + 10)
    }

    @Test func repetitiveInputActuallyShrinks() {
        let zeros = SnappySamples.make("zeros-300k")
        #expect(compress(zeros).count < zeros.count / 20)
        let text = SnappySamples.make("text-200k")
        #expect(compress(text).count < text.count / 2)
    }

    @Test func compressorStateIsReusableAcrossInputs() throws {
        var compressor = SnappyCompressor()
        for name in SnappySamples.names {
            let input = SnappySamples.make(name)
            var out: [UInt8] = [0xAA]  // appends after existing bytes
            input.withUnsafeBytes { compressor.compress($0, into: &out) }
            #expect(out.first == 0xAA)
            #expect(try snappyDecompress(Array(out.dropFirst())) == input)
        }
    }
}

/// Inputs that exercise literals, both copy forms, block boundaries and incompressible data.
enum SnappySamples {
    static let names = [
        "empty", "one-byte", "random-100k", "zeros-300k", "text-200k", "mixed-70k", "block-edge-65536",
        "block-edge-65537", "periodic-3",
    ]

    static func make(_ name: String) -> [UInt8] {
        var rng = SplitMix64(seed: 42)
        switch name {
        case "empty": return []
        case "one-byte": return [7]
        case "random-100k": return (0..<100_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case "zeros-300k": return [UInt8](repeating: 0, count: 300_000)
        case "text-200k":
            let words = ["task", "running", "exec_done", "htex", "worker", "launched", "ε-δ", "🚀", "0.25"]
            var out: [UInt8] = []
            while out.count < 200_000 {
                out += Array(words[Int(rng.next() % UInt64(words.count))].utf8)
                out.append(rng.next() % 7 == 0 ? 0x0A : 0x20)
            }
            return out
        case "mixed-70k":
            var out: [UInt8] = []
            while out.count < 70_000 {
                if rng.next() % 2 == 0 {
                    out += (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                } else if out.count > 5000 {
                    let start = Int(rng.next() % UInt64(out.count - 3000))
                    out += out[start..<(start + Int(rng.next() % 3000))]
                }
            }
            return out
        case "block-edge-65536": return (0..<65_536).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }
        case "block-edge-65537": return (0..<65_537).map { UInt8(truncatingIfNeeded: $0 / 5) }
        case "periodic-3": return (0..<10_000).map { UInt8($0 % 3) }
        default: fatalError("unknown sample \(name)")
        }
    }
}

/// A Snappy raw-block decoder written from format_description.txt, strict about bounds.
func snappyDecompress(_ data: [UInt8]) throws -> [UInt8] {
    struct Malformed: Error {}
    var pos = 0
    var length = 0
    var shift = 0
    while true {
        guard pos < data.count else { throw Malformed() }
        let b = data[pos]
        pos += 1
        length |= Int(b & 0x7F) << shift
        if b & 0x80 == 0 { break }
        shift += 7
    }
    var out: [UInt8] = []
    out.reserveCapacity(length)
    while pos < data.count {
        let tag = data[pos]
        pos += 1
        switch tag & 3 {
        case 0:
            var len = Int(tag >> 2) + 1
            if len > 60 {
                let extra = len - 60
                guard pos + extra <= data.count else { throw Malformed() }
                len = 0
                for k in 0..<extra { len |= Int(data[pos + k]) << (8 * k) }
                len += 1
                pos += extra
            }
            guard pos + len <= data.count else { throw Malformed() }
            out += data[pos..<(pos + len)]
            pos += len
        default:
            let len: Int
            let offset: Int
            switch tag & 3 {
            case 1:
                guard pos + 1 <= data.count else { throw Malformed() }
                len = Int((tag >> 2) & 7) + 4
                offset = Int(tag >> 5) << 8 | Int(data[pos])
                pos += 1
            case 2:
                guard pos + 2 <= data.count else { throw Malformed() }
                len = Int(tag >> 2) + 1
                offset = Int(data[pos]) | Int(data[pos + 1]) << 8
                pos += 2
            default:
                guard pos + 4 <= data.count else { throw Malformed() }
                len = Int(tag >> 2) + 1
                offset = (0..<4).reduce(0) { $0 | Int(data[pos + $1]) << (8 * $1) }
                pos += 4
            }
            guard offset > 0, offset <= out.count else { throw Malformed() }
            for _ in 0..<len { out.append(out[out.count - offset]) }
        }
    }
    guard out.count == length else { throw Malformed() }
    return out
}
