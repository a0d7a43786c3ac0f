/// How page bodies are compressed. Every page of a file uses the same codec.
public enum ParquetCompression: Sendable, Hashable {
    /// No compression: fastest to write, largest files.
    case none
    /// Snappy raw blocks: the usual Parquet default, cheap to decode.
    case snappy
    /// GZIP (RFC 1952) through zlib at the given level (-1 = zlib's default, 0...9).
    case gzip(level: Int32)
    /// Zstandard frames through libzstd at the given level (1...19): smaller than Snappy at a similar decoding
    /// speed. The compressor's memory grows with the level (about 0.6 MB at 1, 1.3 MB at 3, 83 MB at 19).
    case zstd(level: Int32)
}

/// One top-level column of the file: its name, value type and whether it may hold nulls.
public struct ParquetColumnSpec: Sendable, Hashable {
    /// The value type, which fixes the physical type and the logical-type annotation.
    public enum Kind: Sendable, Hashable {
        /// INT64 annotated INT(64, signed) / INT_64.
        case int64
        /// IEEE double.
        case double
        /// Boolean, bit-packed.
        case boolean
        /// UTF-8 text: BYTE_ARRAY annotated STRING / UTF8 (the caller guarantees valid UTF-8).
        case string
        /// Uninterpreted bytes: BYTE_ARRAY without annotation.
        case binary
        /// Microseconds since the epoch: INT64 annotated TIMESTAMP(MICROS) / TIMESTAMP_MICROS.
        /// `utcAdjusted: false` marks naive local times, `true` instants in UTC.
        case timestampMicros(utcAdjusted: Bool)
        /// A list of non-null INT64 values per row, written as the standard three-level LIST.
        case int64List
    }

    /// The column name as readers show it; unique within the file.
    public var name: String
    /// The value type; see ``Kind``.
    public var kind: Kind
    /// REQUIRED columns carry no definition levels; a null in one is an error.
    public var required: Bool
    /// For text, binary, INT64 and timestamp columns: start each column chunk dictionary-encoded
    /// (RLE_DICTIONARY), falling back to PLAIN when the dictionary outgrows the writer's bounds or,
    /// after a few thousand values, holds more than half as many entries as values (near-unique
    /// data). After a fallback, later chunks of the column start PLAIN. Ignored for other kinds.
    public var dictionary: Bool

    public init(name: String, kind: Kind, required: Bool = false, dictionary: Bool = false) {
        self.name = name
        self.kind = kind
        self.required = required
        self.dictionary = dictionary
    }
}

/// Knobs of a ``ParquetWriter``. The defaults keep memory flat (one row group buffered) and the
/// files friendly to row-group pruning.
public struct ParquetWriterOptions: Sendable {
    /// The codec for every page (default SNAPPY, the common Parquet default).
    public var compression: ParquetCompression
    /// A row group is closed once it holds this many rows.
    public var maxRowGroupRows: Int
    /// A row group is also closed once the bytes it holds in memory (encoded pages, pending page
    /// values and dictionaries) reach this bound, so wide or text-heavy rows cannot grow it unbounded.
    public var maxRowGroupBytes: Int
    /// Target size of a data page before compression.
    public var pageSizeBytes: Int
    /// A column chunk's dictionary may grow to this many PLAIN-encoded bytes before falling back to PLAIN.
    public var maxDictionaryBytes: Int
    /// ... or to this many entries.
    public var maxDictionaryEntries: Int
    /// Byte-array min/max statistics are omitted when either bound is longer than this, to keep
    /// footers small; all other statistics are exact.
    public var maxStatisticsValueBytes: Int
    /// Stored as FileMetaData.created_by, e.g. `"my-tool version 1.2.3"`.
    public var createdBy: String
    /// Stored as FileMetaData.key_value_metadata, in this order.
    public var keyValueMetadata: [(key: String, value: String)]

