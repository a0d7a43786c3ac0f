/// Scratch shared by all column writers of one file: page bodies are assembled, compressed and given
/// a header here, so the buffers are allocated once per file rather than per page or per column.
final class PageContext {
    let compressor: PageCompressor
    let pageSizeBytes: Int
    let maxDictionaryBytes: Int
    let maxDictionaryEntries: Int
    let maxStatisticsValueBytes: Int
    /// Uncompressed page body under construction.
    var body: [UInt8] = []
    private var compressed: [UInt8] = []
    private var header = ThriftCompactWriter()

    init(options: ParquetWriterOptions) throws {
        compressor = try PageCompressor(options.compression)
        pageSizeBytes = options.pageSizeBytes
        maxDictionaryBytes = options.maxDictionaryBytes
        maxDictionaryEntries = options.maxDictionaryEntries
        maxStatisticsValueBytes = options.maxStatisticsValueBytes
    }

    /// Compresses `body`, then appends header + compressed bytes to `out`.
    /// Returns the sizes including the header, as ColumnMetaData counts them.
    func emitPage(
        _ kind: PageHeader.Kind,
        body: [UInt8],
        column: String,
        into out: inout [UInt8]
    ) throws -> (uncompressed: Int, compressed: Int) {
        let payload: [UInt8]
        if compressor.codec == .uncompressed {
            payload = body
        } else {
            compressed.removeAll(keepingCapacity: true)
            try compressor.compress(body, into: &compressed)
            payload = compressed
        }
        guard body.count <= Int32.max, payload.count <= Int32.max else {
            throw ParquetError(.valueTooLarge, "column '\(column)': a page of \(body.count) bytes exceeds 2 GiB")
        }
        header.reset()
        PageHeader(kind: kind, uncompressedSize: Int32(body.count), compressedSize: Int32(payload.count))
            .encode(to: &header)
        out.append(contentsOf: header.bytes)
        out.append(contentsOf: payload)
        return (header.bytes.count + body.count, header.bytes.count + payload.count)
    }
}
