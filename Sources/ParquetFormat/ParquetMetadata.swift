// The subset of parquet.thrift this writer emits, each with an explicit `encode(to:)` that follows
// the IDL's field ids and types exactly (e.g. IntType.bitWidth is an i8, not an i32).

enum PhysicalType: Int32 {
    case boolean = 0
    case int32 = 1
    case int64 = 2
    case double = 5
    case byteArray = 6
}

enum Repetition: Int32 {
    case required = 0
    case optional = 1
    case repeated = 2
}

enum Encoding: Int32 {
    case plain = 0
    case rle = 3
    case rleDictionary = 8
}

enum CompressionCodec: Int32 {
    case uncompressed = 0
    case snappy = 1
    case gzip = 2
    case zstd = 6
}

enum ConvertedType: Int32 {
    case utf8 = 0
    case list = 3
    case timestampMicros = 10
    case int64 = 18
}

enum PageType: Int32 {
    case dataPage = 0
    case dictionaryPage = 2
}

enum LogicalType {
    case string
    case list
    case timestampMicros(utcAdjusted: Bool)
    case integer(bitWidth: Int8, signed: Bool)

    func encode(to w: inout ThriftCompactWriter) {
        w.structBegin()
        switch self {
        case .string:
            w.fieldEmptyStruct(1)
        case .list:
            w.fieldEmptyStruct(3)
        case .timestampMicros(let utcAdjusted):
            w.fieldStructBegin(8)
            w.field(1, bool: utcAdjusted)
            w.fieldStructBegin(2)  // TimeUnit union
            w.fieldEmptyStruct(2)  // MICROS
            w.structEnd()
            w.structEnd()
        case .integer(let bitWidth, let signed):
            w.fieldStructBegin(10)
            w.field(1, i8: bitWidth)
            w.field(2, bool: signed)
            w.structEnd()
        }
        w.structEnd()
    }
}

struct SchemaElement {
    var type: PhysicalType?
    var repetition: Repetition?
    var name: String
    var numChildren: Int32?
    var convertedType: ConvertedType?
    var logicalType: LogicalType?

    func encode(to w: inout ThriftCompactWriter) {
        w.structBegin()
        if let type { w.field(1, i32: type.rawValue) }
        if let repetition { w.field(3, i32: repetition.rawValue) }
        w.field(4, string: name)
        if let numChildren { w.field(5, i32: numChildren) }
        if let convertedType { w.field(6, i32: convertedType.rawValue) }
        if let logicalType {
            w.fieldHeader(10, .struct)
            logicalType.encode(to: &w)
        }
        w.structEnd()
    }
}

struct Statistics {
    var nullCount: Int64
    var minValue: [UInt8]?
    var maxValue: [UInt8]?
    /// Only for floating-point columns, where TYPE_ORDER requires it.
    var nanCount: Int64?

    func encode(to w: inout ThriftCompactWriter) {
        w.structBegin()
        w.field(3, i64: nullCount)
        if let maxValue { w.field(5, binary: maxValue) }
        if let minValue { w.field(6, binary: minValue) }
        if maxValue != nil { w.field(7, bool: true) }
        if minValue != nil { w.field(8, bool: true) }
        if let nanCount { w.field(9, i64: nanCount) }
        w.structEnd()
    }
}

struct PageEncodingStats {
    var pageType: PageType
    var encoding: Encoding
    var count: Int32
}

struct ColumnMetaData {
    var type: PhysicalType
    var encodings: [Encoding]
    var pathInSchema: [String]
    var codec: CompressionCodec
    var numValues: Int64
    var totalUncompressedSize: Int64
    var totalCompressedSize: Int64
    var dataPageOffset: Int64
    var dictionaryPageOffset: Int64?
    var statistics: Statistics
    var encodingStats: [PageEncodingStats]

