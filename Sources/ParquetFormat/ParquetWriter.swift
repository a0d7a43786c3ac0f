/// Writes one Parquet file, row group by row group, through a caller-supplied output closure.
///
/// The writer buffers at most one row group (compressed pages plus one open page per column) and
/// flushes it when ``ParquetWriterOptions/maxRowGroupRows`` or ``ParquetWriterOptions/maxRowGroupBytes``
/// is reached, so memory stays flat however many rows pass through. The caller owns the destination
/// (and e.g. its atomic rename); the writer only ever appends bytes to it.
///
/// Not thread-safe: drive one writer from one task.
public final class ParquetWriter {
    private enum State { case open, closed, failed }

    private let specs: [ParquetColumnSpec]
    private let options: ParquetWriterOptions
    private let output: (UnsafeRawBufferPointer) throws -> Void
    private let context: PageContext
    private var columns: [ColumnChunkWriter]
    private var position: Int64 = 0
    private var rowGroups: [RowGroup] = []
    private var rowsInGroup = 0
    private var state = State.open

    /// Rows written so far, including those still buffered in the open row group.
    public private(set) var rowCount: Int64 = 0

    /// Validates the schema and options and writes the leading `PAR1` magic.
    ///
    /// - Parameters:
    ///   - columns: The top-level columns, in file order. Names must be unique and non-empty.
    ///   - options: Compression, row-group and page bounds, footer metadata.
    ///   - output: Receives the file's bytes in order; the buffer is only valid during the call.
    ///     An error it throws is rethrown and leaves the writer unusable.
    public init(
        columns: [ParquetColumnSpec],
        options: ParquetWriterOptions,
        output: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard !columns.isEmpty else {
            throw ParquetError(.invalidSchema, "a Parquet file needs at least one column")
        }
        var seen = Set<String>()
        for column in columns {
            guard !column.name.isEmpty else { throw ParquetError(.invalidSchema, "a column has an empty name") }
            guard seen.insert(column.name).inserted else {
                throw ParquetError(.invalidSchema, "column '\(column.name)' appears twice")
            }
        }
        guard options.maxRowGroupRows > 0, options.maxRowGroupBytes > 0, options.pageSizeBytes > 0,
            options.maxDictionaryBytes >= 0, options.maxDictionaryEntries >= 0, options.maxStatisticsValueBytes >= 0
        else {
            throw ParquetError(.invalidOptions, "row-group, page and dictionary bounds must be positive")
        }
        self.specs = columns
        self.options = options
        self.output = output
        self.context = try PageContext(options: options)
        self.columns = columns.map(ColumnChunkWriter.init(spec:))
        try emit(ParquetWriter.magic)
    }

    /// Appends the batch's rows, closing row groups whenever a bound is reached.
    ///
    /// The whole batch is validated before any row is taken, so a misuse error (wrong shape, a null
    /// in a required column) leaves the writer usable and the file unchanged.
    public func write(_ batch: ParquetBatch) throws {
        try checkOpen()
        try validate(batch)
        do {
            var start = 0
            while start < batch.rowCount {
                let room = options.maxRowGroupRows - rowsInGroup
                let budget = options.maxRowGroupBytes - bufferedBytes
                let count = max(1, rowsFitting(batch, from: start, maxRows: room, budget: budget))
                for i in columns.indices {
                    try columns[i].append(batch.columns[i], rows: start..<(start + count), context: context)
                }
                rowsInGroup += count
                rowCount += Int64(count)
                start += count
                if rowsInGroup >= options.maxRowGroupRows || bufferedBytes >= options.maxRowGroupBytes {
                    try flushRowGroup()
                }
            }
        } catch {
            state = .failed
            throw error
        }
    }

    /// Flushes the open row group and writes the footer. A file without rows still gets its schema.
    public func close() throws {
        try checkOpen()
        do {
            try flushRowGroup()
            var thrift = ThriftCompactWriter(reservingCapacity: 4096)
            makeFileMetaData().encode(to: &thrift)
            try emit(thrift.bytes)
            var trailer: [UInt8] = []
            trailer.appendLittleEndian(UInt32(thrift.bytes.count))
            trailer.append(contentsOf: ParquetWriter.magic)
            try emit(trailer)
            state = .closed
        } catch {
            state = .failed
            throw error
        }
    }

