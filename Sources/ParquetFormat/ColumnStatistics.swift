/// Running min/max/null statistics of one column chunk, kept in native form and encoded
/// (PLAIN, no length prefix for byte arrays) only when the chunk is finished.
struct ColumnStatistics {
    var nullCount: Int64 = 0
    var nanCount: Int64 = 0
    var hasMinMax = false
    var minInt: Int64 = .max
    var maxInt: Int64 = .min
    var minDouble: Double = .infinity
    var maxDouble: Double = -.infinity
    var minBytes: [UInt8] = []
    var maxBytes: [UInt8] = []

    mutating func reset() {
        nullCount = 0
        nanCount = 0
        hasMinMax = false
        minInt = .max
        maxInt = .min
        minDouble = .infinity
        maxDouble = -.infinity
        minBytes.removeAll(keepingCapacity: true)
        maxBytes.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    mutating func update(_ v: Int64) {
        if v < minInt { minInt = v }
        if v > maxInt { maxInt = v }
        hasMinMax = true
    }

    @inline(__always)
    mutating func update(_ v: Double) {
        if v.isNaN {
            nanCount += 1
            return
        }
        if v < minDouble { minDouble = v }
        if v > maxDouble { maxDouble = v }
        hasMinMax = true
    }

    @inline(__always)
    mutating func update(_ v: UnsafeRawBufferPointer) {
        if !hasMinMax {
            minBytes.append(contentsOf: v)
            maxBytes.append(contentsOf: v)
            hasMinMax = true
            return
        }
        if minBytes.withUnsafeBytes({ compareBytes(v, $0) }) < 0 {
            minBytes.removeAll(keepingCapacity: true)
            minBytes.append(contentsOf: v)
        } else if maxBytes.withUnsafeBytes({ compareBytes(v, $0) }) > 0 {
            maxBytes.removeAll(keepingCapacity: true)
            maxBytes.append(contentsOf: v)
        }
    }

    /// The Thrift Statistics for the chunk; min/max are omitted when no non-null (non-NaN) value exists.
    func encoded(for kind: ParquetColumnSpec.Kind, maxByteArrayLength: Int) -> Statistics {
        var stats = Statistics(nullCount: nullCount)
        switch kind {
        case .double:
            stats.nanCount = nanCount
        default:
            break
        }
        guard hasMinMax else { return stats }
        switch kind {
        case .int64, .timestampMicros, .int64List:
            stats.minValue = littleEndianBytes(minInt)
            stats.maxValue = littleEndianBytes(maxInt)
        case .boolean:
            // Booleans are tracked as 0/1 in the integer fields; the statistic is one byte.
            stats.minValue = [UInt8(minInt)]
            stats.maxValue = [UInt8(maxInt)]
        case .double:
            // TYPE_ORDER for floats: a zero minimum is written as -0.0 and a zero maximum as +0.0.
            let lo = minDouble == 0 ? -0.0 : minDouble
            let hi = maxDouble == 0 ? 0.0 : maxDouble
            stats.minValue = littleEndianBytes(lo.bitPattern)
            stats.maxValue = littleEndianBytes(hi.bitPattern)
        case .string, .binary:
            if minBytes.count <= maxByteArrayLength && maxBytes.count <= maxByteArrayLength {
                stats.minValue = minBytes
                stats.maxValue = maxBytes
            }
        }
        return stats
    }

    private func littleEndianBytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(MemoryLayout<T>.size)
        out.appendLittleEndian(v)
        return out
    }
}
