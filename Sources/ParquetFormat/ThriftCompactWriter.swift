/// Thrift compact-protocol type ids as they appear in field headers and list headers.
enum ThriftType: UInt8 {
    case boolTrue = 1
    case boolFalse = 2
    case i8 = 3
    case i16 = 4
    case i32 = 5
    case i64 = 6
    case double = 7
    case binary = 8
    case list = 9
    case set = 10
    case map = 11
    case `struct` = 12

    /// The element type id used in list headers: booleans are always type 2 there.
    static let boolElement = ThriftType.boolFalse
}

/// A typed encoder for the Thrift compact protocol, limited to what Parquet metadata needs.
///
/// Each method writes one field (header + value) so that the field-id delta bookkeeping lives in one
/// place; nested structs push the previous field id because every struct restarts its deltas at 0.
/// Field ids must be written in ascending order within a struct.
struct ThriftCompactWriter {
    private(set) var bytes: [UInt8]
    private var lastFieldID: Int16 = 0
    private var fieldIDStack: [Int16] = []

    init(reservingCapacity capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Forgets the written bytes but keeps the allocation, so page headers reuse one buffer.
    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        lastFieldID = 0
        fieldIDStack.removeAll(keepingCapacity: true)
    }

    // MARK: - Field headers

    mutating func fieldHeader(_ id: Int16, _ type: ThriftType) {
        precondition(id > lastFieldID, "Thrift field ids must ascend within a struct")
        let delta = Int(id) - Int(lastFieldID)
        if delta <= 15 {
            bytes.append(UInt8(delta << 4) | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            writeRawI16(id)
        }
        lastFieldID = id
    }

    // MARK: - Scalar fields

    mutating func field(_ id: Int16, bool value: Bool) {
        // Booleans in struct fields live in the header's type nibble and have no value bytes.
        fieldHeader(id, value ? .boolTrue : .boolFalse)
    }

    mutating func field(_ id: Int16, i8 value: Int8) {
        fieldHeader(id, .i8)
        bytes.append(UInt8(bitPattern: value))
    }

    mutating func field(_ id: Int16, i16 value: Int16) {
        fieldHeader(id, .i16)
        writeRawI16(value)
    }

    mutating func field(_ id: Int16, i32 value: Int32) {
        fieldHeader(id, .i32)
        writeRawI32(value)
    }

    mutating func field(_ id: Int16, i64 value: Int64) {
        fieldHeader(id, .i64)
        writeRawI64(value)
    }

    mutating func field(_ id: Int16, double value: Double) {
        fieldHeader(id, .double)
        bytes.appendLittleEndian(value.bitPattern)
    }

    mutating func field(_ id: Int16, binary value: some Collection<UInt8>) {
        fieldHeader(id, .binary)
        writeRawBinary(value)
    }

    mutating func field(_ id: Int16, string value: String) {
        fieldHeader(id, .binary)
        writeRawString(value)
    }

    // MARK: - Structs and lists

    /// Starts a struct-typed field; close it with ``structEnd()``.
    mutating func fieldStructBegin(_ id: Int16) {
        fieldHeader(id, .struct)
        structBegin()
    }

    /// Starts a struct value (a list element or the top-level struct); close it with ``structEnd()``.
    mutating func structBegin() {
        fieldIDStack.append(lastFieldID)
        lastFieldID = 0
    }

    /// Writes the stop byte and restores the enclosing struct's field-id state.
    mutating func structEnd() {
        bytes.append(0)
        lastFieldID = fieldIDStack.popLast() ?? 0
    }

    /// Writes an empty struct field, the shape of Parquet's marker types (StringType, MICROS, ...).
    mutating func fieldEmptyStruct(_ id: Int16) {
        fieldStructBegin(id)
        structEnd()
    }

    /// Starts a list-typed field; the caller then writes exactly `count` elements of `elementType`.
    mutating func fieldListBegin(_ id: Int16, elementType: ThriftType, count: Int) {
        fieldHeader(id, .list)
        listHeader(elementType: elementType, count: count)
    }

    mutating func listHeader(elementType: ThriftType, count: Int) {
        precondition(count >= 0)
        if count < 15 {
            bytes.append(UInt8(count << 4) | elementType.rawValue)
        } else {
            bytes.append(0xF0 | elementType.rawValue)
            bytes.appendVarint(UInt64(count))
        }
    }

    // MARK: - Raw values (list elements)

    mutating func writeRawI16(_ value: Int16) {
        bytes.appendVarint(UInt64(UInt16(bitPattern: (value << 1) ^ (value >> 15))))
    }

    mutating func writeRawI32(_ value: Int32) {
        bytes.appendVarint(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }

    mutating func writeRawI64(_ value: Int64) {
        bytes.appendVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func writeRawBool(_ value: Bool) {
        // List elements carry booleans as one byte each.
        bytes.append(value ? 1 : 0)
    }

    mutating func writeRawBinary(_ value: some Collection<UInt8>) {
        bytes.appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func writeRawString(_ value: String) {
        bytes.appendVarint(UInt64(value.utf8.count))
        bytes.appendUTF8(value)
    }
}