    // MARK: - Internals

    private static let magic: [UInt8] = Array("PAR1".utf8)

    private var bufferedBytes: Int {
        columns.reduce(0) { $0 + $1.bufferedBytes }
    }

    private func checkOpen() throws {
        switch state {
        case .open: return
        case .closed: throw ParquetError(.writerClosed, "the writer is already closed")
        case .failed: throw ParquetError(.writerClosed, "an earlier error left the writer unusable")
        }
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try output($0) }
        position += Int64(bytes.count)
    }

    private func flushRowGroup() throws {
        guard rowsInGroup > 0 else { return }
        let groupOffset = position
        var chunks: [ColumnMetaData] = []
        chunks.reserveCapacity(columns.count)
        for i in columns.indices {
            chunks.append(try columns[i].finishChunk(context, offset: position) { try emit($0) })
        }
        rowGroups.append(
            RowGroup(
                columns: chunks,
                totalByteSize: chunks.reduce(0) { $0 + $1.totalUncompressedSize },
                numRows: Int64(rowsInGroup),
                fileOffset: groupOffset,
                totalCompressedSize: chunks.reduce(0) { $0 + $1.totalCompressedSize },
                ordinal: rowGroups.count < Int(Int16.max) ? Int16(rowGroups.count) : nil
            )
        )
        rowsInGroup = 0
    }

    /// How many rows from `start` fit in the remaining byte budget, judged by their raw sizes, so a
    /// batch of huge values is cut into several row groups instead of overshooting the bound.
    private func rowsFitting(_ batch: ParquetBatch, from start: Int, maxRows: Int, budget: Int) -> Int {
        var rows = min(maxRows, batch.rowCount - start)
        guard budget > 0 else { return 1 }
        for data in batch.columns {
            switch data {
            case .int64, .double:
                rows = min(rows, budget / 8)
            case .boolean:
                rows = min(rows, budget)
            case .byteArray(_, let offsets, _):
                rows = min(
                    rows,
                    rowsWithin(offsets, from: start, maxRows: rows, budget: budget, bytesPerItem: 1, perRow: 4)
                )
            case .int64List(_, let offsets, _):
                rows = min(
                    rows,
                    rowsWithin(offsets, from: start, maxRows: rows, budget: budget, bytesPerItem: 8, perRow: 2)
                )
            }
        }
        return rows
    }

    /// Binary search for the largest `k ≤ maxRows` whose rows occupy at most `budget` bytes.
    private func rowsWithin(
        _ offsets: [Int32],
        from start: Int,
        maxRows: Int,
        budget: Int,
        bytesPerItem: Int,
        perRow: Int
    ) -> Int {
        let base = Int(offsets[start])
        func size(_ k: Int) -> Int { (Int(offsets[start + k]) - base) * bytesPerItem + k * perRow }
        if size(maxRows) <= budget { return maxRows }
        var lo = 0
        var hi = maxRows
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if size(mid) <= budget { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    private func makeFileMetaData() -> FileMetaData {
        var schema = [SchemaElement(name: "schema", numChildren: Int32(specs.count))]
        for spec in specs {
            let repetition: Repetition = spec.required ? .required : .optional
            switch spec.kind {
            case .int64:
                schema.append(
                    SchemaElement(
                        type: .int64,
                        repetition: repetition,
                        name: spec.name,
                        convertedType: .int64,
                        logicalType: .integer(bitWidth: 64, signed: true)
                    )
                )
            case .double:
                schema.append(SchemaElement(type: .double, repetition: repetition, name: spec.name))
            case .boolean:
                schema.append(SchemaElement(type: .boolean, repetition: repetition, name: spec.name))
            case .string:
                schema.append(
                    SchemaElement(
                        type: .byteArray,
                        repetition: repetition,
                        name: spec.name,
                        convertedType: .utf8,
                        logicalType: .string
                    )
                )
            case .binary:
                schema.append(SchemaElement(type: .byteArray, repetition: repetition, name: spec.name))
            case .timestampMicros(let utcAdjusted):
                // LogicalTypes.md ("Deprecated timestamp ConvertedType"): writers must give local timestamps the
                // legacy TIMESTAMP_MICROS annotation too, for readers that only know ConvertedType.
                schema.append(
                    SchemaElement(
                        type: .int64,
                        repetition: repetition,
                        name: spec.name,
                        convertedType: .timestampMicros,
                        logicalType: .timestampMicros(utcAdjusted: utcAdjusted)
                    )
                )
            case .int64List:
                // The standard three-level list (LogicalTypes.md "Lists"), as pyarrow writes it.
                schema.append(
                    SchemaElement(
                        repetition: repetition,
                        name: spec.name,
                        numChildren: 1,
                        convertedType: .list,
                        logicalType: .list
                    )
                )
                schema.append(SchemaElement(repetition: .repeated, name: "list", numChildren: 1))
                schema.append(
                    SchemaElement(
                        type: .int64,
                        repetition: .optional,
                        name: "element",
                        convertedType: .int64,
                        logicalType: .integer(bitWidth: 64, signed: true)
                    )
                )
            }
        }
        return FileMetaData(
            schema: schema,
            numRows: rowGroups.reduce(0) { $0 + $1.numRows },
            rowGroups: rowGroups,
            keyValueMetadata: options.keyValueMetadata,
            createdBy: options.createdBy,
            leafCount: specs.count
        )
    }

    // MARK: - Validation

    private func validate(_ batch: ParquetBatch) throws {
        guard batch.rowCount >= 0 else {
            throw ParquetError(.invalidBatch, "negative row count \(batch.rowCount)")
        }
        guard batch.columns.count == specs.count else {
            throw ParquetError(
                .invalidBatch,
                "batch has \(batch.columns.count) columns, the schema \(specs.count)"
            )
        }
        let rows = batch.rowCount
        for (spec, data) in zip(specs, batch.columns) {
            func fail(_ message: String) -> ParquetError {
                ParquetError(.invalidBatch, "column '\(spec.name)': \(message)")
            }
            let isNull: [Bool]?
            switch (spec.kind, data) {
            case (.int64, .int64(let values, let nulls)), (.timestampMicros, .int64(let values, let nulls)):
                guard values.count == rows else { throw fail("\(values.count) values for \(rows) rows") }
                isNull = nulls
            case (.double, .double(let values, let nulls)):
                guard values.count == rows else { throw fail("\(values.count) values for \(rows) rows") }
                isNull = nulls
            case (.boolean, .boolean(let values, let nulls)):
                guard values.count == rows else { throw fail("\(values.count) values for \(rows) rows") }
                isNull = nulls
            case (.string, .byteArray(let bytes, let offsets, let nulls)),
                (.binary, .byteArray(let bytes, let offsets, let nulls)):
                try validateOffsets(offsets, rows: rows, itemCount: bytes.count, fail: fail)
                isNull = nulls
            case (.int64List, .int64List(let values, let offsets, let nulls)):
                try validateOffsets(offsets, rows: rows, itemCount: values.count, fail: fail)
                isNull = nulls
            default:
                throw fail("data of the wrong kind for a \(spec.kind) column")
            }
            if let isNull {
                guard isNull.count == rows else { throw fail("\(isNull.count) null flags for \(rows) rows") }
                if spec.required, let row = isNull.firstIndex(of: true) {
                    throw ParquetError(
                        .nullInRequiredColumn,
                        "column '\(spec.name)' is required but row \(row) of the batch is null"
                    )
                }
            }
        }
    }

    private func validateOffsets(
        _ offsets: [Int32],
        rows: Int,
        itemCount: Int,
        fail: (String) -> ParquetError
    ) throws {
        guard offsets.count == rows + 1 else { throw fail("\(offsets.count) offsets for \(rows) rows") }
        try offsets.withUnsafeBufferPointer { off in
            guard off[0] >= 0 else { throw fail("negative first offset") }
            // Values are sliced through unchecked pointers later: every range must lie inside the storage.
            for i in 0..<rows where off[i + 1] < off[i] {
                throw fail("offsets decrease at row \(i)")
            }
            guard Int(off[rows]) <= itemCount else {
                throw fail("last offset \(off[rows]) is past the end of \(itemCount) items")
            }
        }
    }
}
