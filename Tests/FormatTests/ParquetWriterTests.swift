import Testing

@testable import ParquetFormat

/// File-level behaviour checked by decoding the footer with the generic Thrift reader.
/// Real readers (pyarrow, DuckDB, polars, fastparquet) check the same files in parquet_format_check.py.
struct ParquetWriterTests {
    private func options(_ configure: (inout ParquetWriterOptions) -> Void = { _ in }) -> ParquetWriterOptions {
        var o = ParquetWriterOptions(createdBy: "parquet-format-tests version 0")
        configure(&o)
        return o
    }

    private func columnMetaData(_ footer: ThriftValue, rowGroup: Int, column: Int) -> ThriftValue? {
        footer[4]?.list?[rowGroup][1]?.list?[column][3]
    }

    @Test func zeroRowFileKeepsTheSchema() throws {
        let columns = [
            ParquetColumnSpec(name: "id", kind: .int64, required: true),
            ParquetColumnSpec(name: "name", kind: .string, dictionary: true),
            ParquetColumnSpec(name: "deps", kind: .int64List),
        ]
        let file = try writeParquet(columns, options: options(), batches: [])
        let footer = try parquetFooter(file)
        #expect(footer[1]?.int == 1)
        #expect(footer[3]?.int == 0)
        #expect(footer[4]?.list?.count == 0)
        // Root + id + name + (deps, list, element).
        #expect(footer[2]?.list?.map { $0[4]?.string } == ["schema", "id", "name", "deps", "list", "element"])
        #expect(footer[2]?.list?.first?[5]?.int == 3)
        #expect(footer[6]?.string == "parquet-format-tests version 0")
        // One TYPE_ORDER per leaf.
        #expect(footer[7]?.list == [ThriftValue](repeating: .fields([1: .fields([:])]), count: 3))
    }

    @Test func rowGroupsCloseAtTheRowBound() throws {
        let spec = [ParquetColumnSpec(name: "v", kind: .int64, required: true)]
        let batch = ParquetBatch(rowCount: 25, columns: [.int64((0..<25).map { Int64($0) }, isNull: nil)])
        let file = try writeParquet(spec, options: options { $0.maxRowGroupRows = 10 }, batches: [batch])
        let footer = try parquetFooter(file)
        let groups = try #require(footer[4]?.list)
        #expect(groups.map { $0[3]?.int } == [10, 10, 5])
        #expect(footer[3]?.int == 25)
        var expectedOffset: Int64 = 4
        for (i, group) in groups.enumerated() {
            // Row groups are contiguous, start right after the previous one, and carry their ordinal.
            #expect(group[5]?.int == expectedOffset)
            #expect(group[7]?.int == Int64(i))
            let meta = try #require(group[1]?.list?.first?[3])
            #expect(meta[9]?.int == expectedOffset)
            #expect(meta[4]?.int == 1)  // SNAPPY
            // The data page offset points at a DATA_PAGE header.
            var reader = ThriftCompactReader(file, at: Int(expectedOffset))
            let header = try reader.readStruct()
            #expect(header[1]?.int == 0)
            expectedOffset += try #require(group[6]?.int)
        }
        #expect(groups[1][1]?.list?.first?[3]?[12]?[6]?.bytes == [10, 0, 0, 0, 0, 0, 0, 0])
        #expect(groups[1][1]?.list?.first?[3]?[12]?[5]?.bytes == [19, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func rowGroupsCloseAtTheByteBound() throws {
        let spec = [ParquetColumnSpec(name: "s", kind: .string, required: true)]
        let text = String(repeating: "x", count: 1000)
        let batch = ParquetBatch(rowCount: 100, columns: [byteArrayColumn([String?](repeating: text, count: 100))])
        let file = try writeParquet(
            spec,
            options: options {
                $0.maxRowGroupBytes = 10_000
                $0.compression = .none
            },
            batches: [batch]
        )
        let groups = try #require(try parquetFooter(file)[4]?.list)
        let rows = groups.compactMap { $0[3]?.int }
        #expect(rows.reduce(0, +) == 100)
        #expect(groups.count >= 10)
        #expect(rows.allSatisfy { $0 <= 10 })
    }

