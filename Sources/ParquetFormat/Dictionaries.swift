/// The distinct byte strings of one column chunk, kept directly in dictionary-page layout.
///
/// Entries live back to back in `plainBytes` as PLAIN byte arrays (u32 length + bytes), which is
/// exactly the dictionary page body; an open-addressing table of entry indices finds repeats
/// without allocating per value.
struct ByteArrayDictionary {
    private(set) var plainBytes: [UInt8] = []
    private var entryStarts: [Int32] = []
    private var entryLengths: [Int32] = []
    private var entryHashes: [UInt64] = []
    /// Entry index + 1 per slot, 0 = empty; the capacity is a power of two.
    private var slots: [Int32] = [Int32](repeating: 0, count: 1024)

    var count: Int { entryStarts.count }

    mutating func removeAll() {
        plainBytes.removeAll(keepingCapacity: true)
        entryStarts.removeAll(keepingCapacity: true)
        entryLengths.removeAll(keepingCapacity: true)
        entryHashes.removeAll(keepingCapacity: true)
        if slots.count > 1 << 16 {
            slots = [Int32](repeating: 0, count: 1024)
        } else {
            slots.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
    }

    /// Returns the index of the entry equal to `value`, inserting it first when new.
    @inline(__always)
    mutating func index(of value: UnsafeRawBufferPointer) -> (index: UInt32, inserted: Bool) {
        let h = ByteArrayDictionary.hash(value)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: h >> 20) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 { break }
            let e = Int(entry) - 1
            if entryHashes[e] == h && entryLengths[e] == value.count && equalsEntry(e, value) {
                return (UInt32(e), false)
            }
            slot = (slot + 1) & mask
        }
        let e = entryStarts.count
        plainBytes.appendLittleEndian(UInt32(value.count))
        entryStarts.append(Int32(plainBytes.count))
        entryLengths.append(Int32(value.count))
        entryHashes.append(h)
        plainBytes.append(contentsOf: value)
        slots[slot] = Int32(e + 1)
        if (e + 1) * 2 > slots.count { grow() }
        return (UInt32(e), true)
    }

    @inline(__always)
    private func equalsEntry(_ e: Int, _ value: UnsafeRawBufferPointer) -> Bool {
        plainBytes.withUnsafeBytes { all in
            bytesEqual(all.baseAddress! + Int(entryStarts[e]), value.baseAddress, count: value.count)
        }
    }

    private mutating func grow() {
        let newCount = slots.count * 2
        var newSlots = [Int32](repeating: 0, count: newCount)
        let mask = newCount - 1
        for e in 0..<entryHashes.count {
            var slot = Int(truncatingIfNeeded: entryHashes[e] >> 20) & mask
            while newSlots[slot] != 0 { slot = (slot + 1) & mask }
            newSlots[slot] = Int32(e + 1)
        }
        slots = newSlots
    }

    /// A wyhash-style hash: 16 bytes per 128-bit multiply, overlapping loads for the tail.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let n = bytes.count
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(truncatingIfNeeded: n)
        guard let p = bytes.baseAddress, n > 0 else { return mix(h, 0x1319_8A2E_0370_7344) }
        var a: UInt64
        var b: UInt64
        if n <= 16 {
            if n >= 8 {
                a = p.loadUnaligned(as: UInt64.self)
                b = p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            } else if n >= 4 {
                a = UInt64(p.loadUnaligned(as: UInt32.self))
                b = UInt64(p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
            } else {
                let bytes = p.assumingMemoryBound(to: UInt8.self)
                a = UInt64(bytes[0]) << 16 | UInt64(bytes[n >> 1]) << 8 | UInt64(bytes[n - 1])
                b = 0
            }
        } else {
            var i = 0
            while n - i > 16 {
                a = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                b = p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
                h = mix(a ^ 0xA076_1D64_78BD_642F, b ^ h)
                i += 16
            }
            a = p.loadUnaligned(fromByteOffset: n - 16, as: UInt64.self)
            b = p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        }
        return mix(a ^ 0xE703_7ED1_A0B4_28DB, b ^ h ^ 0x8EBC_6AF0_9C88_C6E3)
    }

    @inline(__always)
    private static func mix(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let r = x.multipliedFullWidth(by: y)
        return r.high ^ r.low
    }
}

/// Byte equality in 8-byte words, the tail by an overlapping load.
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer?, count n: Int) -> Bool {
    guard n > 0, let b else { return true }
    if n >= 8 {
        var i = 0
        while i + 8 < n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                != b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            {
                return false
            }
            i += 8
        }
        return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }
    for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
        return false
    }
    return true
}

/// Unsigned lexicographic comparison (Parquet's order for byte arrays): <0, 0 or >0.
@inline(__always)
func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let n = min(a.count, b.count)
    var i = 0
    while i + 8 <= n {
        let x = a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        let y = b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        if x != y {
            // Big-endian view makes integer order equal byte order.
            return x.bigEndian < y.bigEndian ? -1 : 1
        }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
        i += 1
    }
    return a.count - b.count
}

/// The distinct INT64 values of one column chunk, kept in dictionary-page layout (8 bytes LE each)
/// with an open-addressing table of entry indices.
struct Int64Dictionary {
    /// Entries in insertion order; on a little-endian host their bytes are the PLAIN dictionary page.
    private(set) var keys: [Int64] = []
    /// Entry index + 1 per slot, 0 = empty; the capacity is a power of two.
    private var slots: [Int32] = [Int32](repeating: 0, count: 1024)

    var count: Int { keys.count }

    var plainByteCount: Int { keys.count * MemoryLayout<Int64>.size }

    /// The entries PLAIN-encoded, for the dictionary page (built once per chunk).
    var plainBytes: [UInt8] { keys.withUnsafeBytes { Array($0) } }

    mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        if slots.count > 1 << 16 {
            slots = [Int32](repeating: 0, count: 1024)
        } else {
            slots.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
    }

    @inline(__always)
    private static func slot(_ value: Int64, mask: Int) -> Int {
        // Fibonacci hashing: the high bits of the product spread nearby integers well.
        Int(truncatingIfNeeded: (UInt64(bitPattern: value) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Returns the index of `value`, inserting it first when new.
    @inline(__always)
    mutating func index(of value: Int64) -> (index: UInt32, inserted: Bool) {
        let mask = slots.count - 1
        var slot = Int64Dictionary.slot(value, mask: mask)
        while true {
            let entry = slots[slot]
            if entry == 0 { break }
            if keys[Int(entry) - 1] == value { return (UInt32(entry - 1), false) }
            slot = (slot + 1) & mask
        }
        let e = keys.count
        keys.append(value)
        slots[slot] = Int32(e + 1)
        if (e + 1) * 2 > slots.count { grow() }
        return (UInt32(e), true)
    }

    private mutating func grow() {
        let newCount = slots.count * 2
        var newSlots = [Int32](repeating: 0, count: newCount)
        let mask = newCount - 1
        for (e, key) in keys.enumerated() {
            var slot = Int64Dictionary.slot(key, mask: mask)
            while newSlots[slot] != 0 { slot = (slot + 1) & mask }
            newSlots[slot] = Int32(e + 1)
        }
        slots = newSlots
    }
}
