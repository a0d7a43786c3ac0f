/// A growable byte buffer the writer fills and hands to its output in large chunks.
///
/// It is raw memory so that appending is a bounds check and a copy: no array uniqueness checks, no per-event
/// allocation once it has grown to the size of the largest event. The owner calls `deallocate()` exactly once; copies
/// are only made transiently (see `append(json:)`) and written back.
struct ByteBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    func deallocate() {
        base.deallocate()
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    mutating func removeAll() {
        count = 0
    }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    private mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(UnsafeRawBufferPointer(bytes))
    }

    /// Appends ASCII text known at compile time (JSON punctuation and field names).
    @inline(__always)
    mutating func append(_ text: StaticString) {
        if text.hasPointerRepresentation {
            append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        } else {
            text.withUTF8Buffer { append($0) }
        }
    }

    /// Appends a decimal integer without going through `String`, two digits at a time.
    mutating func append(decimal value: Int64) {
        reserve(20)
        var magnitude = value.magnitude
        if value < 0 {
            base[count] = UInt8(ascii: "-")
            count += 1
        }
        if magnitude < 10 {
            base[count] = UInt8(truncatingIfNeeded: magnitude) &+ 48
            count += 1
            return
        }
        var digits = 1
        var bound: UInt64 = 10
        while digits < 20 && magnitude >= bound {
            digits += 1
            bound = bound &* 10
        }
        let pairs: StaticString = """
            00010203040506070809101112131415161718192021222324252627282930313233343536373839\
            40414243444546474849505152535455565758596061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899
            """
        let table = pairs.utf8Start
        var index = count + digits
        while magnitude >= 100 {
            let pair = Int(magnitude % 100) * 2
            magnitude /= 100
            index -= 2
            base[index] = table[pair]
            base[index + 1] = table[pair + 1]
        }
        if magnitude >= 10 {
            let pair = Int(magnitude) * 2
            base[index - 2] = table[pair]
            base[index - 1] = table[pair + 1]
        } else {
            base[index - 1] = UInt8(truncatingIfNeeded: magnitude) &+ 48
        }
        count += digits
    }

    /// Appends a JSON number: the shortest text that reads back as the same `Double`, or `null` when the value is
    /// not finite (JSON has no NaN or infinity).
    mutating func append(json value: Double) {
        guard value.isFinite else {
            append("null")
            return
        }
        // Integral values within the exact range print without ".0": smaller and what readers expect of µs counts.
        if value == value.rounded(.towardZero), abs(value) < 9_007_199_254_740_992 {
            append(decimal: Int64(value))
            return
        }
        // The standard library formats into a stack buffer and calls `_writeASCII`, so no String is made.
        var sink = ASCIISink(buffer: self)
        value.write(to: &sink)
        self = sink.buffer
    }
}

/// Bridges `Double.write(to:)` into the buffer without allocating.
private struct ASCIISink: TextOutputStream {
    var buffer: ByteBuffer

    mutating func write(_ string: String) {
        var string = string
        string.withUTF8 { buffer.append($0) }
    }

    // The standard library's hook for ASCII output; without it every number would become a String first.
    mutating func _writeASCII(_ ascii: UnsafeBufferPointer<UInt8>) {
        buffer.append(ascii)
    }
}
