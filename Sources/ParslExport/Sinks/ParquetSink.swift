import ParquetFormat

/// Writes one `<table>.parquet` per table it is given, typed from the mappings: INT64, DOUBLE, BOOLEAN, STRING,
/// TIMESTAMP(MICROS) (naive, or UTC-adjusted with `--timezone`), and each id-list column twice: as its source text
/// and as `<name>_list` LIST<INT64>. Files are renamed into place only when the whole export succeeds.
public final class ParquetSink: LaneSplittingSink, TableReplayingSink {
    public struct Options: Sendable {
        public var directory: String
        public var compression: ParquetCompression
        public var rowGroupRows: Int
        /// One row group per file is buffered at a time, in arrays that may hold up to twice their bytes; 12 MiB
        /// keeps every export within its memory budget (64 MB), and fewer, larger row groups keep files smaller
        /// (8 MiB made the 100k-task database's files 1 % larger, and saved no memory that measurements could tell
        /// from their noise).
        public var rowGroupBytes: Int

        public init(
            directory: String, compression: ParquetCompression = .snappy, rowGroupRows: Int = 128 * 1024,
            rowGroupBytes: Int = 12 << 20
        ) {
            self.directory = directory
            self.compression = compression
            self.rowGroupRows = rowGroupRows
            self.rowGroupBytes = rowGroupBytes
        }
    }

    /// Suffix of the LIST<INT64> column added for each id-list column.
    public static let listSuffix = "_list"

    public let demand: SinkDemand
    private var options: Options
    private var context: ExportContext?
    private var current: (file: AtomicFile, writer: ParquetWriter, schema: TableSchema)?
    private var completed = PendingFiles()
    /// NOT NULL columns found holding unreadable values (exported as NULL), per table: declared OPTIONAL instead.
    private var relaxed: [String: Set<String>] = [:]
    /// The current table is being dropped and will be replayed with more columns relaxed.
    private var skippingTable = false
    private var wantsReplay = false

    public init(options: Options, tables: Set<String>) {
        self.options = options
        demand = SinkDemand(tables: tables)
    }

    public func consume(_ event: ExportEvent) throws {
        switch event {
        case .start(let context):
            self.context = context
            try OutputDirectory.create(options.directory)
        case .tableStart(let schema):
            skippingTable = false
            let file = try AtomicFile(path: options.directory + "/" + schema.name + ".parquet")
            do {
                let writer = try ParquetWriter(
                    columns: columnSpecs(for: schema),
                    options: writerOptions(),
                    output: file.output
                )
                current = (file, writer, schema)
            } catch let error as ParquetError {
                file.discard()
                throw ExportError(.dataError, "\(file.path): \(error)")
            }
        case .batch(let batch):
            guard let current, !skippingTable else { return }
            let alreadyRelaxed = relaxed[batch.schema.name] ?? []
            let nullInRequired = batch.schema.columns.indices.filter { index in
                let column = batch.schema.columns[index]
                return !column.nullable && !alreadyRelaxed.contains(column.name) && batch.columns[index].isNull.contains(true)
            }
            if !nullInRequired.isEmpty {
                relaxed[batch.schema.name, default: []].formUnion(nullInRequired.map { batch.schema.columns[$0].name })
                current.file.discard()
                self.current = nil
                skippingTable = true
                wantsReplay = true
                return
            }
            do {
                try current.writer.write(parquetBatch(batch))
            } catch let error as ParquetError {
                throw dataError(error, table: batch.schema.name)
            }
        case .tableEnd:
            guard let state = current, !skippingTable else { return }
            current = nil
            do {
                try state.writer.close()
            } catch let error as ParquetError {
                state.file.discard()
                throw ExportError(.dataError, "\(state.file.path): \(error)")
            }
            try completed.append(state.file)
        case .domain:
            break
        }
    }

    /// Names the source database, as every input-related error does; the usual cause is a value in a NOT NULL
    /// column that could not be read as its type (the warnings say which).
    private func dataError(_ error: ParquetError, table: String) -> ExportError {
        let source = context?.databasePath ?? "database"
        return ExportError(
            .dataError,
            "\(source): table \(table) cannot be written to Parquet (\(error)); a NOT NULL column holds a value that is not of its type"
        )
    }

