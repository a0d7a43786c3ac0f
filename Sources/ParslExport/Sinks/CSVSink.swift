import CSVFormat
import GzipStream

/// Writes one `<table>.csv.gz` (or `.csv`) per table it is given: RFC 4180, a header row from the mappings,
/// values as `parsl-export schema` documents. Files are renamed into place only when the whole export succeeds.
public final class CSVSink: LaneSplittingSink {
    public struct Options: Sendable {
        public var directory: String
        public var gzip: Bool
        public var level: Int32
        public var byteOrderMark: Bool
        /// Leave text that a spreadsheet would run as a formula as it is.
        public var raw: Bool
        public var threads: Int

        public init(
            directory: String,
            gzip: Bool = true,
            level: Int32 = 6,
            byteOrderMark: Bool = false,
            raw: Bool = false,
            threads: Int = GzipWriter.defaultThreadCount
        ) {
            self.directory = directory
            self.gzip = gzip
            self.level = level
            self.byteOrderMark = byteOrderMark
            self.raw = raw
            self.threads = threads
        }
    }

    public let demand: SinkDemand
    private let options: Options
    private var current: (file: AtomicFile, stream: any ByteStreamWriter, csv: CSVWriter)?
    private var completed = PendingFiles()
    private var scratch: [UInt8] = []

    public init(options: Options, tables: Set<String>) {
        self.options = options
        demand = SinkDemand(tables: tables)
    }

    public func consume(_ event: ExportEvent) throws {
        switch event {
        case .start:
            try OutputDirectory.create(options.directory)
        case .tableStart(let schema):
            let name = schema.name + (options.gzip ? ".csv.gz" : ".csv")
            let file = try AtomicFile(path: options.directory + "/" + name)
            let stream: any ByteStreamWriter =
                options.gzip
                ? try GzipWriter(level: options.level, threads: options.threads, output: file.output)
                : PassthroughWriter(output: file.output)
            var csv = CSVWriter(formulaSafety: options.raw ? .raw : .neutralize, byteOrderMark: options.byteOrderMark)
            csv.writeHeader(schema.columns.map(\.name))
            current = (file, stream, csv)
        case .batch(let batch):
            guard var state = current else { return }
            current = nil
            try write(batch, into: &state.csv, stream: state.stream)
            current = state
        case .tableEnd:
            guard var state = current else { return }
            current = nil
            try state.csv.drain { try state.stream.write($0) }
            try state.stream.finish()
            try completed.append(state.file)
        case .domain:
            break
        }
    }

    private func write(_ batch: RecordBatch, into csv: inout CSVWriter, stream: any ByteStreamWriter) throws {
        try batch.withBorrowedColumns { columns in
            for row in 0..<batch.rowCount {
                for column in columns {
                    if column.isNull[row] {
                        csv.appendNull()
                        continue
                    }
                    switch column.values {
                    case .int64(let values): csv.appendInteger(values[row])
                    case .float64(let values): csv.appendDouble(values[row])
                    case .bool(let values): csv.appendBool(values[row])
                    case .text(let bytes, let offsets):
                        csv.appendText(UnsafeBufferPointer(rebasing: bytes[Int(offsets[row])..<Int(offsets[row + 1])]))
                    case .timestamp(let values):
                        scratch.removeAll(keepingCapacity: true)
                        Timestamp.format(values[row], into: &scratch)
                        scratch.withUnsafeBufferPointer { csv.appendText($0) }
                    }
                }
                csv.endRow()
                if csv.count >= 1 << 18 { try csv.drain { try stream.write($0) } }
            }
        }
    }

    public func prepare() throws { try completed.prepareAll() }

    public func finish() throws -> [String] { try completed.moveAllIntoPlace() }

    /// Each table is a file of its own, so tables read in parallel can go to a sibling writing beside this sink.
    public func laneSibling() -> (any ExportSink)? { CSVSink(options: options, tables: demand.tables) }

    public func abort() {
        current?.file.discard()
        current = nil
        completed.discardAll()
    }
}
