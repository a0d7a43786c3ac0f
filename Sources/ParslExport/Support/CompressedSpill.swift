import CParslZstd

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bytes set aside until their turn in an output: written once, compressed on the way (zstd at its fastest
/// level, about a tenth of the size for trace events) into an unlinked temporary file, then handed back once, in
/// order, by `drain`. Memory is the compressor's window and two buffers, about 1 MB, whatever goes through.
final class CompressedSpill {
    private let directory: String
    private let purpose: String
    private var file: Int32 = -1
    private let compressor: OpaquePointer
    private var compressed: UnsafeMutableRawBufferPointer
    /// Uncompressed bytes written so far.
    private(set) var count: Int64 = 0
    private var drained = false

    /// `purpose` names the temporary file (`.parsl-export-<purpose>-XXXXXX`) while it briefly has a name.
    init(directory: String, purpose: String) {
        self.directory = directory
        self.purpose = purpose
        compressor = ZSTD_createCCtx()
        _ = ZSTD_CCtx_setParameter(compressor, ZSTD_c_compressionLevel, 1)
        // A 128 KiB window: what is set aside (counter events) repeats within a few lines.
        _ = ZSTD_CCtx_setParameter(compressor, ZSTD_c_windowLog, 17)
        compressed = .allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)
    }

    deinit {
        ZSTD_freeCCtx(compressor)
        compressed.deallocate()
        if file >= 0 { close(file) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!drained, "a spill is written before it is drained")
        guard !bytes.isEmpty else { return }
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size {
            try compress(&input, ZSTD_e_continue)
        }
        count += Int64(bytes.count)
    }

    /// Hands every byte written back to `output`, in order and in chunks, and ends the spill.
    func drain(into output: (UnsafeRawBufferPointer) throws -> Void) throws {
        precondition(!drained, "a spill is drained once")
        drained = true
        guard count > 0 else { return }
        var empty = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try compress(&empty, ZSTD_e_end) != 0 {}
        guard lseek(file, 0, SEEK_SET) == 0 else { throw failure("temporary file") }
        let decompressor = ZSTD_createDCtx()
        defer { ZSTD_freeDCtx(decompressor) }
        let readSize = ZSTD_DStreamInSize()
        let plainSize = 256 << 10
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: readSize, alignment: 16)
        let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: plainSize, alignment: 16)
        defer {
            chunk.deallocate()
            plain.deallocate()
        }
        var handedBack: Int64 = 0
        var frameLeft = 1
        while true {
            let got = systemRead(file, chunk.baseAddress, readSize)
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw failure("temporary file") }
            if got == 0 { break }
            var input = ZSTD_inBuffer(src: chunk.baseAddress, size: got, pos: 0)
            while input.pos < input.size {
                var out = ZSTD_outBuffer(dst: plain.baseAddress, size: plainSize, pos: 0)
                frameLeft = ZSTD_decompressStream(decompressor, &out, &input)
                guard ZSTD_isError(frameLeft) == 0 else { throw corrupt(frameLeft) }
                if out.pos > 0 {
                    try output(UnsafeRawBufferPointer(start: plain.baseAddress, count: out.pos))
                    handedBack += Int64(out.pos)
                }
            }
        }
        // Flush what the decompressor still holds once all input is in.
        while frameLeft != 0 {
            var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
            var out = ZSTD_outBuffer(dst: plain.baseAddress, size: plainSize, pos: 0)
            frameLeft = ZSTD_decompressStream(decompressor, &out, &input)
            guard ZSTD_isError(frameLeft) == 0 else { throw corrupt(frameLeft) }
            if out.pos == 0 { break }
            try output(UnsafeRawBufferPointer(start: plain.baseAddress, count: out.pos))
            handedBack += Int64(out.pos)
        }
        guard handedBack == count else {
            throw ExportError(
                .outputFailed, "\(directory): temporary file gave back \(handedBack) of \(count) bytes")
        }
    }

    /// Compresses from `input` with `directive`, writing what comes out; returns what zstd says is left to flush.
    @discardableResult
    private func compress(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) throws -> Int {
        var out = ZSTD_outBuffer(dst: compressed.baseAddress, size: compressed.count, pos: 0)
        let left = ZSTD_compressStream2(compressor, &out, &input, directive)
        guard ZSTD_isError(left) == 0 else { throw corrupt(left) }
        if out.pos > 0 { try writeOut(UnsafeRawBufferPointer(start: compressed.baseAddress, count: out.pos)) }
        return left
    }

    private func writeOut(_ bytes: UnsafeRawBufferPointer) throws {
        if file < 0 { file = try makeUnlinkedTemporaryFile(in: directory, purpose: purpose) }
        if let code = writeFully(file, bytes) {
            throw ExportError(.outputFailed, "\(directory): temporary file: \(String(cString: strerror(code)))")
        }
    }

    private func failure(_ what: String) -> ExportError {
        ExportError(.outputFailed, "\(directory): \(what): \(String(cString: strerror(errno)))")
    }

    private func corrupt(_ code: Int) -> ExportError {
        ExportError(.outputFailed, "\(directory): temporary file: \(String(cString: ZSTD_getErrorName(code)))")
    }
}

/// A new temporary file in `directory`, already unlinked so that its space returns to the system however the
/// process ends; the descriptor is the only way to it. `purpose` names it while it briefly has a name.
func makeUnlinkedTemporaryFile(in directory: String, purpose: String) throws -> Int32 {
    var template = Array((directory + "/.parsl-export-\(purpose)-XXXXXX").utf8CString)
    let file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard file >= 0 else {
        throw ExportError(
            .outputFailed, "\(directory): cannot create a temporary file (\(String(cString: strerror(errno))))")
    }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    return file
}

/// Writes all of `bytes` to `descriptor`, again where a signal interrupted the call; the errno of a failure.
func writeFully(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    var done = 0
    while done < bytes.count {
        let result = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
        if result < 0 && errno == EINTR { continue }
        guard result > 0 else { return result < 0 ? errno : EIO }
        done += result
    }
    return nil
}

// The C call, out of reach of the method of the same name.
private func systemRead(_ file: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(file, buffer, count) }
