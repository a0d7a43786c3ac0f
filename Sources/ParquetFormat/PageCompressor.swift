import CParslZlib
import CParslZstd

/// Compresses page bodies with the file's codec, reusing one codec state and scratch across pages.
final class PageCompressor {
    let codec: CompressionCodec
    private var snappy: SnappyCompressor?
    /// zlib keeps a back-pointer to its z_stream, so the stream needs a stable heap address.
    private var zstream: UnsafeMutablePointer<z_stream>?
    private var zstdContext: OpaquePointer?
    private var zstdLevel: Int32 = 0

    init(_ compression: ParquetCompression) throws {
        switch compression {
        case .none:
            codec = .uncompressed
        case .snappy:
            codec = .snappy
            snappy = SnappyCompressor()
        case .gzip(let level):
            codec = .gzip
            guard (-1...9).contains(level) else {
                throw ParquetError(.invalidOptions, "GZIP level must be between -1 and 9, got \(level)")
            }
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // windowBits 15 + 16 asks zlib for the RFC 1952 gzip wrapper that Parquet's GZIP requires.
            let rc = cparslzlib_deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
            guard rc == Z_OK else {
                stream.deinitialize(count: 1)
                stream.deallocate()
                throw ParquetError(.compressionFailed, "zlib deflateInit2 failed (\(rc))")
            }
            zstream = stream
        case .zstd(let level):
            codec = .zstd
            guard (1...19).contains(level) else {
                throw ParquetError(.invalidOptions, "ZSTD level must be between 1 and 19, got \(level)")
            }
            guard let context = ZSTD_createCCtx() else {
                throw ParquetError(.compressionFailed, "ZSTD_createCCtx failed")
            }
            zstdContext = context
            zstdLevel = level
        }
    }

    deinit {
        if let zstream {
            deflateEnd(zstream)
            zstream.deinitialize(count: 1)
            zstream.deallocate()
        }
        if let zstdContext { ZSTD_freeCCtx(zstdContext) }
    }

    /// Appends the compressed form of `input` to `out` (a plain copy for `.none`).
    func compress(_ input: [UInt8], into out: inout [UInt8]) throws {
        switch codec {
        case .uncompressed:
            out.append(contentsOf: input)
        case .snappy:
            input.withUnsafeBytes { snappy!.compress($0, into: &out) }
        case .gzip:
            try deflate(input, into: &out)
        case .zstd:
            try zstdCompress(input, into: &out)
        }
    }

    /// One Zstandard frame per page, its content size in the header, as Parquet's ZSTD codec expects.
    private func zstdCompress(_ input: [UInt8], into out: inout [UInt8]) throws {
        let bound = ZSTD_compressBound(input.count)
        let oldCount = out.count
        out.append(contentsOf: repeatElement(0, count: bound))
        let written: Int = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                ZSTD_compressCCtx(zstdContext, dst.baseAddress! + oldCount, bound, src.baseAddress, src.count, zstdLevel)
            }
        }
        guard ZSTD_isError(written) == 0 else {
            out.removeLast(bound)
            throw ParquetError(.compressionFailed, "zstd: \(String(cString: ZSTD_getErrorName(written)))")
        }
        out.removeLast(bound - written)
    }

    private func deflate(_ input: [UInt8], into out: inout [UInt8]) throws {
        let stream = zstream!
        guard deflateReset(stream) == Z_OK else {
            throw ParquetError(.compressionFailed, "zlib deflateReset failed")
        }
        let bound = Int(deflateBound(stream, uLong(input.count))) + 32
        let oldCount = out.count
        out.append(contentsOf: repeatElement(0, count: bound))
        let rc: Int32 = input.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: src.baseAddress)
                stream.pointee.avail_in = uInt(src.count)
                stream.pointee.next_out = dst.baseAddress! + oldCount
                stream.pointee.avail_out = uInt(bound)
                return CParslZlib.deflate(stream, Z_FINISH)
            }
        }
        let produced = bound - Int(stream.pointee.avail_out)
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        guard rc == Z_STREAM_END else {
            out.removeLast(bound)
            throw ParquetError(.compressionFailed, "zlib deflate did not finish (\(rc))")
        }
        out.removeLast(bound - produced)
    }
}
