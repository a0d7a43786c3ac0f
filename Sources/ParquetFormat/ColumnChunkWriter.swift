#if _endian(big)
    #error("PLAIN values are copied in host byte order, which must be little-endian")
#endif

/// Encodes one column's values into pages for the current row group.
///
/// Values accumulate in a page buffer (PLAIN bytes or dictionary indices, plus levels); a full page
/// is compressed at once into `pages`, so a row group holds compressed pages and one open page per
/// column. The dictionary page is emitted at chunk end, in front of the data pages that use it.
/// A struct, so hot loops touch its buffers without the dynamic exclusivity checks of class properties.
struct ColumnChunkWriter {
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
    private var intDictionary = Int64Dictionary()
    /// Non-null values dictionary-encoded in this chunk, for the cardinality check.
    private var dictionaryValueCount = 0
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
        dictionaryActive = spec.dictionary && ColumnChunkWriter.supportsDictionary(spec.kind)
    }

    private static func supportsDictionary(_ kind: ParquetColumnSpec.Kind) -> Bool {
        switch kind {
        case .string, .binary, .int64, .timestampMicros, .double: true
        case .boolean, .int64List: false
        }
    }

    /// Doubles share the integer dictionary, keyed by their bit pattern (whose PLAIN bytes are the double's).
    private var usesIntDictionary: Bool { physicalType == .int64 || physicalType == .double }

    private var dictionaryCount: Int {
        usesIntDictionary ? intDictionary.count : dictionary.count
    }

    private var dictionaryBytes: [UInt8] {
        usesIntDictionary ? intDictionary.plainBytes : dictionary.plainBytes
    }

    /// Once this many values went through a chunk's dictionary, holding more entries than half of
    /// them marks near-unique data, for which PLAIN is both smaller and faster.
    private static let cardinalityCheckMinimumValues = 4096
    /// After this many values the bar rises to a quarter: an index per value plus the dictionary then costs
    /// more than PLAIN values do once compressed (ids that each appear a few times, say).
    private static let strictCardinalityCheckMinimumValues = 65536

    /// True when the dictionary passed a size bound or looks too high-cardinality to pay off.
    @inline(__always)
    private func dictionaryShouldFallBack(_ context: PageContext) -> Bool {
        let count = dictionaryCount
        return count > context.maxDictionaryEntries
            || (usesIntDictionary ? intDictionary.plainByteCount : dictionary.plainBytes.count)
                > context.maxDictionaryBytes
            || (dictionaryValueCount >= ColumnChunkWriter.cardinalityCheckMinimumValues
                && count * 2 > dictionaryValueCount)
            || (dictionaryValueCount >= ColumnChunkWriter.strictCardinalityCheckMinimumValues
                && count * 4 > dictionaryValueCount)
    }

    /// Bytes this column holds for the open row group, for the row-group memory bound.
    var bufferedBytes: Int {
        pages.count + values.count + indices.count * 4 + definitionLevels.count + repetitionLevels.count
            + dictionary.plainBytes.count + intDictionary.plainByteCount
    }

    private var estimatedPageBytes: Int {
        if dictionaryActive {
            let width = HybridEncoder.bitWidth(forMaximum: UInt32(max(dictionaryCount, 1)))
            return (indices.count * width) / 8 + pageLevelCount / 8
        }
        if physicalType == .boolean { return values.count / 8 + pageLevelCount / 8 }
        return values.count + pageLevelCount / 8
    }

    // MARK: - Appending rows

    /// Appends rows `range` of `data`, which the writer has already validated against the spec.
    mutating func append(_ data: ParquetColumnData, rows range: Range<Int>, context: PageContext) throws {
        switch data {
        case .int64(let v, let isNull) where dictionaryActive:
            try appendDictionary(v, isNull: isNull, rows: range, context: context, key: { $0 }) { $0.update($1) }
        case .int64(let v, let isNull):
            try appendFixedWidth(v, isNull: isNull, rows: range, context: context) { $0.update($1) }
        case .double(let v, let isNull) where dictionaryActive:
            try appendDictionary(v, isNull: isNull, rows: range, context: context, key: { Int64(bitPattern: $0.bitPattern) }) {
                $0.update($1)
            }
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

    private mutating func appendFixedWidth<T: BitwiseCopyable>(
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
    private mutating func appendFixedWidthRun<T: BitwiseCopyable>(
        _ src: UnsafeBufferPointer<T>,
        isNull: [Bool]?,
        rows: Range<Int>,
        updateStatistics: (inout ColumnStatistics, T) -> Void
    ) {
        pageLevelCount += rows.count
        if let isNull, maxDefinitionLevel > 0 {
            isNull.withUnsafeBufferPointer { nulls in
                let nullCount = appendDefinitionLevels(nulls, rows: rows)
                statistics.nullCount += Int64(nullCount)
                // Grow once for the present values, then store them through a pointer.
                let stride = MemoryLayout<T>.stride
                var offset = values.count
                values.append(contentsOf: repeatElement(0, count: (rows.count - nullCount) * stride))
                values.withUnsafeMutableBytes { dst in
                    for i in rows where !nulls[i] {
                        dst.storeBytes(of: src[i], toByteOffset: offset, as: T.self)
                        offset += stride
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

    /// Appends level 1 for present rows and 0 for null rows; returns the number of nulls.
    @inline(__always)
    private mutating func appendDefinitionLevels(_ nulls: UnsafeBufferPointer<Bool>, rows: Range<Int>) -> Int {
        var k = definitionLevels.count
        definitionLevels.append(contentsOf: repeatElement(1, count: rows.count))
        var nullCount = 0
        definitionLevels.withUnsafeMutableBufferPointer { levels in
            for i in rows {
                let null = nulls[i]
                levels[k] = null ? 0 : 1
                nullCount &+= null ? 1 : 0
                k += 1
            }
        }
        return nullCount
    }

    private mutating func appendBooleans(
        _ source: [Bool],
        isNull: [Bool]?,
        rows range: Range<Int>,
        context: PageContext
    ) throws {
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

    private mutating func appendByteArrays(
        _ bytes: [UInt8],
        offsets: [Int32],
        isNull: [Bool]?,
        rows range: Range<Int>,
        context: PageContext
    ) throws {
        let flags = maxDefinitionLevel > 0 ? isNull : nil
        try bytes.withUnsafeBytes { all in
            try offsets.withUnsafeBufferPointer { off in
                try withOptionalBuffer(flags) { nulls in
                    var row = range.lowerBound
                    while row < range.upperBound {
                        // Take rows until the page is full (or the dictionary overflows), then
                        // add their levels in one go.
                        let end =
                            dictionaryActive
                            ? appendDictionaryRun(all, off, nulls, rows: row..<range.upperBound, context: context)
                            : appendPlainRun(all, off, nulls, rows: row..<range.upperBound, context: context)
                        if maxDefinitionLevel > 0 {
                            if let nulls {
                                statistics.nullCount += Int64(appendDefinitionLevels(nulls, rows: row..<end))
                            } else {
                                definitionLevels.append(contentsOf: repeatElement(1, count: end - row))
                            }
                        }
                        pageLevelCount += end - row
                        row = end
                        try finishPageIfDue(context)
                    }
                }
            }
        }
    }

    /// Dictionary-encodes rows until the page is full or the dictionary passes its bound; returns the next row.
    @inline(__always)
    private mutating func appendDictionaryRun(
        _ all: UnsafeRawBufferPointer,
        _ off: UnsafeBufferPointer<Int32>,
        _ nulls: UnsafeBufferPointer<Bool>?,
        rows: Range<Int>,
        context: PageContext
    ) -> Int {
        var indexLimit = dictionaryIndexLimit(context)
        var i = rows.lowerBound
        while i < rows.upperBound {
            defer { i += 1 }
            if let nulls, nulls[i] { continue }
            let value = UnsafeRawBufferPointer(rebasing: all[Int(off[i])..<Int(off[i + 1])])
            let (index, inserted) = dictionary.index(of: value)
            indices.append(index)
            dictionaryValueCount += 1
            if inserted {
                // Every distinct value enters the dictionary once: statistics need only new entries.
                statistics.update(value)
                if dictionaryShouldFallBack(context) { return i + 1 }
                indexLimit = dictionaryIndexLimit(context)
            }
            if indices.count >= indexLimit { return i + 1 }
        }
        return i
    }

    /// How many indices fill a page at the current index width.
    private func dictionaryIndexLimit(_ context: PageContext) -> Int {
        Self.dictionaryIndexLimit(entries: dictionaryCount, context)
    }

    private static func dictionaryIndexLimit(entries: Int, _ context: PageContext) -> Int {
        let width = max(1, HybridEncoder.bitWidth(forMaximum: UInt32(entries)))
        return max(1, min(context.pageSizeBytes * 8 / width, maximumIndicesPerPage))
    }

    /// Indices wait as 4-byte integers until their page closes; narrow ones would otherwise fill a whole row
    /// group's worth per column before the page reached its encoded size.
    private static let maximumIndicesPerPage = 32768

    /// Closes the page when it is full, or ends dictionary encoding for the chunk when the
    /// dictionary should no longer grow (the open page keeps its indices).
    private mutating func finishPageIfDue(_ context: PageContext) throws {
        if dictionaryActive && dictionaryShouldFallBack(context) {
            try finishPage(context)
            dictionaryActive = false
            dictionaryAbandoned = true
        } else if estimatedPageBytes >= context.pageSizeBytes {
            try finishPage(context)
        }
    }

    /// Dictionary-encodes fixed-width values by their 64-bit `key`; falls back to PLAIN for the rest of the range
    /// when the dictionary stops paying off. Statistics come from the dictionary's entries when the chunk ends.
    private mutating func appendDictionary<T: BitwiseCopyable>(
        _ source: [T],
        isNull: [Bool]?,
        rows range: Range<Int>,
        context: PageContext,
        key: (T) -> Int64,
        updateStatistics: (inout ColumnStatistics, T) -> Void
    ) throws {
        let flags = maxDefinitionLevel > 0 ? isNull : nil
        var row = range.lowerBound
        try source.withUnsafeBufferPointer { src in
            try withOptionalBuffer(flags) { nulls in
                while row < range.upperBound && dictionaryActive {
                    let before = indices.count
                    let end = Self.encodeDictionaryRun(
                        src,
                        nulls,
                        rows: row..<range.upperBound,
                        key: key,
                        dictionary: &intDictionary,
                        indices: &indices,
                        // From the stored count, not a method on self: inside this closure, calling a method of the
                        // captured struct would copy all of it.
                        indexLimit: Self.dictionaryIndexLimit(entries: intDictionary.count, context)
                    )
                    dictionaryValueCount += indices.count - before
                    if maxDefinitionLevel > 0 {
                        if let nulls {
                            statistics.nullCount += Int64(appendDefinitionLevels(nulls, rows: row..<end))
                        } else {
                            definitionLevels.append(contentsOf: repeatElement(1, count: end - row))
                        }
                    }
                    pageLevelCount += end - row
                    row = end
                    try finishPageIfDue(context)
                }
            }
        }
        // After a fallback the rest of the range goes PLAIN.
        if row < range.upperBound {
            try appendFixedWidth(
                source,
                isNull: isNull,
                rows: row..<range.upperBound,
                context: context,
                updateStatistics: updateStatistics
            )
        }
    }

    /// Encodes rows until the page holds `indexLimit` indices, or a batch of new entries calls for the bounds to be
    /// checked again; returns the next row. Static, over plain buffers, so nothing is copied or reference-counted
    /// per value.
    @inline(__always)
    private static func encodeDictionaryRun<T: BitwiseCopyable>(
        _ src: UnsafeBufferPointer<T>,
        _ nulls: UnsafeBufferPointer<Bool>?,
        rows: Range<Int>,
        key: (T) -> Int64,
        dictionary: inout Int64Dictionary,
        indices: inout [UInt32],
        indexLimit: Int
    ) -> Int {
        // Bounds and the index width change only as entries are added; re-check them every so many.
        let entryCheckpoint = dictionary.count + 256
        var row = rows.lowerBound
        while row < rows.upperBound {
            let i = row
            row += 1
            if let nulls, nulls[i] { continue }
            indices.append(dictionary.index(of: key(src[i])).index)
            if indices.count >= indexLimit || dictionary.count >= entryCheckpoint { break }
        }
        return row
    }

    /// PLAIN-encodes rows until the page is full; returns the next row.
    @inline(__always)
    private mutating func appendPlainRun(
        _ all: UnsafeRawBufferPointer,
        _ off: UnsafeBufferPointer<Int32>,
        _ nulls: UnsafeBufferPointer<Bool>?,
        rows: Range<Int>,
        context: PageContext
    ) -> Int {
        var i = rows.lowerBound
        while i < rows.upperBound {
            defer { i += 1 }
            if let nulls, nulls[i] { continue }
            let value = UnsafeRawBufferPointer(rebasing: all[Int(off[i])..<Int(off[i + 1])])
            let n = UInt32(value.count)
            values.append(UInt8(truncatingIfNeeded: n))
            values.append(UInt8(truncatingIfNeeded: n >> 8))
            values.append(UInt8(truncatingIfNeeded: n >> 16))
            values.append(UInt8(truncatingIfNeeded: n >> 24))
            values.append(contentsOf: value)
            statistics.update(value)
            if values.count >= context.pageSizeBytes { return i + 1 }
        }
        return i
    }

    private mutating func appendLists(
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
        let flags = spec.required ? nil : isNull
        try source.withUnsafeBufferPointer { src in
            try listOffsets.withUnsafeBufferPointer { off in
                try withOptionalBuffer(flags) { nulls in
                    var row = range.lowerBound
                    while row < range.upperBound {
                        // Rows up to the page's room; pages end on row boundaries so no list straddles two.
                        let roomValues = max(1, (context.pageSizeBytes - values.count) / 8)
                        var end = row
                        var levelCount = 0
                        while end < range.upperBound {
                            let length = Int(off[end + 1] - off[end])
                            levelCount += max(1, length)
                            end += 1
                            if Int(off[end] - off[row]) >= roomValues { break }
                        }
                        // Null rows have an empty range, so the run's values are contiguous.
                        let run = UnsafeBufferPointer(rebasing: src[Int(off[row])..<Int(off[end])])
                        values.append(contentsOf: UnsafeRawBufferPointer(run))
                        for v in run { statistics.update(v) }
                        var k = definitionLevels.count
                        definitionLevels.append(contentsOf: repeatElement(elementLevel, count: levelCount))
                        repetitionLevels.append(contentsOf: repeatElement(1, count: levelCount))
                        var leafNulls = 0
                        definitionLevels.withUnsafeMutableBufferPointer { def in
                            repetitionLevels.withUnsafeMutableBufferPointer { rep in
                                for i in row..<end {
                                    let length = Int(off[i + 1] - off[i])
                                    rep[k] = 0
                                    if length == 0 {
                                        def[k] = (nulls?[i] ?? false) ? 0 : emptyLevel
                                        leafNulls += 1
                                        k += 1
                                    } else {
                                        k += length
                                    }
                                }
                            }
                        }
                        statistics.nullCount += Int64(leafNulls)
                        pageLevelCount += levelCount
                        row = end
                        if estimatedPageBytes >= context.pageSizeBytes { try finishPage(context) }
                    }
                }
            }
        }
    }

    // MARK: - Pages and chunks

    /// Closes the open page: levels, then values, compressed as one body (data page v1).
    mutating func finishPage(_ context: PageContext) throws {
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
            let width = max(1, HybridEncoder.bitWidth(forMaximum: UInt32(dictionaryCount - 1)))
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
    mutating func finishChunk(
        _ context: PageContext,
        offset: Int64,
        write: ([UInt8]) throws -> Void
    ) throws -> ColumnMetaData {
        try finishPage(context)
        if usesIntDictionary {
            // Every value dictionary-encoded in this chunk is one of its entries.
            for key in intDictionary.keys {
                if physicalType == .double {
                    statistics.update(Double(bitPattern: UInt64(bitPattern: key)))
                } else {
                    statistics.update(key)
                }
            }
        }
        dictionaryPage.removeAll(keepingCapacity: true)
        if dictionaryDataPages > 0 {
            let sizes = try context.emitPage(
                .dictionary(numValues: Int32(dictionaryCount)),
                body: dictionaryBytes,
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

    private mutating func resetChunk() {
        pages.removeAll(keepingCapacity: true)
        dictionary.removeAll()
        intDictionary.removeAll()
        dictionaryValueCount = 0
        dictionaryActive = spec.dictionary && ColumnChunkWriter.supportsDictionary(spec.kind) && !dictionaryAbandoned
        dictionaryDataPages = 0
        plainDataPages = 0
        chunkLevelCount = 0
        uncompressedSize = 0
        compressedSize = 0
        statistics.reset()
    }
}

/// Runs `body` with a pointer view of `array`, or nil when there is no array.
@inline(__always)
private func withOptionalBuffer<R>(
    _ array: [Bool]?,
    _ body: (UnsafeBufferPointer<Bool>?) throws -> R
) rethrows -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer { try body($0) }
}
