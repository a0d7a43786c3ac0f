import ParquetFormat

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A generic Thrift compact-protocol value, decoded without knowledge of Parquet's structs, so tests
/// can look at footers and page headers by field id.
indirect enum ThriftValue: Equatable {
    case int(Int64)
    case binary([UInt8])
    case bool(Bool)
    case double(Double)
    case list([ThriftValue])
    case fields([Int16: ThriftValue])

    subscript(_ id: Int16) -> ThriftValue? {
        if case .fields(let f) = self { return f[id] }
        return nil
    }
    var int: Int64? { if case .int(let v) = self { v } else { nil } }
    var bool: Bool? { if case .bool(let v) = self { v } else { nil } }
    var bytes: [UInt8]? { if case .binary(let v) = self { v } else { nil } }
    var string: String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
    var list: [ThriftValue]? { if case .list(let v) = self { v } else { nil } }
}

struct ThriftDecodeError: Error {}

/// Decodes a compact-protocol struct starting at `position`, leaving `position` after its stop byte.
struct ThriftCompactReader {
    let data: [UInt8]
    var position: Int

    init(_ data: [UInt8], at position: Int = 0) {
        self.data = data
        self.position = position
    }

    mutating func readStruct() throws -> ThriftValue {
        var fields: [Int16: ThriftValue] = [:]
        var last: Int16 = 0
        while true {
            let b = try byte()
            if b == 0 { return .fields(fields) }
            let type = b & 0x0F
            let delta = Int16(b >> 4)
            let id = delta != 0 ? last + delta : Int16(truncatingIfNeeded: zigzag(try varint()))
            last = id
            switch type {
            case 1: fields[id] = .bool(true)
            case 2: fields[id] = .bool(false)
            default: fields[id] = try value(type)
            }
        }
    }

    private mutating func value(_ type: UInt8) throws -> ThriftValue {
        switch type {
        case 3: return .int(Int64(Int8(bitPattern: try byte())))
        case 4, 5, 6: return .int(zigzag(try varint()))
        case 7:
            var bits: UInt64 = 0
            for k in 0..<8 { bits |= UInt64(try byte()) << (8 * UInt64(k)) }
            return .double(Double(bitPattern: bits))
        case 8:
            let n = Int(try varint())
            guard position + n <= data.count else { throw ThriftDecodeError() }
            defer { position += n }
            return .binary(Array(data[position..<(position + n)]))
        case 9, 10:
            let h = try byte()
            var n = Int(h >> 4)
            if n == 15 { n = Int(try varint()) }
            let elementType = h & 0x0F
            var items: [ThriftValue] = []
            for _ in 0..<n {
                if elementType == 1 || elementType == 2 {
                    items.append(.bool(try byte() == 1))
                } else {
                    items.append(try value(elementType))
                }
            }
            return .list(items)
        case 12: return try readStruct()
        default: throw ThriftDecodeError()
        }
    }

    private mutating func byte() throws -> UInt8 {
        guard position < data.count else { throw ThriftDecodeError() }
        defer { position += 1 }
        return data[position]
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private func zigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }
}

/// Writes a file into memory and returns its bytes.
func writeParquet(
    _ columns: [ParquetColumnSpec],
    options: ParquetWriterOptions,
    batches: [ParquetBatch]
) throws -> [UInt8] {
    var file: [UInt8] = []
    let writer = try ParquetWriter(columns: columns, options: options) { file.append(contentsOf: $0) }
    for batch in batches { try writer.write(batch) }
    try writer.close()
    return file
}

/// The decoded FileMetaData of a complete file, after checking both magics and the length word.
func parquetFooter(_ file: [UInt8]) throws -> ThriftValue {
    guard file.count >= 12, Array(file.prefix(4)) == Array("PAR1".utf8), Array(file.suffix(4)) == Array("PAR1".utf8)
    else { throw ThriftDecodeError() }
    let n = file.count
    let length = Int(file[n - 8]) | Int(file[n - 7]) << 8 | Int(file[n - 6]) << 16 | Int(file[n - 5]) << 24
    var reader = ThriftCompactReader(file, at: n - 8 - length)
    let footer = try reader.readStruct()
    guard reader.position == n - 8 else { throw ThriftDecodeError() }
    return footer
}

/// Packs rows of optional strings into the contiguous bytes + offsets + null flags form.
func byteArrayColumn(_ rows: [String?]) -> ParquetColumnData {
    var bytes: [UInt8] = []
    var offsets: [Int32] = [0]
    var isNull: [Bool] = []
    for row in rows {
        if let row { bytes += Array(row.utf8) }
        offsets.append(Int32(bytes.count))
        isNull.append(row == nil)
    }
    return .byteArray(bytes: bytes, offsets: offsets, isNull: isNull)
}

/// Packs rows of optional lists into values + list offsets + null flags.
func listColumn(_ rows: [[Int64]?]) -> ParquetColumnData {
    var values: [Int64] = []
    var offsets: [Int32] = [0]
    var isNull: [Bool] = []
    for row in rows {
        if let row { values += row }
        offsets.append(Int32(values.count))
        isNull.append(row == nil)
    }
    return .int64List(values: values, listOffsets: offsets, isNull: isNull)
}
