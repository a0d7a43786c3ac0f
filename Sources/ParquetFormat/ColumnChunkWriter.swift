#if _endian(big)
#error("PLAIN values are copied in host byte order, which must be little-endian")
#endif

/// Encodes one column's values into pages for the current row group.
///
/// Values accumulate in a page buffer (PLAIN bytes or dictionary indices, plus levels); a full page
/// is compressed at once into `pages`, so a row group holds compressed pages and one open page per
/// column. The dictionary page is emitted at chunk end, in front of the data pages that use it.
final class ColumnChunkWriter {
    let spec: ParquetColumnSpec
    let physicalType: PhysicalType
    let path: [String]
    let maxDefinitionLevel: UInt8
    let maxRepetitionLevel: UInt8

    // The open page.
    private var definitionLevels: [UInt8] = []
    private var repetitionLevels: [UInt8] = []
    /// PLAIN-encoded values; booleans are one byte each here and bit-packed when the page closes.
    private var values: [UInt8] = []
    private var indices: [UInt32] = []
    private var pageLevelCount = 0

    // The column chunk of the current row group.
    private(set) var pages: [UInt8] = []
    private var dictionaryPage: [UInt8] = []
    private var dictionary = ByteArrayDictionary()
    /// True while values go to the dictionary; false after a fallback or for PLAIN-only columns.
    private var dictionaryActive: Bool
    /// A chunk that overflowed its dictionary is likely to do so again: later chunks start PLAIN.
    private var dictionaryAbandoned = false
    private var dictionaryDataPages: Int32 = 0
    private var plainDataPages: Int32 = 0
    private var chunkLevelCount: Int64 = 0
    private var uncompressedSize = 0
    private var compressedSize = 0
    private var statistics = ColumnStatistics()

    init(spec: ParquetColumnSpec) {
        self.spec = spec
        switch spec.kind {
        case .int64, .timestampMicros, .int64List: physicalType = .int64
        case .double: physicalType = .double
        case .boolean: physicalType = .boolean
        case .string, .binary: physicalType = .byteArray
        }
        if case .int64List = spec.kind {
            // <name> (LIST) → repeated group list → optional int64 element.
            path = [spec.name, "list", "element"]
            maxDefinitionLevel = spec.required ? 2 : 3
            maxRepetitionLevel = 1
        } else {
            path = [spec.name]
            maxDefinitionLevel = spec.required ? 0 : 1
            maxRepetitionLevel = 0
        }
        dictionaryActive = spec.dictionary && physicalType == .byteArray
    }

    /// Bytes this column holds for the open row group, for the row-group memory bound.
    var bufferedBytes: Int {
        pages.count + values.count + indices.count * 4 + definitionLevels.count + repetitionLevels.count
            + dictionary.plainBytes.count
    }

    private var estimatedPageBytes: Int {
        if dictionaryActive {
            let width = HybridEncoder.bitWidth(forMaximum: UInt32(max(dictionary.count, 1)))
            return (indices.count * width) / 8 + pageLevelCount / 8
        }
        if physicalType == .boolean { return values.count / 8 + pageLevelCount / 8 }
        return values.count + pageLevelCount / 8
    }

    // MARK: - Appending rows

    /// Appends rows `range` of `data`, which the writer has already validated against the spec.
    func append(_ data: ParquetColumnData, rows range: Range<Int>, context: PageContext) throws {
        switch data {
        case .int64(let v, let isNull):
            try appendFixedWidth(v, isNull: isNull, rows: range, context: context) { $0.update($1) }
        case .double(let v, let isNull):
            try appendFixedWidth(v, isNull: isNull, rows: range, context: context) { $0.update($1) }
        case .boolean(let v, let isNull):
            try appendBooleans(v, isNull: isNull, rows: range, context: context)
        case .byteArray(let bytes, let offsets, let isNull):
            try appendByteArrays(bytes, offsets: offsets, isNull: isNull, rows: range, context: context)
        case .int64List(let v, let listOffsets, let isNull):
            try appendLists(v, listOffsets: listOffsets, isNull: isNull, rows: range, context: context)
        }
    }

    private func appendFixedWidth<T: BitwiseCopyable>(
        _ source: [T],
        isNull: [Bool]?,
        rows range: Range<Int>,
        context: PageContext,
        updateStatistics: (inout ColumnStatistics, T) -> Void
    ) throws {
        try source.withUnsafeBufferPointer { src in
            var row = range.lowerBound
            while row < range.upperBound {
                // Fill the open page up to its target size, then close it.
                let room = max(1, (context.pageSizeBytes - estimatedPageBytes) / MemoryLayout<T>.stride)
                let end = min(range.upperBound, row + room)
                appendFixedWidthRun(src, isNull: isNull, rows: row..<end, updateStatistics: updateStatistics)
                row = end
                if estimatedPageBytes >= context.pageSizeBytes { try finishPage(context) }
            }
        }
    }

