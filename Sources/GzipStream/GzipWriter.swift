import CParslZlib
import Dispatch

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A streaming gzip compressor that uses several cores and writes one standard gzip member.
///
/// The output is a single RFC 1952 member: a 10-byte header (no file name, modification time 0, OS "Unix"),
/// a raw deflate stream, then the CRC-32 and the input size modulo 2³². `gzip -t`, `zcat`, Python's `gzip`,
/// pandas and LibreOffice read it like any other `.gz` file.
///
/// Compression follows pigz: the input is cut into blocks of ``blockSize`` bytes; each block is compressed on its
/// own (by libdeflate, see `BlockCompressor`), and every block but the last ends on a byte boundary with the
/// stream left open, so the blocks concatenate into one deflate stream; the last one ends it. The per-block CRCs
/// are joined with `crc32_combine`.
///
/// With more than one thread, blocks are compressed by ``threads`` background workers while the caller keeps
/// writing; at most `2 × threads` blocks are in flight, and ``write(_:)`` waits when that window is full, so
/// memory stays bounded (about `2 × blockSize` per block in flight) whatever the input size. With one thread the
/// same blocks are compressed on the caller's thread. Either way the compressed bytes depend only on the input,
/// ``level`` and ``blockSize`` — not on the number of threads.
///
/// The `output` closure is always called on the caller's thread, during ``write(_:)`` or ``finish()``, in stream
/// order. The caller owns the file: write to a temporary name and rename after ``finish()`` returns. If `output`
/// throws, the error propagates out of the `write`/`finish` call unchanged, background work is waited for, and
/// every later call throws it again. To abandon a stream (another error, an interrupt), release the writer
/// without calling ``finish()``: blocks in flight are waited for and dropped, and `output` is not called again.
///
/// For uncompressed output use ``PassthroughWriter``, which has the same ``ByteStreamWriter`` interface.
///
/// The writer is not thread-safe: use it from one thread at a time. ``write(_:)`` and ``finish()`` block that
/// thread while they wait for workers; from Swift concurrency, that occupies one thread of the cooperative pool
/// for the wait.
public final class GzipWriter: ByteStreamWriter {
    /// The deflate level, 0 (stored) to 9 (smallest).
    public let level: Int32
    /// The number of compression threads; 1 means compress on the caller's thread.
    public let threads: Int
    /// The size of the independently compressed input blocks.
    public let blockSize: Int
    /// Below this, the matches lost at block edges cost noticeably more output.
    public static let minimumBlockSize = 32 << 10

    /// The number of online processors, the default for `threads`. (It does not look at CPU affinity or cgroup
    /// quotas; pass `threads` explicitly where those limit the process.)
    public static var defaultThreadCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    private enum State {
        case open
        case finished
        case failed(any Error)
    }

    private let output: (UnsafeRawBufferPointer) throws -> Void
    private let workers: [CompressionWorker]
    private let inlineCompressor: BlockCompressor?
    private let window: Int
    private var nextWorker = 0
    private var current: DeflateBlock
    private var inFlight: [DeflateBlock] = []
    private var spare: [DeflateBlock] = []
    private var state = State.open
    private var headerWritten = false
    private var crc: UInt = 0
    private var totalIn: UInt64 = 0

    /// Creates a writer.
    ///
    /// - Parameters:
    ///   - level: deflate level 0–9; 6 is gzip's default.
    ///   - threads: compression threads, at least 1; defaults to the number of processors.
    ///   - blockSize: input bytes per independently compressed block, at least 32 KiB. Larger blocks compress a
    ///     little better (fewer matches cut at block edges) and hold more memory.
    ///   - output: receives the compressed bytes in order, on the caller's thread; the buffer is valid only during
    ///     the call.
    public init(
        level: Int32 = 6,
        threads: Int = GzipWriter.defaultThreadCount,
        blockSize: Int = 256 << 10,
        output: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard (0...9).contains(level) else {
            throw GzipError(code: .invalidArgument, message: "compression level \(level) is not in 0...9")
        }
        guard threads >= 1 else {
            throw GzipError(code: .invalidArgument, message: "thread count \(threads) is below 1")
        }
        guard blockSize >= Self.minimumBlockSize, blockSize <= 1 << 30 else {
            throw GzipError(
                code: .invalidArgument,
                message: "block size \(blockSize) is not in \(Self.minimumBlockSize)...\(1 << 30)"
            )
        }
        self.level = level
        self.threads = threads
        self.blockSize = blockSize
        self.output = output
        if threads == 1 {
            self.workers = []
            self.inlineCompressor = try BlockCompressor(level: level)
            self.window = 0
        } else {
            self.workers = try (0..<threads).map { try CompressionWorker(index: $0, level: level) }
            self.inlineCompressor = nil
            self.window = 2 * threads
        }
        self.current = DeflateBlock(capacity: blockSize)
        self.current.reset()
    }

