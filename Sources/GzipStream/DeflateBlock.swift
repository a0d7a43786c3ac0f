import CParslDeflate
import CParslZlib
import Dispatch

/// One block of input and, once compressed, its raw deflate bytes and CRC.
///
/// `@unchecked Sendable`: a block is filled by the producer, then handed to exactly one worker, and read again by
/// the producer only after `done` was signalled; the semaphore orders the accesses. It is never touched by two
/// threads at once.
final class DeflateBlock: @unchecked Sendable {
    let capacity: Int
    let input: UnsafeMutablePointer<UInt8>
    var inputCount = 0
    private(set) var output: UnsafeMutablePointer<UInt8>
    private(set) var outputCapacity: Int
    var outputCount = 0
    /// The last block ends the deflate stream (BFINAL); the others end on a byte boundary, open for the next.
    var isLast = false
    /// CRC-32 of this block's input alone; combined in order by the writer.
    var crc: UInt = 0
    var failure: GzipError?
    /// Signalled by the worker when `output`, `crc` and `failure` are final.
    let done = DispatchSemaphore(value: 0)

    init(capacity: Int) {
        self.capacity = capacity
        self.input = .allocate(capacity: capacity)
        // Sized from the compressor's bound on first use (`reserveOutput`), then kept while the block is reused.
        self.outputCapacity = 0
        self.output = .allocate(capacity: self.outputCapacity)
    }

    deinit {
        self.input.deallocate()
        self.output.deallocate()
    }

    /// Makes room for `count` output bytes in total, dropping what was written.
    func reserveOutput(_ count: Int) {
        guard count > self.outputCapacity else { return }
        self.output.deallocate()
        self.output = .allocate(capacity: count)
        self.outputCapacity = count
    }

    /// Prepares the block for reuse.
    func reset() {
        self.inputCount = 0
        self.outputCount = 0
        self.isLast = false
        self.crc = 0
        self.failure = nil
    }
}

/// Compresses blocks with libdeflate and makes every block but the last continuable.
///
/// libdeflate is 2–3× faster than zlib at the same level and compresses better, but it only writes whole deflate
/// streams: the last deflate block of each carries BFINAL. To concatenate blocks into one stream, the compressor
/// finds where that final deflate block starts (zlib's `inflate` with `Z_BLOCK` stops at every block boundary and
/// reports the bit position; about a tenth of the compression time), clears its BFINAL bit, and appends an empty
/// stored block so the next block starts on a byte boundary — the bytes zlib's sync flush would write. Blocks
/// are compressed without a preset dictionary (libdeflate has none); its better parsing more than makes up for
/// the matches lost at block edges.
final class BlockCompressor {
    private let compressor: OpaquePointer
    // Heap-allocated: zlib keeps a pointer back to the z_stream and checks it on every call, so its address must
    // not change, which a Swift stored property does not promise.
    private let scanner: UnsafeMutablePointer<z_stream>
    private let scratch: UnsafeMutablePointer<UInt8>
    private static let scratchSize = 64 << 10

    init(level: Int32) throws {
        guard let compressor = libdeflate_alloc_compressor(level) else {
            throw GzipError(code: .zlib, message: "libdeflate_alloc_compressor(\(level)) failed")
        }
        self.scanner = .allocate(capacity: 1)
        self.scanner.initialize(to: z_stream())
        // windowBits -15: raw deflate, as libdeflate_deflate_compress writes it.
        let rc = cparslzlib_inflateInit2(self.scanner, -15)
        guard rc == Z_OK else {
            libdeflate_free_compressor(compressor)
            self.scanner.deallocate()
            throw GzipError(code: .zlib, message: "inflateInit2 failed with code \(rc)")
        }
        self.compressor = compressor
        self.scratch = .allocate(capacity: Self.scratchSize)
    }

    deinit {
        libdeflate_free_compressor(self.compressor)
        inflateEnd(self.scanner)
        self.scanner.deallocate()
        self.scratch.deallocate()
    }

