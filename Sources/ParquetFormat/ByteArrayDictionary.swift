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

    private func equalsEntry(_ e: Int, _ value: UnsafeRawBufferPointer) -> Bool {
        plainBytes.withUnsafeBytes { all in
            compareBytes(UnsafeRawBufferPointer(rebasing: all[Int(entryStarts[e])...].prefix(value.count)), value) == 0
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

    /// A fast multiplicative hash over 8-byte words; quality only needs to suit a linear-probe table.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let k: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h = UInt64(bytes.count) &* k
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ w) &* k
            h ^= h >> 29
            i += 8
        }
        if i < n {
            var w: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                w |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ w) &* k
            h ^= h >> 29
        }
        h = (h ^ (h >> 32)) &* k
        return h ^ (h >> 29)
    }
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
