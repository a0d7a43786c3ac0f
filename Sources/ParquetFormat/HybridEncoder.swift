/// The RLE / bit-packed hybrid encoding (Parquet Encodings.md "RLE"), used for definition and
/// repetition levels, dictionary indices and nothing else here.
///
/// Runs of at least eight equal values become RLE runs; everything else is bit-packed in groups
/// of eight (the last group zero-padded, readers stop at the page's value count).
enum HybridEncoder {
    /// Smallest run worth an RLE header; shorter runs stay inside bit-packed groups.
    static let minimumRepeatRun = 8
    /// Groups per bit-packed run, chosen so the run header fits in one varint byte.
    static let maximumGroupsPerRun = 63

    /// Bits needed to represent `maxValue` (0 for 0).
    @inline(__always)
    static func bitWidth(forMaximum maxValue: UInt32) -> Int {
        maxValue == 0 ? 0 : 32 - maxValue.leadingZeroBitCount
    }

    /// Appends the hybrid runs for `values`, each of which must fit in `bitWidth` bits.
    static func encode<T: FixedWidthInteger & UnsignedInteger>(
        _ values: UnsafeBufferPointer<T>,
        bitWidth: Int,
        into out: inout [UInt8]
    ) {
        precondition(bitWidth >= 0 && bitWidth <= 32)
        let n = values.count
        let valueBytes = (bitWidth + 7) / 8
        var i = 0
        while i < n {
            let run = repeatRunLength(values, at: i, limit: n)
            if run >= minimumRepeatRun {
                out.appendVarint(UInt64(run) << 1)
                var v = UInt64(values[i])
                for _ in 0..<valueBytes {
                    out.append(UInt8(truncatingIfNeeded: v))
                    v >>= 8
                }
                i += run
                continue
            }
            // Bit-packed run: take groups of eight until a long repeat starts at a group boundary.
            let start = i
            var groups = 0
            repeat {
                i += 8
                groups += 1
            } while i < n && groups < maximumGroupsPerRun
                && repeatRunLength(values, at: i, limit: min(n, i + minimumRepeatRun)) < minimumRepeatRun
            out.appendVarint(UInt64(groups << 1 | 1))
            packGroups(values, from: start, groups: groups, bitWidth: bitWidth, into: &out)
            i = min(i, n)
        }
    }

    /// Convenience for level and index arrays.
    static func encode<T: FixedWidthInteger & UnsignedInteger>(_ values: [T], bitWidth: Int, into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { encode($0, bitWidth: bitWidth, into: &out) }
    }

    /// Appends a 4-byte little-endian length followed by the hybrid runs: the layout of levels in v1 data pages.
    static func encodeWithLengthPrefix<T: FixedWidthInteger & UnsignedInteger>(
        _ values: [T],
        bitWidth: Int,
        into out: inout [UInt8]
    ) {
        let lengthAt = out.count
        out.appendLittleEndian(UInt32(0))
        encode(values, bitWidth: bitWidth, into: &out)
        out.storeLittleEndian(UInt32(out.count - lengthAt - 4), at: lengthAt)
    }

    @inline(__always)
    private static func repeatRunLength<T: FixedWidthInteger>(
        _ values: UnsafeBufferPointer<T>,
        at start: Int,
        limit: Int
    ) -> Int {
        let v = values[start]
        var j = start + 1
        while j < limit && values[j] == v { j += 1 }
        return j - start
    }

    /// Packs `groups * 8` values LSB-first; positions past the end are packed as zeros.
    private static func packGroups<T: FixedWidthInteger & UnsignedInteger>(
        _ values: UnsafeBufferPointer<T>,
        from start: Int,
        groups: Int,
        bitWidth: Int,
        into out: inout [UInt8]
    ) {
        let end = start + groups * 8
        let mask: UInt64 = bitWidth == 64 ? ~0 : (1 << UInt64(bitWidth)) - 1
        var acc: UInt64 = 0
        var bits = 0
        for k in start..<end {
            let v: UInt64 = k < values.count ? UInt64(values[k]) & mask : 0
            acc |= v << UInt64(bits)
            bits += bitWidth
            while bits >= 8 {
                out.append(UInt8(truncatingIfNeeded: acc))
                acc >>= 8
                bits -= 8
            }
        }
        // Eight values of any width fill whole bytes, so nothing is left over.
    }

    /// PLAIN boolean layout: one bit per value, LSB-first, no header.
    static func packBooleans(_ values: [UInt8], into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { v in
            let n = v.count
            var i = 0
            while i + 8 <= n {
                var byte: UInt8 = 0
                for b in 0..<8 { byte |= (v[i + b] & 1) << UInt8(b) }
                out.append(byte)
                i += 8
            }
            if i < n {
                var byte: UInt8 = 0
                for b in 0..<(n - i) { byte |= (v[i + b] & 1) << UInt8(b) }
                out.append(byte)
            }
        }
    }
}