    func encode(to w: inout ThriftCompactWriter) {
        w.structBegin()
        w.field(1, i32: type.rawValue)
        w.fieldListBegin(2, elementType: .i32, count: encodings.count)
        for e in encodings { w.writeRawI32(e.rawValue) }
        w.fieldListBegin(3, elementType: .binary, count: pathInSchema.count)
        for p in pathInSchema { w.writeRawString(p) }
        w.field(4, i32: codec.rawValue)
        w.field(5, i64: numValues)
        w.field(6, i64: totalUncompressedSize)
        w.field(7, i64: totalCompressedSize)
        w.field(9, i64: dataPageOffset)
        if let dictionaryPageOffset { w.field(11, i64: dictionaryPageOffset) }
        w.fieldHeader(12, .struct)
        statistics.encode(to: &w)
        w.fieldListBegin(13, elementType: .struct, count: encodingStats.count)
        for s in encodingStats {
            w.structBegin()
            w.field(1, i32: s.pageType.rawValue)
            w.field(2, i32: s.encoding.rawValue)
            w.field(3, i32: s.count)
            w.structEnd()
        }
        w.structEnd()
    }
}

struct RowGroup {
    var columns: [ColumnMetaData]
    var totalByteSize: Int64
    var numRows: Int64
    var fileOffset: Int64
    var totalCompressedSize: Int64
    var ordinal: Int16?

    func encode(to w: inout ThriftCompactWriter) {
        w.structBegin()
        w.fieldListBegin(1, elementType: .struct, count: columns.count)
        for column in columns {
            // ColumnChunk: file_offset is deprecated and must be 0 when the metadata lives in the footer.
            w.structBegin()
            w.field(2, i64: 0)
            w.fieldHeader(3, .struct)
            column.encode(to: &w)
            w.structEnd()
        }
        w.field(2, i64: totalByteSize)
        w.field(3, i64: numRows)
        w.field(5, i64: fileOffset)
        w.field(6, i64: totalCompressedSize)
        if let ordinal { w.field(7, i16: ordinal) }
        w.structEnd()
    }
}

struct FileMetaData {
    var schema: [SchemaElement]
    var numRows: Int64
    var rowGroups: [RowGroup]
    var keyValueMetadata: [(key: String, value: String)]
    var createdBy: String
    var leafCount: Int

    func encode(to w: inout ThriftCompactWriter) {
        w.structBegin()
        w.field(1, i32: 1)
        w.fieldListBegin(2, elementType: .struct, count: schema.count)
        for element in schema { element.encode(to: &w) }
        w.field(3, i64: numRows)
        w.fieldListBegin(4, elementType: .struct, count: rowGroups.count)
        for rowGroup in rowGroups { rowGroup.encode(to: &w) }
        if !keyValueMetadata.isEmpty {
            w.fieldListBegin(5, elementType: .struct, count: keyValueMetadata.count)
            for (key, value) in keyValueMetadata {
                w.structBegin()
                w.field(1, string: key)
                w.field(2, string: value)
                w.structEnd()
            }
        }
        w.field(6, string: createdBy)
        // One TYPE_ORDER per leaf: without it readers must ignore min_value/max_value.
        w.fieldListBegin(7, elementType: .struct, count: leafCount)
        for _ in 0..<leafCount {
            w.structBegin()
            w.fieldEmptyStruct(1)
            w.structEnd()
        }
        w.structEnd()
    }
}

struct PageHeader {
    enum Kind {
        case data(numValues: Int32, encoding: Encoding)
        case dictionary(numValues: Int32)
    }

    var kind: Kind
    var uncompressedSize: Int32
    var compressedSize: Int32

    func encode(to w: inout ThriftCompactWriter) {
        w.structBegin()
        switch kind {
        case .data(let numValues, let encoding):
            w.field(1, i32: PageType.dataPage.rawValue)
            w.field(2, i32: uncompressedSize)
            w.field(3, i32: compressedSize)
            w.fieldStructBegin(5)
            w.field(1, i32: numValues)
            w.field(2, i32: encoding.rawValue)
            w.field(3, i32: Encoding.rle.rawValue)
            w.field(4, i32: Encoding.rle.rawValue)
            w.structEnd()
        case .dictionary(let numValues):
            w.field(1, i32: PageType.dictionaryPage.rawValue)
            w.field(2, i32: uncompressedSize)
            w.field(3, i32: compressedSize)
            w.fieldStructBegin(7)
            w.field(1, i32: numValues)
            w.field(2, i32: Encoding.plain.rawValue)
            w.field(3, bool: false)
            w.structEnd()
        }
        w.structEnd()
    }
}