    deinit {
        // Not finished (an error, or the caller gave up): let running jobs end so no work outlives the writer.
        for block in self.inFlight {
            block.done.wait()
        }
    }

    /// Compresses the next bytes of the stream. The buffer is only read during the call.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try self.checkOpen()
        guard var source = bytes.baseAddress, !bytes.isEmpty else { return }
        var remaining = bytes.count
        do {
            while remaining > 0 {
                // A full block is sent only once more input arrives, so the last block is never empty unless
                // the whole stream is.
                if self.current.inputCount == self.blockSize {
                    try self.submitCurrent(isLast: false)
                }
                let count = min(remaining, self.blockSize - self.current.inputCount)
                (self.current.input + self.current.inputCount).update(
                    from: source.assumingMemoryBound(to: UInt8.self),
                    count: count
                )
                self.current.inputCount += count
                source += count
                remaining -= count
            }
        } catch {
            self.fail(error)
            throw error
        }
    }

    /// Compresses what is left, waits for every block, and writes the gzip trailer.
    ///
    /// After it returns, the output closure has received the complete member and is not called again.
    public func finish() throws {
        try self.checkOpen()
        do {
            try self.submitCurrent(isLast: true)
            try self.drain(keepingAtMost: 0)
            let size = UInt32(truncatingIfNeeded: self.totalIn)
            let crc = UInt32(truncatingIfNeeded: self.crc)
            let trailer: [UInt8] = [
                UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8),
                UInt8(truncatingIfNeeded: crc >> 16), UInt8(truncatingIfNeeded: crc >> 24),
                UInt8(truncatingIfNeeded: size), UInt8(truncatingIfNeeded: size >> 8),
                UInt8(truncatingIfNeeded: size >> 16), UInt8(truncatingIfNeeded: size >> 24),
            ]
            try trailer.withUnsafeBytes { try self.output($0) }
            self.state = .finished
        } catch {
            self.fail(error)
            throw error
        }
    }

    // MARK: - Blocks

    private func checkOpen() throws {
        switch self.state {
        case .open: return
        case .finished: throw GzipError(code: .misuse, message: "the gzip stream is already finished")
        case .failed(let error): throw error
        }
    }

    private func fail(_ error: any Error) {
        self.state = .failed(error)
        for block in self.inFlight {
            block.done.wait()
        }
        self.inFlight.removeAll()
    }

    /// Hands the current block to a worker (or compresses it here) and starts the next one.
    private func submitCurrent(isLast: Bool) throws {
        let block = self.current
        block.isLast = isLast
        if !isLast {
            let next = self.spare.popLast() ?? DeflateBlock(capacity: self.blockSize)
            next.reset()
            self.current = next
        }
        if let compressor = self.inlineCompressor {
            compressor.compress(block)
            try self.emit(block)
            self.spare.append(block)
        } else {
            self.workers[self.nextWorker].submit(block)
            self.nextWorker = (self.nextWorker + 1) % self.workers.count
            self.inFlight.append(block)
            try self.drain(keepingAtMost: self.window - 1)
        }
    }

    /// Writes finished blocks in order: all that are done already, and waits for the oldest while more than
    /// `limit` are in flight.
    private func drain(keepingAtMost limit: Int) throws {
        while let oldest = self.inFlight.first {
            if self.inFlight.count > limit {
                oldest.done.wait()
            } else if oldest.done.wait(timeout: .now()) == .timedOut {
                return
            }
            self.inFlight.removeFirst()
            try self.emit(oldest)
            self.spare.append(oldest)
        }
    }

    private func emit(_ block: DeflateBlock) throws {
        if let failure = block.failure {
            throw failure
        }
        if !self.headerWritten {
            // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=3 (Unix). XFL tells readers 2 = best, 4 = fastest.
            let xfl: UInt8 = self.level == 9 ? 2 : (self.level == 1 ? 4 : 0)
            let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]
            try header.withUnsafeBytes { try self.output($0) }
            self.headerWritten = true
        }
        self.crc = crc32_combine(self.crc, block.crc, off_t(block.inputCount))
        self.totalIn += UInt64(block.inputCount)
        if block.outputCount > 0 {
            try self.output(UnsafeRawBufferPointer(start: block.output, count: block.outputCount))
        }
    }
}

@available(*, unavailable)
extension GzipWriter: Sendable {}
