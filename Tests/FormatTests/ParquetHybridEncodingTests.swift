import Testing

@testable import ParquetFormat

/// RLE / bit-packed hybrid: exact bytes for small cases (Encodings.md), round trips for the rest.
struct ParquetHybridEncodingTests {
    private func encode(_ values: [UInt32], bitWidth: Int) -> [UInt8] {
        var out: [UInt8] = []
        HybridEncoder.encode(values, bitWidth: bitWidth, into: &out)
        return out
    }

    @Test func bitWidths() {
        #expect(HybridEncoder.bitWidth(forMaximum: 0) == 0)
        #expect(HybridEncoder.bitWidth(forMaximum: 1) == 1)
        #expect(HybridEncoder.bitWidth(forMaximum: 3) == 2)
        #expect(HybridEncoder.bitWidth(forMaximum: 4) == 3)
        #expect(HybridEncoder.bitWidth(forMaximum: 1023) == 10)
    }

    @Test func specExampleOneThroughSevenWidthThree() {
        // Encodings.md: 0..7 bit-packed with width 3 → 10001000 11000110 11111010.
        #expect(encode([0, 1, 2, 3, 4, 5, 6, 7], bitWidth: 3) == [0x03, 0x88, 0xC6, 0xFA])
    }

    @Test func longRepeatBecomesOneRLERun() {
        #expect(encode([UInt32](repeating: 1, count: 10), bitWidth: 1) == [0x14, 0x01])
        // Count 300 → header varint 600; a 10-bit value takes two little-endian bytes.
        #expect(encode([UInt32](repeating: 1000, count: 300), bitWidth: 10) == [0xD8, 0x04, 0xE8, 0x03])
    }

    @Test func shortMixedValuesAreBitPackedAndPadded() {
        #expect(encode([0, 1, 0, 1, 0], bitWidth: 1) == [0x03, 0x0A])
        // Eight zeros as a run, then 1,0,1 packed into one zero-padded group.
        #expect(encode([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1], bitWidth: 1) == [0x10, 0x00, 0x03, 0x05])
    }

    @Test func levelsInV1PagesCarryAFourByteLength() {
        var out: [UInt8] = []
        HybridEncoder.encodeWithLengthPrefix([UInt8](repeating: 1, count: 10), bitWidth: 1, into: &out)
        #expect(out == [0x02, 0x00, 0x00, 0x00, 0x14, 0x01])
    }

    @Test func booleansArePackedLSBFirst() {
        var out: [UInt8] = []
        HybridEncoder.packBooleans([1, 0, 1, 1, 0, 0, 0, 0, 1], into: &out)
        #expect(out == [0x0D, 0x01])
    }

    @Test(arguments: [1, 2, 3, 5, 8, 13, 17, 24, 32])
    func roundTripsThroughAnIndependentDecoder(bitWidth: Int) throws {
        var rng = SplitMix64(seed: UInt64(bitWidth))
        let maxValue: UInt64 = bitWidth == 32 ? UInt64(UInt32.max) : (1 << UInt64(bitWidth)) - 1
        var values: [UInt32] = []
        // Alternate noisy stretches (bit-packed) with runs (RLE) of varying lengths.
        while values.count < 5000 {
            if rng.next() % 3 == 0 {
                let v = UInt32(rng.next() % (maxValue + 1))
                values += [UInt32](repeating: v, count: Int(rng.next() % 40) + 1)
            } else {
                for _ in 0..<(Int(rng.next() % 50) + 1) { values.append(UInt32(rng.next() % (maxValue + 1))) }
            }
        }
        let encoded = encode(values, bitWidth: bitWidth)
        let decoded = try decodeHybrid(encoded, bitWidth: bitWidth, count: values.count)
        #expect(decoded == values)
    }
}

/// Decoder written from the spec text, independent of the encoder's structure.
func decodeHybrid(_ data: [UInt8], bitWidth: Int, count: Int) throws -> [UInt32] {
    struct Malformed: Error {}
    var pos = 0
    func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < data.count else { throw Malformed() }
            let b = data[pos]
            pos += 1
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }
    var out: [UInt32] = []
    while out.count < count {
        let header = try varint()
        if header & 1 == 0 {
            let run = Int(header >> 1)
            var v: UInt32 = 0
            for k in 0..<((bitWidth + 7) / 8) {
                guard pos < data.count else { throw Malformed() }
                v |= UInt32(data[pos]) << (8 * k)
                pos += 1
            }
            out += [UInt32](repeating: v, count: run)
        } else {
            let n = Int(header >> 1) * 8
            var bitPos = 0
            for _ in 0..<n {
                var v: UInt32 = 0
                for b in 0..<bitWidth {
                    let byte = pos + (bitPos + b) / 8
                    guard byte < data.count else { throw Malformed() }
                    if data[byte] >> UInt8((bitPos + b) % 8) & 1 == 1 { v |= 1 << b }
                }
                bitPos += bitWidth
                out.append(v)
            }
            pos += (n * bitWidth) / 8
        }
    }
    guard pos == data.count else { throw Malformed() }
    return Array(out.prefix(count))
}

