/// Protocol-buffer wire encoding into a growable byte array: varints, fixed 64-bit values and length-delimited
/// fields. Nested messages are written in place (`beginMessage`/`endMessage`): one length byte is reserved and
/// the rest of the message moved up in the rare case that it is 128 bytes or longer, so nothing is built twice.
struct ProtoBuffer {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
    }

    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    var count: Int { bytes.count }

    mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    @inline(__always)
    mutating func tag(_ field: UInt32, _ type: WireType) { varint(UInt64(field) << 3 | UInt64(type.rawValue)) }

    /// An unsigned varint field (uint32, uint64, enums): key and value put together on the stack and appended at
    /// once, as appending byte by byte checks the array's capacity and uniqueness at every byte.
    @inline(__always)
    mutating func uint(_ field: UInt32, _ value: UInt64) {
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { raw in
            var count = 0
            func put(_ value: UInt64) {
                var value = value
                while value >= 0x80 {
                    raw[count] = UInt8(truncatingIfNeeded: value) | 0x80
                    value >>= 7
                    count += 1
                }
                raw[count] = UInt8(value)
                count += 1
            }
            put(UInt64(field) << 3)
            put(value)
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[..<count]))
        }
    }

    /// A signed int32/int64 field: two's complement, so a negative value takes ten bytes.
    @inline(__always)
    mutating func int(_ field: UInt32, _ value: Int64) { uint(field, UInt64(bitPattern: value)) }

    @inline(__always)
    mutating func bool(_ field: UInt32, _ value: Bool) { uint(field, value ? 1 : 0) }

    /// A fixed64 field, little-endian.
    @inline(__always)
    mutating func fixed64(_ field: UInt32, _ value: UInt64) {
        tag(field, .fixed64)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func double(_ field: UInt32, _ value: Double) { fixed64(field, value.bitPattern) }

    mutating func bytes(_ field: UInt32, _ value: UnsafeRawBufferPointer) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func bytes(_ field: UInt32, _ value: [UInt8]) {
        value.withUnsafeBytes { self.bytes(field, $0) }
    }

    mutating func string(_ field: UInt32, _ value: String) {
        var value = value
        value.withUTF8 { bytes(field, UnsafeRawBufferPointer($0)) }
    }

    /// Appends bytes that are already encoded fields.
    mutating func append(_ encoded: UnsafeRawBufferPointer) { bytes.append(contentsOf: encoded) }

    /// Starts a nested message (or the length-delimited `packet` of a trace); returns where it starts.
    @inline(__always)
    mutating func beginMessage(_ field: UInt32) -> Int {
        tag(field, .lengthDelimited)
        bytes.append(0)
        return bytes.count
    }

    /// Ends the message begun at `start`: writes its length, moving its bytes up when it needs more than one.
    @inline(__always)
    mutating func endMessage(_ start: Int) {
        let length = bytes.count - start
        if length < 0x80 {
            bytes[start - 1] = UInt8(length)
            return
        }
        var width = 1
        while UInt64(length) >> (7 * UInt64(width)) != 0 { width += 1 }
        bytes.append(contentsOf: repeatElement(0, count: width - 1))
        bytes.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            // Overlapping regions: copyMemory is a memmove.
            UnsafeMutableRawPointer(base + start + width - 1).copyMemory(from: base + start, byteCount: length)
            var value = UInt64(length)
            for offset in 0..<width {
                base[start - 1 + offset] = UInt8(truncatingIfNeeded: value) | (offset < width - 1 ? 0x80 : 0)
                value >>= 7
            }
        }
    }
}