    @inline(__always)
    private func appendFixedWidthRun<T: BitwiseCopyable>(
        _ src: UnsafeBufferPointer<T>,
        isNull: [Bool]?,
        rows: Range<Int>,
        updateStatistics: (inout ColumnStatistics, T) -> Void
    ) {
        pageLevelCount += rows.count
        if let isNull, maxDefinitionLevel > 0 {
            isNull.withUnsafeBufferPointer { nulls in
                for i in rows {
                    if nulls[i] {
                        definitionLevels.append(0)
                        statistics.nullCount += 1
                    } else {
                        definitionLevels.append(1)
                        Swift.withUnsafeBytes(of: src[i]) { values.append(contentsOf: $0) }
                        updateStatistics(&statistics, src[i])
                    }
                }
            }
            return
        }
        if maxDefinitionLevel > 0 {
            definitionLevels.append(contentsOf: repeatElement(1, count: rows.count))
        }
        // Little-endian hosts store values in PLAIN layout already: copy the run in one go.
        let run = UnsafeBufferPointer(rebasing: src[rows])
        values.append(contentsOf: UnsafeRawBufferPointer(run))
        for v in run { updateStatistics(&statistics, v) }
    }

    private func appendBooleans(_ source: [Bool], isNull: [Bool]?, rows range: Range<Int>, context: PageContext) throws {
        try source.withUnsafeBufferPointer { src in
            var row = range.lowerBound
            while row < range.upperBound {
                let room = max(1, (context.pageSizeBytes - estimatedPageBytes) * 8)
                let end = min(range.upperBound, row + room)
                pageLevelCount += end - row
                let nulls = maxDefinitionLevel > 0 ? isNull : nil
                for i in row..<end {
                    if let nulls, nulls[i] {
                        definitionLevels.append(0)
                        statistics.nullCount += 1
                        continue
                    }
                    if maxDefinitionLevel > 0 { definitionLevels.append(1) }
                    let bit: UInt8 = src[i] ? 1 : 0
                    values.append(bit)
                    statistics.update(Int64(bit))
                }
                row = end
                if estimatedPageBytes >= context.pageSizeBytes { try finishPage(context) }
            }
        }
    }

    private func appendByteArrays(
        _ bytes: [UInt8],
        offsets: [Int32],
        isNull: [Bool]?,
        rows range: Range<Int>,
        context: PageContext
    ) throws {
        let nullable = maxDefinitionLevel > 0
        try bytes.withUnsafeBytes { all in
            try offsets.withUnsafeBufferPointer { off in
                for i in range {
                    pageLevelCount += 1
                    if nullable, let isNull, isNull[i] {
                        definitionLevels.append(0)
                        statistics.nullCount += 1
                        continue
                    }
                    if nullable { definitionLevels.append(1) }
                    let value = UnsafeRawBufferPointer(rebasing: all[Int(off[i])..<Int(off[i + 1])])
                    if dictionaryActive {
                        let (index, inserted) = dictionary.index(of: value)
                        indices.append(index)
                        // Every distinct value enters the dictionary once: statistics need only new entries.
                        if inserted {
                            statistics.update(value)
                            if dictionary.plainBytes.count > context.maxDictionaryBytes
                                || dictionary.count > context.maxDictionaryEntries
                            {
                                try finishPage(context)
                                dictionaryActive = false
                                dictionaryAbandoned = true
                            }
                        }
                    } else {
                        values.appendLittleEndian(UInt32(value.count))
                        values.append(contentsOf: value)
                        statistics.update(value)
                    }
                    if estimatedPageBytes >= context.pageSizeBytes { try finishPage(context) }
                }
            }
        }
    }

    private func appendLists(
        _ source: [Int64],
        listOffsets: [Int32],
        isNull: [Bool]?,
        rows range: Range<Int>,
        context: PageContext
    ) throws {
        // Levels: a null list is def 0; an empty list is the list's own level; each element is
        // the maximum level, the first element of a row starting at repetition 0.
        let emptyLevel: UInt8 = spec.required ? 0 : 1
        let elementLevel = maxDefinitionLevel
        try source.withUnsafeBufferPointer { src in
            try listOffsets.withUnsafeBufferPointer { off in
                for i in range {
                    if !spec.required, let isNull, isNull[i] {
                        definitionLevels.append(0)
                        repetitionLevels.append(0)
                        pageLevelCount += 1
                        statistics.nullCount += 1
                        continue
                    }
                    let lo = Int(off[i])
                    let hi = Int(off[i + 1])
                    if lo == hi {
                        definitionLevels.append(emptyLevel)
                        repetitionLevels.append(0)
                        pageLevelCount += 1
                        statistics.nullCount += 1
                        continue
                    }
                    repetitionLevels.append(0)
                    repetitionLevels.append(contentsOf: repeatElement(1, count: hi - lo - 1))
                    definitionLevels.append(contentsOf: repeatElement(elementLevel, count: hi - lo))
                    pageLevelCount += hi - lo
                    let run = UnsafeBufferPointer(rebasing: src[lo..<hi])
                    values.append(contentsOf: UnsafeRawBufferPointer(run))
                    for v in run { statistics.update(v) }
                    // Pages end on row boundaries so no list straddles two pages.
                    if estimatedPageBytes >= context.pageSizeBytes { try finishPage(context) }
                }
            }
        }
    }

