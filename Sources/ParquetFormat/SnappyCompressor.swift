/// A Snappy compressor producing the raw block format (google/snappy format_description.txt), the
/// form Parquet's SNAPPY codec stores: a varint of the uncompressed length, then literals and copies.
///
/// Matching is LZ77-style over 64 KiB blocks with a hash table of 4-byte windows; the table is
/// owned by the compressor so compressing many pages allocates nothing after the first.
struct SnappyCompressor {
    static let blockSize = 1 << 16
    private static let maxHashBits = 14
    /// Bytes at the end of a block that are never searched, so 4-byte loads need no bounds checks.
    private static let inputMargin = 15

    private var table: [UInt16]

    init() {
        table = [UInt16](repeating: 0, count: 1 << SnappyCompressor.maxHashBits)
    }

    /// Upper bound of the compressed size for `count` input bytes (as in the reference format notes).
    static func maxCompressedLength(_ count: Int) -> Int {
        32 + count + count / 6
    }

    /// Appends the compressed form of `input` to `out`.
    mutating func compress(_ input: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let n = input.count
        out.appendVarint(UInt64(n))
        guard n > 0, let base = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let bound = SnappyCompressor.maxCompressedLength(n)
        let oldCount = out.count
        // Grow once to the worst case, write through a pointer, then trim to what was written.
        out.append(contentsOf: repeatElement(0, count: bound))
        var written = 0
        out.withUnsafeMutableBufferPointer { buf in
            let dst = buf.baseAddress! + oldCount
            var op = 0
            var pos = 0
            table.withUnsafeMutableBufferPointer { tableBuf in
                while pos < n {
                    let blockLength = min(SnappyCompressor.blockSize, n - pos)
                    op = SnappyCompressor.compressBlock(
                        base + pos,
                        count: blockLength,
                        table: tableBuf.baseAddress!,
                        tableBits: SnappyCompressor.hashBits(for: blockLength),
                        dst: dst,
                        op: op
                    )
                    pos += blockLength
                }
            }
            written = op
        }
        out.removeLast(bound - written)
    }

    private static func hashBits(for blockLength: Int) -> Int {
        var bits = 8
        while bits < maxHashBits && (1 << bits) < blockLength { bits += 1 }
        return bits
    }

    @inline(__always)
    private static func load32(_ p: UnsafePointer<UInt8>) -> UInt32 {
        UnsafeRawPointer(p).loadUnaligned(as: UInt32.self).littleEndian
    }

    @inline(__always)
    private static func hash(_ v: UInt32, shift: UInt32) -> Int {
        Int((v &* 0x1E35_A7BD) >> shift)
    }

    /// Compresses one block (≤ 64 KiB, so every offset fits in two bytes); returns the new output position.
    private static func compressBlock(
        _ src: UnsafePointer<UInt8>,
        count n: Int,
        table: UnsafeMutablePointer<UInt16>,
        tableBits: Int,
        dst: UnsafeMutablePointer<UInt8>,
        op start: Int
    ) -> Int {
        var op = start
        var nextEmit = 0
        if n >= inputMargin + 1 {
            table.update(repeating: 0, count: 1 << tableBits)
            let shift = UInt32(32 - tableBits)
            let ipLimit = n - inputMargin
            var ip = 1
            search: while true {
                // Look for a 4-byte match, probing more sparsely the longer nothing matches.
                var skip = 32
                var candidate = 0
                while true {
                    let current = load32(src + ip)
                    let h = hash(current, shift: shift)
                    candidate = Int(table[h])
                    table[h] = UInt16(truncatingIfNeeded: ip)
                    if load32(src + candidate) == current && candidate < ip { break }
                    ip += skip >> 5
                    skip += 1
                    if ip > ipLimit { break search }
                }
                op = emitLiteral(src + nextEmit, count: ip - nextEmit, dst: dst, op: op)
                // Emit copies for as long as the position right after a copy matches again.
                while true {
                    let matched = 4 + matchLength(src + candidate + 4, src + ip + 4, limit: src + n)
                    op = emitCopy(offset: ip - candidate, length: matched, dst: dst, op: op)
                    ip += matched
                    nextEmit = ip
                    if ip >= ipLimit { break search }
                    table[hash(load32(src + ip - 1), shift: shift)] = UInt16(truncatingIfNeeded: ip - 1)
                    let current = load32(src + ip)
                    let h = hash(current, shift: shift)
                    candidate = Int(table[h])
                    table[h] = UInt16(truncatingIfNeeded: ip)
                    if load32(src + candidate) != current { break }
                }
                ip += 1
                if ip > ipLimit { break search }
            }
        }
        if nextEmit < n {
            op = emitLiteral(src + nextEmit, count: n - nextEmit, dst: dst, op: op)
        }
        return op
    }

    @inline(__always)
    private static func matchLength(
        _ a: UnsafePointer<UInt8>,
        _ b: UnsafePointer<UInt8>,
        limit: UnsafePointer<UInt8>
    ) -> Int {
        // `a` trails `b`, so bounding `b` bounds both.
        var matched = 0
        while b + matched + 8 <= limit {
            let x = UnsafeRawPointer(a + matched).loadUnaligned(as: UInt64.self)
            let y = UnsafeRawPointer(b + matched).loadUnaligned(as: UInt64.self)
            if x != y {
                return matched + (x ^ y).littleEndian.trailingZeroBitCount / 8
            }
            matched += 8
        }
        while b + matched < limit && a[matched] == b[matched] { matched += 1 }
        return matched
    }

    @inline(__always)
    private static func emitLiteral(
        _ src: UnsafePointer<UInt8>,
        count: Int,
        dst: UnsafeMutablePointer<UInt8>,
        op start: Int
    ) -> Int {
        var op = start
        let n = count - 1
        if n < 60 {
            dst[op] = UInt8(n << 2)
            op += 1
        } else {
            var extra = 0
            var v = n
            while v > 0 {
                extra += 1
                v >>= 8
            }
            dst[op] = UInt8((59 + extra) << 2)
            op += 1
            for k in 0..<extra { dst[op + k] = UInt8(truncatingIfNeeded: n >> (8 * k)) }
            op += extra
        }
        (dst + op).update(from: src, count: count)
        return op + count
    }

    @inline(__always)
    private static func emitCopy(offset: Int, length: Int, dst: UnsafeMutablePointer<UInt8>, op start: Int) -> Int {
        var op = start
        var remaining = length
        // Long copies are split so that the final piece is at least 4 bytes long.
        while remaining >= 68 {
            op = emitCopy2(offset: offset, length: 64, dst: dst, op: op)
            remaining -= 64
        }
        if remaining > 64 {
            op = emitCopy2(offset: offset, length: 60, dst: dst, op: op)
            remaining -= 60
        }
        if remaining < 12 && offset < 2048 {
            // 1-byte-offset copy: length 4...11, offset < 2048.
            dst[op] = UInt8(1 | ((remaining - 4) << 2) | ((offset >> 8) << 5))
            dst[op + 1] = UInt8(truncatingIfNeeded: offset)
            return op + 2
        }
        return emitCopy2(offset: offset, length: remaining, dst: dst, op: op)
    }

    @inline(__always)
    private static func emitCopy2(offset: Int, length: Int, dst: UnsafeMutablePointer<UInt8>, op: Int) -> Int {
        dst[op] = UInt8(2 | ((length - 1) << 2))
        dst[op + 1] = UInt8(truncatingIfNeeded: offset)
        dst[op + 2] = UInt8(truncatingIfNeeded: offset >> 8)
        return op + 3
    }
}