    /// Compresses `block.input` into `block.output` and sets `block.crc`; on failure sets `block.failure`.
    func compress(_ block: DeflateBlock) {
        block.crc = UInt(libdeflate_crc32(0, block.input, block.inputCount))
        // Room for the empty stored block appended to a continuable block: one header byte and LEN/NLEN.
        block.reserveOutput(libdeflate_deflate_compress_bound(self.compressor, block.inputCount) + 5)
        block.outputCount = libdeflate_deflate_compress(
            self.compressor,
            block.input,
            block.inputCount,
            block.output,
            block.outputCapacity - 5
        )
        guard block.outputCount > 0 else {
            block.failure = GzipError(code: .zlib, message: "libdeflate did not fit its own bound")
            return
        }
        if !block.isLast {
            self.makeContinuable(block)
        }
    }

    /// Clears BFINAL on the block's last deflate block and appends an empty stored block (byte-aligning the end).
    private func makeContinuable(_ block: DeflateBlock) {
        let stream = self.scanner
        var rc = inflateReset(stream)
        stream.pointee.next_in = block.output
        stream.pointee.avail_in = uInt(block.outputCount)
        var finalBlockStart = 0  // in bits; stays 0 when the stream is a single deflate block
        var end: Int?  // in bits: just past the final block's end-of-block code
        var inflated = 0
        while rc == Z_OK {
            stream.pointee.next_out = self.scratch
            stream.pointee.avail_out = uInt(Self.scratchSize)
            rc = inflate(stream, Z_BLOCK)
            inflated += Self.scratchSize - Int(stream.pointee.avail_out)
            // data_type: bits still unread in the bit buffer (low 6 bits), +64 once the final block's header was
            // read, +128 when stopped at a block boundary. A boundary before the final block: the next block may be
            // the final one. The boundary after it: the end (the call after that drops the padding bits, so the
            // end is only seen here).
            let type = Int(stream.pointee.data_type)
            if rc == Z_OK && type & 128 != 0 {
                let position = (block.outputCount - Int(stream.pointee.avail_in)) * 8 - (type & 63)
                if type & 64 == 0 {
                    finalBlockStart = position
                } else {
                    end = position
                }
            }
        }
        guard rc == Z_STREAM_END, stream.pointee.avail_in == 0, inflated == block.inputCount, let end,
            case let unusedBits = block.outputCount * 8 - end, (0..<8).contains(unusedBits)
        else {
            block.failure = GzipError(code: .zlib, message: "cannot re-read libdeflate's output (inflate code \(rc))")
            return
        }
        block.output[finalBlockStart >> 3] &= ~(UInt8(1) << UInt8(finalBlockStart & 7))
        // An empty stored block: BFINAL 0, BTYPE 00 (three zero bits after the end of block code), zero padding to
        // the byte boundary, then LEN 0 and NLEN 0xFFFF.
        block.output[block.outputCount - 1] &= UInt8(truncatingIfNeeded: (1 << (8 - unusedBits)) - 1)
        if unusedBits < 3 {
            block.output[block.outputCount] = 0
            block.outputCount += 1
        }
        for byte: UInt8 in [0x00, 0x00, 0xFF, 0xFF] {
            block.output[block.outputCount] = byte
            block.outputCount += 1
        }
    }
}

/// One compression thread: a serial queue with its own compressor.
///
/// `@unchecked Sendable`: the compressor is only used from jobs on `queue`, which is serial, so the jobs never
/// overlap.
final class CompressionWorker: @unchecked Sendable {
    private let queue: DispatchQueue
    private let compressor: BlockCompressor

    init(index: Int, level: Int32) throws {
        self.queue = DispatchQueue(label: "GzipStream.worker.\(index)")
        self.compressor = try BlockCompressor(level: level)
    }

    /// Compresses `block` in the background and signals `block.done` when finished.
    func submit(_ block: DeflateBlock) {
        self.queue.async {
            self.compressor.compress(block)
            block.done.signal()
        }
    }
}