    public init(
        createdBy: String,
        compression: ParquetCompression = .snappy,
        maxRowGroupRows: Int = 128 * 1024,
        maxRowGroupBytes: Int = 32 << 20,
        pageSizeBytes: Int = 1 << 20,
        maxDictionaryBytes: Int = 1 << 20,
        maxDictionaryEntries: Int = 1 << 16,
        maxStatisticsValueBytes: Int = 4096,
        keyValueMetadata: [(key: String, value: String)] = []
    ) {
        self.createdBy = createdBy
        self.compression = compression
        self.maxRowGroupRows = maxRowGroupRows
        self.maxRowGroupBytes = maxRowGroupBytes
        self.pageSizeBytes = pageSizeBytes
        self.maxDictionaryBytes = maxDictionaryBytes
        self.maxDictionaryEntries = maxDictionaryEntries
        self.maxStatisticsValueBytes = maxStatisticsValueBytes
        self.keyValueMetadata = keyValueMetadata
    }
}

/// The values of one column for the rows of a ``ParquetBatch``, as flat arrays.
///
/// `isNull`, when present, has one flag per row; the value slot of a null row is ignored (it must
/// still exist for fixed-width kinds, and is an empty range for byte arrays and lists).
public enum ParquetColumnData: Sendable {
    /// For `.int64` and `.timestampMicros` columns.
    case int64([Int64], isNull: [Bool]?)
    case double([Double], isNull: [Bool]?)
    case boolean([Bool], isNull: [Bool]?)
    /// For `.string` and `.binary` columns: value `i` is `bytes[offsets[i]..<offsets[i+1]]`, so
    /// `offsets.count == rowCount + 1`, non-decreasing, within `bytes`.
    case byteArray(bytes: [UInt8], offsets: [Int32], isNull: [Bool]?)
    /// For `.int64List` columns: row `i` is `values[listOffsets[i]..<listOffsets[i+1]]`; a row
    /// flagged in `isNull` is a null list, an empty range an empty list.
    case int64List(values: [Int64], listOffsets: [Int32], isNull: [Bool]?)
}

/// A set of rows in columnar form, one ``ParquetColumnData`` per column spec, in spec order.
///
/// The writer copies what it needs before ``ParquetWriter/write(_:)`` returns and keeps no reference
/// to the arrays, so callers can refill the same buffers for the next batch.
public struct ParquetBatch: Sendable {
    /// Rows in this batch; every column holds exactly this many.
    public var rowCount: Int
    /// One entry per column spec, in the same order.
    public var columns: [ParquetColumnData]

    public init(rowCount: Int, columns: [ParquetColumnData]) {
        self.rowCount = rowCount
        self.columns = columns
    }
}

/// An error from the Parquet writer: misuse (bad schema, options or batch) or a codec failure.
/// Errors thrown by the output closure are passed through unchanged.
public struct ParquetError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Wrapped: Sendable, Hashable {
            case invalidSchema, invalidOptions, invalidBatch, nullInRequiredColumn, valueTooLarge
            case compressionFailed, writerClosed
        }
        private let value: Wrapped
        private init(_ value: Wrapped) { self.value = value }

        /// Column specs that cannot form a schema (empty, duplicate or empty names).
        public static let invalidSchema = Code(.invalidSchema)
        /// Options out of range.
        public static let invalidOptions = Code(.invalidOptions)
        /// A batch whose shape does not match the schema (column count, kinds, lengths, offsets).
        public static let invalidBatch = Code(.invalidBatch)
        /// A null flagged in a column declared `required`.
        public static let nullInRequiredColumn = Code(.nullInRequiredColumn)
        /// A value or page larger than Parquet's 32-bit sizes allow.
        public static let valueTooLarge = Code(.valueTooLarge)
        /// The compression library reported an error.
        public static let compressionFailed = Code(.compressionFailed)
        /// The writer was closed, or an earlier error left it unusable.
        public static let writerClosed = Code(.writerClosed)

        public var description: String { "\(value)" }
    }

    /// The kind of failure, for callers that react differently to misuse and I/O.
    public var code: Code
    /// What went wrong, naming the column when one is involved.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "Parquet \(code): \(message)" }
}