    // MARK: - Pages and chunks

    /// Closes the open page: levels, then values, compressed as one body (data page v1).
    func finishPage(_ context: PageContext) throws {
        guard pageLevelCount > 0 else { return }
        guard pageLevelCount <= Int32.max else {
            throw ParquetError(.valueTooLarge, "column '\(spec.name)': too many values in one page")
        }
        context.body.removeAll(keepingCapacity: true)
        if maxRepetitionLevel > 0 {
            HybridEncoder.encodeWithLengthPrefix(
                repetitionLevels,
                bitWidth: HybridEncoder.bitWidth(forMaximum: UInt32(maxRepetitionLevel)),
                into: &context.body
            )
        }
        if maxDefinitionLevel > 0 {
            HybridEncoder.encodeWithLengthPrefix(
                definitionLevels,
                bitWidth: HybridEncoder.bitWidth(forMaximum: UInt32(maxDefinitionLevel)),
                into: &context.body
            )
        }
        let encoding: Encoding
        if dictionaryActive && !indices.isEmpty {
            // Width from the dictionary so far; at least 1 so no reader meets a zero-width run.
            let width = max(1, HybridEncoder.bitWidth(forMaximum: UInt32(dictionary.count - 1)))
            context.body.append(UInt8(width))
            HybridEncoder.encode(indices, bitWidth: width, into: &context.body)
            encoding = .rleDictionary
            dictionaryDataPages += 1
        } else {
            if physicalType == .boolean {
                HybridEncoder.packBooleans(values, into: &context.body)
            } else {
                context.body.append(contentsOf: values)
            }
            encoding = .plain
            plainDataPages += 1
        }
        let sizes = try context.emitPage(
            .data(numValues: Int32(pageLevelCount), encoding: encoding),
            body: context.body,
            column: spec.name,
            into: &pages
        )
        uncompressedSize += sizes.uncompressed
        compressedSize += sizes.compressed
        chunkLevelCount += Int64(pageLevelCount)
        pageLevelCount = 0
        definitionLevels.removeAll(keepingCapacity: true)
        repetitionLevels.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        indices.removeAll(keepingCapacity: true)
    }

    /// Finishes the chunk and writes it (dictionary page first) through `write` at `offset`.
    /// Returns its metadata; the writer is then ready for the next row group.
    func finishChunk(
        _ context: PageContext,
        offset: Int64,
        write: ([UInt8]) throws -> Void
    ) throws -> ColumnMetaData {
        try finishPage(context)
        dictionaryPage.removeAll(keepingCapacity: true)
        if dictionaryDataPages > 0 {
            let sizes = try context.emitPage(
                .dictionary(numValues: Int32(dictionary.count)),
                body: dictionary.plainBytes,
                column: spec.name,
                into: &dictionaryPage
            )
            uncompressedSize += sizes.uncompressed
            compressedSize += sizes.compressed
        }
        var encodings: [Encoding] = []
        if plainDataPages > 0 || dictionaryDataPages > 0 { encodings.append(.plain) }
        if maxDefinitionLevel > 0 || maxRepetitionLevel > 0 { encodings.append(.rle) }
        if dictionaryDataPages > 0 { encodings.append(.rleDictionary) }
        var encodingStats: [PageEncodingStats] = []
        if dictionaryDataPages > 0 {
            encodingStats.append(PageEncodingStats(pageType: .dictionaryPage, encoding: .plain, count: 1))
            encodingStats.append(
                PageEncodingStats(pageType: .dataPage, encoding: .rleDictionary, count: dictionaryDataPages)
            )
        }
        if plainDataPages > 0 {
            encodingStats.append(PageEncodingStats(pageType: .dataPage, encoding: .plain, count: plainDataPages))
        }
        let metadata = ColumnMetaData(
            type: physicalType,
            encodings: encodings,
            pathInSchema: path,
            codec: context.compressor.codec,
            numValues: chunkLevelCount,
            totalUncompressedSize: Int64(uncompressedSize),
            totalCompressedSize: Int64(compressedSize),
            dataPageOffset: offset + Int64(dictionaryPage.count),
            dictionaryPageOffset: dictionaryDataPages > 0 ? offset : nil,
            statistics: statistics.encoded(for: spec.kind, maxByteArrayLength: context.maxStatisticsValueBytes),
            encodingStats: encodingStats
        )
        if !dictionaryPage.isEmpty { try write(dictionaryPage) }
        try write(pages)
        resetChunk()
        return metadata
    }

    private func resetChunk() {
        pages.removeAll(keepingCapacity: true)
        dictionary.removeAll()
        dictionaryActive = spec.dictionary && physicalType == .byteArray && !dictionaryAbandoned
        dictionaryDataPages = 0
        plainDataPages = 0
        chunkLevelCount = 0
        uncompressedSize = 0
        compressedSize = 0
        statistics.reset()
    }
}