    private func writerOptions() -> ParquetWriterOptions {
        var metadata: [(key: String, value: String)] = []
        if let context {
            metadata.append(("parsl.schema_era", context.era.rawValue))
            metadata.append(("parsl_export.mapping_version", context.mappingVersion))
            metadata.append(("parsl.run_ids", context.runs.map(\.runID).joined(separator: ",")))
            metadata.append(("parsl_export.timestamps", context.timeZone.map { "UTC (converted from \($0))" } ?? "naive local time of the writing host"))
        }
        return ParquetWriterOptions(
            createdBy: "parsl-export version \(context?.exporterVersion ?? ExportPipeline.exporterVersion)",
            compression: options.compression,
            maxRowGroupRows: options.rowGroupRows,
            maxRowGroupBytes: options.rowGroupBytes,
            // Each column keeps an open page's buffer; with Parsl's wide tables (18 columns for resource) 1 MiB
            // pages would cost 18 MiB of buffers for a negligible gain in size.
            pageSizeBytes: 64 << 10,
            keyValueMetadata: metadata
        )
    }

    private func columnSpecs(for schema: TableSchema) -> [ParquetColumnSpec] {
        let utc = context?.timeZone != nil
        var specs: [ParquetColumnSpec] = []
        let relaxed = relaxed[schema.name] ?? []
        for column in schema.columns {
            let required = !column.nullable && !relaxed.contains(column.name)
            switch column.type {
            // Dictionaries for numbers too: Parsl repeats ids, counts and sampled values a lot; near-unique columns
            // fall back to PLAIN early.
            case .int64:
                specs.append(ParquetColumnSpec(name: column.name, kind: .int64, required: required, dictionary: true))
            case .float64:
                specs.append(ParquetColumnSpec(name: column.name, kind: .double, required: required, dictionary: true))
            case .bool: specs.append(ParquetColumnSpec(name: column.name, kind: .boolean, required: required))
            case .timestamp:
                specs.append(
                    ParquetColumnSpec(
                        name: column.name, kind: .timestampMicros(utcAdjusted: utc), required: required, dictionary: true))
            case .text:
                specs.append(ParquetColumnSpec(name: column.name, kind: .string, required: required, dictionary: true))
            case .idList:
                specs.append(ParquetColumnSpec(name: column.name, kind: .string, required: required, dictionary: true))
                specs.append(ParquetColumnSpec(name: column.name + Self.listSuffix, kind: .int64List, required: false))
            }
        }
        return specs
    }

    private func parquetBatch(_ batch: RecordBatch) -> ParquetBatch {
        var columns: [ParquetColumnData] = []
        for (index, column) in batch.columns.enumerated() {
            let nulls: [Bool]? = column.isNull.contains(true) ? column.isNull : nil
            switch column.values {
            case .int64(let values), .timestamp(let values): columns.append(.int64(values, isNull: nulls))
            case .float64(let values): columns.append(.double(values, isNull: nulls))
            case .bool(let values): columns.append(.boolean(values, isNull: nulls))
            case .text(let text):
                columns.append(.byteArray(bytes: text.bytes, offsets: text.offsets, isNull: nulls))
                if batch.schema.columns[index].type == .idList {
                    columns.append(Self.idLists(text, isNull: column.isNull))
                }
            }
        }
        return ParquetBatch(rowCount: batch.rowCount, columns: columns)
    }

    static func idLists(_ text: TextColumn, isNull: [Bool]) -> ParquetColumnData {
        var values: [Int64] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(text.count + 1)
        for row in 0..<text.count {
            if !isNull[row] { values += text.withValue(at: row) { IDList.parse($0) } }
            offsets.append(Int32(values.count))
        }
        return .int64List(values: values, listOffsets: offsets, isNull: isNull.contains(true) ? isNull : nil)
    }

    public func prepare() throws { try completed.prepareAll() }

    public func finish() throws -> [String] { try completed.moveAllIntoPlace() }

    /// Each table is a file of its own, so tables read in parallel can go to a sibling writing beside this sink;
    /// the two then buffer a row group each, so they split the row-group memory budget.
    public func laneSibling() -> (any ExportSink)? {
        options.rowGroupBytes = max(options.rowGroupBytes / 2, 1 << 20)
        return ParquetSink(options: options, tables: demand.tables)
    }

    public func replayTargets() -> [any ExportSink] {
        guard wantsReplay else { return [] }
        wantsReplay = false
        return [self]
    }

    public func abort() {
        current?.file.discard()
        current = nil
        completed.discardAll()
    }
}