    @Test func statisticsFollowEachTypesOrder() throws {
        let columns = [
            ParquetColumnSpec(name: "i", kind: .int64),
            ParquetColumnSpec(name: "s", kind: .string, dictionary: true),
            ParquetColumnSpec(name: "p", kind: .string),
            ParquetColumnSpec(name: "d", kind: .double),
            ParquetColumnSpec(name: "n", kind: .int64),
            ParquetColumnSpec(name: "b", kind: .boolean),
        ]
        let batch = ParquetBatch(
            rowCount: 4,
            columns: [
                .int64([-5, 0, 7, 123], isNull: [false, true, false, false]),
                byteArrayColumn(["z", "é", nil, "a"]),
                byteArrayColumn(["z", "é", nil, "a"]),
                .double([.nan, 0.0, 2.5, -0.0], isNull: nil),
                .int64([1, 2, 3, 4], isNull: [true, true, true, true]),
                .boolean([true, true, false, true], isNull: [false, false, true, false]),
            ]
        )
        let footer = try parquetFooter(try writeParquet(columns, options: options(), batches: [batch]))
        let stats = (0..<6).map { columnMetaData(footer, rowGroup: 0, column: $0)?[12] }
        #expect(stats[0]?[3]?.int == 1)
        #expect(stats[0]?[6]?.bytes == [0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(stats[0]?[5]?.bytes == [123, 0, 0, 0, 0, 0, 0, 0])
        // Unsigned byte order: "é" (C3 A9) sorts after "z" (7A), for dictionary and PLAIN alike.
        for s in [stats[1], stats[2]] {
            #expect(s?[3]?.int == 1)
            #expect(s?[6]?.bytes == Array("a".utf8))
            #expect(s?[5]?.bytes == Array("é".utf8))
        }
        // NaN excluded and counted; a zero bound is -0.0 as minimum and +0.0 as maximum.
        #expect(stats[3]?[9]?.int == 1)
        #expect(stats[3]?[6]?.bytes == [0, 0, 0, 0, 0, 0, 0, 0x80])
        #expect(stats[3]?[5]?.bytes == [0, 0, 0, 0, 0, 0, 0x04, 0x40])
        // All null: null_count only.
        #expect(stats[4]?[3]?.int == 4)
        #expect(stats[4]?[5] == nil && stats[4]?[6] == nil)
        #expect(stats[5]?[6]?.bytes == [1] && stats[5]?[5]?.bytes == [1])
    }

    @Test func dictionaryFallsBackToPlainPastItsBound() throws {
        let spec = [ParquetColumnSpec(name: "s", kind: .string, required: true, dictionary: true)]
        let rows = (0..<1000).map { "value-\($0 % 300)" as String? }
        let file = try writeParquet(
            spec,
            options: options { $0.maxDictionaryEntries = 100 },
            batches: [ParquetBatch(rowCount: rows.count, columns: [byteArrayColumn(rows)])]
        )
        let meta = try #require(columnMetaData(try parquetFooter(file), rowGroup: 0, column: 0))
        #expect(meta[2]?.list == [.int(0), .int(8)])  // PLAIN, RLE_DICTIONARY (no levels: required)
        let dictionaryOffset = try #require(meta[11]?.int)
        var reader = ThriftCompactReader(file, at: Int(dictionaryOffset))
        let header = try reader.readStruct()
        #expect(header[1]?.int == 2)  // DICTIONARY_PAGE
        #expect(header[7]?[1]?.int == 101)  // the entry that crossed the bound is still in it
        let encodingStats = try #require(meta[13]?.list)
        #expect(encodingStats.contains { $0[1]?.int == 0 && $0[2]?.int == 8 })
        #expect(encodingStats.contains { $0[1]?.int == 0 && $0[2]?.int == 0 })
        #expect(meta[5]?.int == 1000)
    }

