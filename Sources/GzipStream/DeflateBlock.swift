import CParslZlib
import Dispatch

/// Size of the deflate window: each block is primed with this much of the input that precedes it.
let deflateWindowSize = 32 << 10

/// One block of input and, once compressed, its raw deflate bytes and CRC.
///
/// `@unchecked Sendable`: a block is filled by the producer, then handed to exactly one worker, and read again by
/// the producer only after `done` was signalled; the semaphore orders the accesses. It is never touched by two
/// threads at once.
final class DeflateBlock: @unchecked Sendable {
    let capacity: Int
    let input: UnsafeMutablePointer<UInt8>
    var inputCount = 0
    /// The last (up to) 32 KiB of input before this block; empty for the first block.
    let dictionary: UnsafeMutablePointer<UInt8>
    var dictionaryCount = 0
    private(set) var output: UnsafeMutablePointer<UInt8>
    private(set) var outputCapacity: Int
    var outputCount = 0
    /// The last block ends the deflate stream (BFINAL); the others end on a byte boundary (sync flush).
    var isLast = false
    /// CRC-32 of this block's input alone; combined in order by the writer.
    var crc: UInt = 0
    var failure: GzipError?
    /// Signalled by the worker when `output`, `crc` and `failure` are final.
    let done = DispatchSemaphore(value: 0)

    init(capacity: Int) {
        self.capacity = capacity
        self.input = .allocate(capacity: capacity)
        self.dictionary = .allocate(capacity: deflateWindowSize)
        // Sized from deflateBound on first use (`reserveOutput`), then kept while the block is reused.
        self.outputCapacity = 0
        self.output = .allocate(capacity: self.outputCapacity)
    }

    deinit {
        self.input.deallocate()
        self.dictionary.deallocate()
        self.output.deallocate()
    }

    /// Makes room for `count` output bytes in total, keeping what was written.
    func reserveOutput(_ count: Int) {
        guard count > self.outputCapacity else { return }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        grown.update(from: self.output, count: self.outputCount)
        self.output.deallocate()
        self.output = grown
        self.outputCapacity = count
    }

    /// Prepares the block for reuse as the block after `previous`.
    func reset(after previous: DeflateBlock?) {
        self.inputCount = 0
        self.outputCount = 0
        self.isLast = false
        self.crc = 0
        self.failure = nil
        if let previous {
            let count = min(deflateWindowSize, previous.inputCount)
            self.dictionary.update(from: previous.input + (previous.inputCount - count), count: count)
            self.dictionaryCount = count
        } else {
            self.dictionaryCount = 0
        }
    }
}

/// A raw deflate stream reused for block after block (`deflateReset` instead of a new stream each time).
final class BlockCompressor {
    // Heap-allocated: zlib keeps a pointer back to the z_stream and checks it on every call, so its address must
    // not change, which a Swift stored property does not promise.
    private let stream: UnsafeMutablePointer<z_stream>

    init(level: Int32) throws {
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        // windowBits -15: raw deflate, 32 KiB window; the gzip header and trailer are written by GzipWriter.
        let rc = cparslzlib_deflateInit2(self.stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY)
        guard rc == Z_OK else {
            self.stream.deallocate()
            throw GzipError(code: .zlib, message: "deflateInit2(level: \(level)) failed with code \(rc)")
        }
    }

    deinit {
        deflateEnd(self.stream)
        self.stream.deallocate()
    }

    /// Compresses `block.input` into `block.output` and sets `block.crc`; on failure sets `block.failure`.
    func compress(_ block: DeflateBlock) {
        block.crc = crc32(0, block.input, uInt(block.inputCount))
        var rc = deflateReset(self.stream)
        if rc == Z_OK && block.dictionaryCount > 0 {
            rc = deflateSetDictionary(self.stream, block.dictionary, uInt(block.dictionaryCount))
        }
        guard rc == Z_OK else {
            block.failure = GzipError(code: .zlib, message: "deflateReset/SetDictionary failed with code \(rc)")
            return
        }
        // deflateBound covers a finished stream; a sync flush adds at most an empty stored block (5 bytes) and the
        // bits pending before it.
        block.reserveOutput(Int(deflateBound(self.stream, uLong(block.inputCount))) + 16)
        block.outputCount = 0
        self.stream.pointee.next_in = block.input
        self.stream.pointee.avail_in = uInt(block.inputCount)
        let flush = block.isLast ? Z_FINISH : Z_SYNC_FLUSH
        while true {
            if block.outputCount == block.outputCapacity {
                block.reserveOutput(block.outputCapacity * 2)
            }
            let room = block.outputCapacity - block.outputCount
            self.stream.pointee.next_out = block.output + block.outputCount
            self.stream.pointee.avail_out = uInt(room)
            rc = deflate(self.stream, flush)
            block.outputCount += room - Int(self.stream.pointee.avail_out)
            if rc == Z_STREAM_END {
                return  // Z_FINISH done
            }
            guard rc == Z_OK || rc == Z_BUF_ERROR else {
                block.failure = GzipError(code: .zlib, message: "deflate failed with code \(rc)")
                return
            }
            // A sync flush is complete once deflate returns with output space left over.
            if flush == Z_SYNC_FLUSH && self.stream.pointee.avail_out > 0 && self.stream.pointee.avail_in == 0 {
                return
            }
        }
    }
}

/// One compression thread: a serial queue with its own deflate stream.
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
