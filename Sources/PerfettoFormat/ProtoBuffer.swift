/// Protocol-buffer wire encoding into a growable byte buffer: varints, fixed 64-bit values and length-delimited
/// fields. Nested messages are written in place (`beginMessage`/`endMessage`): one length byte is reserved and
/// the rest of the message moved up in the rare case that it is 128 bytes or longer, so nothing is built twice.
///
/// The bytes are raw memory the buffer owns (it is noncopyable): an array would check its capacity and uniqueness
/// at every append, and appends of one to a few bytes are all this does.
struct ProtoBuffer: ~Copyable {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
    }

    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// The bytes written so far.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    mutating func removeAll() { count = 0 }

    /// Room for `extra` more bytes.
    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        let grown = max(capacity * 2, count + extra)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        moved.update(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = grown
    }

    @inline(__always)
    private mutating func put(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            base[count] = UInt8(truncatingIfNeeded: value) | 0x80
            value >>= 7
            count += 1
        }
        base[count] = UInt8(value)
        count += 1
    }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        reserve(10)
        put(value)
    }

    @inline(__always)
    mutating func tag(_ field: UInt32, _ type: WireType) { varint(UInt64(field) << 3 | UInt64(type.rawValue)) }

    /// An unsigned varint field (uint32, uint64, enums).
    @inline(__always)
    mutating func uint(_ field: UInt32, _ value: UInt64) {
        reserve(20)
        put(UInt64(field) << 3)
        put(value)
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
        append(bytesOf: value.littleEndian)
    }

    @inline(__always)
    private mutating func append(bytesOf value: UInt64) {
        reserve(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: value, as: UInt64.self)
        count += 8
    }

    @inline(__always)
    mutating func double(_ field: UInt32, _ value: Double) { fixed64(field, value.bitPattern) }

    mutating func bytes(_ field: UInt32, _ value: UnsafeRawBufferPointer) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.count))
        append(value)
    }

    mutating func bytes(_ field: UInt32, _ value: [UInt8]) {
        value.withUnsafeBytes { self.bytes(field, $0) }
    }

    mutating func string(_ field: UInt32, _ value: String) {
        var value = value
        value.withUTF8 { bytes(field, UnsafeRawBufferPointer($0)) }
    }

    /// Appends bytes that are already encoded fields.
    mutating func append(_ encoded: UnsafeRawBufferPointer) {
        guard encoded.count > 0 else { return }
        reserve(encoded.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: encoded.baseAddress!, byteCount: encoded.count)
        count += encoded.count
    }

    /// Starts a nested message (or the length-delimited `packet` of a trace); returns where it starts.
    @inline(__always)
    mutating func beginMessage(_ field: UInt32) -> Int {
        tag(field, .lengthDelimited)
        reserve(1)
        base[count] = 0
        count += 1
        return count
    }

    /// Ends the message begun at `start`: writes its length, moving its bytes up when it needs more than one.
    @inline(__always)
    mutating func endMessage(_ start: Int) {
        let length = count - start
        if length < 0x80 {
            base[start - 1] = UInt8(length)
            return
        }
        var width = 1
        while UInt64(length) >> (7 * UInt64(width)) != 0 { width += 1 }
        reserve(width - 1)
        // Overlapping regions: copyMemory is a memmove.
        UnsafeMutableRawPointer(base + start + width - 1).copyMemory(from: base + start, byteCount: length)
        count += width - 1
        var value = UInt64(length)
        for offset in 0..<width {
            base[start - 1 + offset] = UInt8(truncatingIfNeeded: value) | (offset < width - 1 ? 0x80 : 0)
            value >>= 7
        }
    }
}