    @Test func lowCardinalityTextStaysDictionaryEncoded() throws {
        let spec = [ParquetColumnSpec(name: "s", kind: .string, dictionary: true)]
        let rows = (0..<5000).map { $0 % 7 == 0 ? nil : "host-\($0 % 4)" }
        let file = try writeParquet(
            spec,
            options: options(),
            batches: [ParquetBatch(rowCount: rows.count, columns: [byteArrayColumn(rows)])]
        )
        let meta = try #require(columnMetaData(try parquetFooter(file), rowGroup: 0, column: 0))
        #expect(meta[2]?.list == [.int(0), .int(3), .int(8)])
        #expect(meta[13]?.list?.contains { $0[2]?.int == 0 && $0[1]?.int == 0 } == false)
    }

    @Test func repeatedIntegersAreDictionaryEncodedAndUniqueOnesFallBack() throws {
        let spec = [
            ParquetColumnSpec(name: "task_id", kind: .int64, dictionary: true),
            ParquetColumnSpec(
                name: "unique",
                kind: .timestampMicros(utcAdjusted: false),
                required: true,
                dictionary: true
            ),
        ]
        let n = 10_000
        let batch = ParquetBatch(
            rowCount: n,
            columns: [
                .int64((0..<n).map { Int64($0 / 5) }, isNull: (0..<n).map { $0 % 9 == 0 }),
                .int64((0..<n).map { Int64($0) * 1000 }, isNull: nil),
            ]
        )
        let file = try writeParquet(spec, options: options(), batches: [batch])
        let footer = try parquetFooter(file)
        let repeated = try #require(columnMetaData(footer, rowGroup: 0, column: 0))
        #expect(repeated[2]?.list == [.int(0), .int(3), .int(8)])
        #expect(repeated[13]?.list?.contains { $0[1]?.int == 0 && $0[2]?.int == 0 } == false)
        var reader = ThriftCompactReader(file, at: Int(try #require(repeated[11]?.int)))
        #expect(try reader.readStruct()[7]?[1]?.int == Int64(n / 5))
        #expect(repeated[12]?[6]?.bytes == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(repeated[12]?[5]?.bytes == [0xCF, 0x07, 0, 0, 0, 0, 0, 0])  // 1999
        // Near-unique values stop using the dictionary once the cardinality check has enough values.
        let unique = try #require(columnMetaData(footer, rowGroup: 0, column: 1))
        let stats = try #require(unique[13]?.list)
        #expect(stats.contains { $0[1]?.int == 0 && $0[2]?.int == 8 })
        #expect(stats.contains { $0[1]?.int == 0 && $0[2]?.int == 0 })
    }

    // MARK: - Misuse

    @Test func nullInARequiredColumnNamesTheColumnAndKeepsTheWriterUsable() throws {
        var file: [UInt8] = []
        let writer = try ParquetWriter(
            columns: [ParquetColumnSpec(name: "task_id", kind: .int64, required: true)],
            options: options()
        ) { file.append(contentsOf: $0) }
        let error = try #require(throws: ParquetError.self) {
            try writer.write(ParquetBatch(rowCount: 2, columns: [.int64([1, 2], isNull: [false, true])]))
        }
        #expect(error.code == .nullInRequiredColumn)
        #expect(error.message.contains("task_id"))
        try writer.write(ParquetBatch(rowCount: 2, columns: [.int64([1, 2], isNull: [false, false])]))
        try writer.close()
        #expect(try parquetFooter(file)[3]?.int == 2)
    }

    @Test func malformedBatchesAreRejected() throws {
        let writer = try ParquetWriter(
            columns: [
                ParquetColumnSpec(name: "s", kind: .string),
                ParquetColumnSpec(name: "l", kind: .int64List),
            ],
            options: options()
        ) { _ in }
        let good = listColumn([[1], []])
        let cases: [ParquetBatch] = [
            ParquetBatch(rowCount: 2, columns: [byteArrayColumn(["a", "b"])]),
            ParquetBatch(rowCount: 2, columns: [.int64([1, 2], isNull: nil), good]),
            ParquetBatch(rowCount: 2, columns: [.byteArray(bytes: [1], offsets: [0, 1, 2], isNull: nil), good]),
            ParquetBatch(rowCount: 2, columns: [.byteArray(bytes: [1, 2], offsets: [0, 2, 1], isNull: nil), good]),
            ParquetBatch(rowCount: 2, columns: [.byteArray(bytes: [1, 2], offsets: [0, 2], isNull: nil), good]),
            ParquetBatch(
                rowCount: 2,
                columns: [
                    byteArrayColumn(["a", "b"]), .int64List(values: [], listOffsets: [0, 0, 0], isNull: [false]),
                ]
            ),
        ]
        for batch in cases {
            #expect(throws: ParquetError.self) { try writer.write(batch) }
        }
        #expect(writer.rowCount == 0)
    }

    @Test func invalidSchemasAreRejected() {
        #expect(throws: ParquetError.self) { try ParquetWriter(columns: [], options: options()) { _ in } }
        #expect(throws: ParquetError.self) {
            try ParquetWriter(
                columns: [ParquetColumnSpec(name: "a", kind: .int64), ParquetColumnSpec(name: "a", kind: .double)],
                options: options()
            ) { _ in }
        }
        #expect(throws: ParquetError.self) {
            try ParquetWriter(
                columns: [ParquetColumnSpec(name: "a", kind: .int64)],
                options: options { $0.maxRowGroupRows = 0 }
            ) { _ in }
        }
    }

    @Test func closedAndFailedWritersRefuseFurtherUse() throws {
        let writer = try ParquetWriter(columns: [ParquetColumnSpec(name: "a", kind: .int64)], options: options()) { _ in
        }
        try writer.close()
        let closed = try #require(throws: ParquetError.self) { try writer.close() }
        #expect(closed.code == .writerClosed)

        struct DiskFull: Error {}
        var calls = 0
        let failing = try ParquetWriter(columns: [ParquetColumnSpec(name: "a", kind: .int64)], options: options()) {
            _ in
            calls += 1
            if calls > 1 { throw DiskFull() }
        }
        try failing.write(ParquetBatch(rowCount: 1, columns: [.int64([1], isNull: nil)]))
        #expect(throws: DiskFull.self) { try failing.close() }
        let after = try #require(throws: ParquetError.self) { try failing.close() }
        #expect(after.code == .writerClosed)
    }

    /// Each codec's pages start with its own magic: gzip 1F 8B 08 (RFC 1952, deflate), a Zstandard frame
    /// 28 B5 2F FD; the column metadata names the codec (GZIP = 2, ZSTD = 6).
    @Test(arguments: [
        (ParquetCompression.gzip(level: 6), Int64(2), [0x1F, 0x8B, 0x08] as [UInt8]),
        (ParquetCompression.zstd(level: 1), Int64(6), [0x28, 0xB5, 0x2F, 0xFD] as [UInt8]),
    ])
    func pagesAreFramesOfTheirCodec(compression: ParquetCompression, codec: Int64, magic: [UInt8]) throws {
        let spec = [ParquetColumnSpec(name: "v", kind: .int64, required: true)]
        let file = try writeParquet(
            spec,
            options: options { $0.compression = compression },
            batches: [ParquetBatch(rowCount: 3, columns: [.int64([1, 2, 3], isNull: nil)])]
        )
        let meta = try #require(columnMetaData(try parquetFooter(file), rowGroup: 0, column: 0))
        #expect(meta[4]?.int == codec)
        var reader = ThriftCompactReader(file, at: Int(try #require(meta[9]?.int)))
        _ = try reader.readStruct()
        #expect(Array(file[reader.position..<(reader.position + magic.count)]) == magic)
    }

    @Test(arguments: [0, 20, -1] as [Int32])
    func zstdLevelOutOfRangeIsRejected(level: Int32) throws {
        let spec = [ParquetColumnSpec(name: "v", kind: .int64, required: true)]
        let error = try #require(throws: ParquetError.self) {
            _ = try writeParquet(spec, options: options { $0.compression = .zstd(level: level) }, batches: [])
        }
        #expect(error.code == .invalidOptions)
    }
}
