// Little-endian and varint appends on plain byte arrays: every encoder in this module writes
// into a reusable `[UInt8]`, so these are the only primitives it needs.

extension Array where Element == UInt8 {
    /// Appends `value` in little-endian order (Parquet's byte order for every fixed-width value).
    @inline(__always)
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var le = value.littleEndian
        Swift.withUnsafeBytes(of: &le) { self.append(contentsOf: $0) }
    }

    /// Appends an unsigned LEB128 varint (Thrift compact integers and hybrid run headers).
    @inline(__always)
    mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            self.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        self.append(UInt8(truncatingIfNeeded: v))
    }

    /// Appends the raw bytes of a UTF-8 string without copying it into a temporary array.
    mutating func appendUTF8(_ string: String) {
        var s = string
        s.withUTF8 { self.append(contentsOf: $0) }
    }

    /// Overwrites four bytes at `index` with `value` little-endian; used to back-patch length prefixes.
    @inline(__always)
    mutating func storeLittleEndian(_ value: UInt32, at index: Int) {
        self[index] = UInt8(truncatingIfNeeded: value)
        self[index + 1] = UInt8(truncatingIfNeeded: value >> 8)
        self[index + 2] = UInt8(truncatingIfNeeded: value >> 16)
        self[index + 3] = UInt8(truncatingIfNeeded: value >> 24)
    }
}
