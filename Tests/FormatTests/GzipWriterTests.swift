import CParslZlib
import GzipStream
import Testing

struct GzipWriterTests {
    // MARK: - Round trips

    static let blockSize = 32 << 10
    static let sizes = [0, 1, 1000, blockSize - 1, blockSize, blockSize + 1, 2 * blockSize, 7 * blockSize + 12345]

    @Test(arguments: GzipTestInput.allCases, sizes)
    func roundTripsThroughZlibWithSmallBlocks(input kind: GzipTestInput, size: Int) throws {
        let input = kind.bytes(count: size)
        let single = try gzipWithWriter(input, threads: 1, blockSize: Self.blockSize)
        let multi = try gzipWithWriter(input, threads: 3, blockSize: Self.blockSize, chunkSeed: 99)
        #expect(try gunzipOneMember(single) == input)
        // The blocks do not depend on the threads or on how the input was cut into writes.
        #expect(multi == single)
    }

    @Test(arguments: GzipTestInput.allCases)
    func roundTripsSeveralMegabytesWithDefaultBlocks(input kind: GzipTestInput) throws {
        let input = kind.bytes(count: 5_000_000 + 17)
        let multi = try gzipWithWriter(input, threads: 2)
        let single = try gzipWithWriter(input, threads: 1)
        #expect(try gunzipOneMember(multi) == input)
        #expect(multi == single)
    }

    @Test func roundTripsBlocksThatHoldSeveralDeflateBlocks() throws {
        // Alternating incompressible and text runs make the compressor end deflate blocks inside each of our
        // blocks (stored ones among them), so the BFINAL cleared is not the first deflate block's.
        var input: [UInt8] = []
        for part in 0..<24 {
            let kind: GzipTestInput = part.isMultiple(of: 2) ? .random : .csvLike
            input += kind.bytes(count: 90_000 + part * 1_111, seed: UInt64(part))
        }
        let out = try gzipWithWriter(input, threads: 2, blockSize: 1 << 20)
        #expect(try gunzipOneMember(out) == input)
    }

    @Test(arguments: 0...9)
    func everyLevelRoundTrips(level: Int) throws {
        let input = GzipTestInput.csvLike.bytes(count: 300_000)
        let out = try gzipWithWriter(input, level: Int32(level), threads: 2, blockSize: Self.blockSize)
        #expect(try gunzipOneMember(out) == input)
        // XFL: 2 for the slowest level, 4 for the fastest, else 0.
        #expect(out[8] == (level == 9 ? 2 : level == 1 ? 4 : 0))
        if level == 0 {
            #expect(out.count > input.count)  // stored blocks
        } else {
            #expect(out.count < input.count / 3)
        }
    }

    @Test func higherLevelsCompressBetter() throws {
        let input = GzipTestInput.csvLike.bytes(count: 1_000_000)
        let fast = try gzipWithWriter(input, level: 1, threads: 2)
        let best = try gzipWithWriter(input, level: 9, threads: 2)
        #expect(best.count < fast.count)
    }

    // MARK: - Header and trailer

    @Test(arguments: [0, 1, 200_000])
    func headerAndTrailerAreRFC1952(size: Int) throws {
        let input = GzipTestInput.random.bytes(count: size, seed: UInt64(size))
        let out = try gzipWithWriter(input, threads: 2, blockSize: Self.blockSize)
        // ID1 ID2, CM 8 (deflate), no flags, MTIME 0, XFL 0 at level 6, OS 3 (Unix).
        #expect(Array(out[0..<10]) == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])
        // CRC-32 of the whole input in one zlib call, against the writer's per-block CRCs combined.
        let crc = input.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        #expect(Self.littleEndianUInt32(out, at: out.count - 8) == crc)
        #expect(Self.littleEndianUInt32(out, at: out.count - 4) == UInt32(truncatingIfNeeded: size))
    }

    @Test func corruptedTrailerIsRejectedByTheTestInflater() throws {
        // Guards the round-trip tests: the inflater must notice a wrong CRC, or they would prove nothing.
        var out = try gzipWithWriter(Array("hello, gzip".utf8), threads: 1)
        out[out.count - 8] ^= 0xFF
        #expect(throws: InflateFailure.self) { try gunzipOneMember(out) }
    }

    /// Little-endian UInt32 at `offset`.
    static func littleEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }

    // MARK: - Streaming and errors

    @Test func outputFlowsBeforeFinish() throws {
        var received = 0
        let writer = try GzipWriter(threads: 2, blockSize: Self.blockSize) { received += $0.count }
        let input = GzipTestInput.random.bytes(count: 40 * Self.blockSize)
        try writer.write(input)
        // At most 2 × threads blocks are held back; the rest must already be out (random data does not shrink).
        #expect(received >= (40 - 1 - 4) * Self.blockSize)
        try writer.finish()
    }

    struct DiskFull: Error {}

    @Test(arguments: [1, 2], [0, 1, 5, 30])
    func outputErrorPropagatesAndSticks(threads: Int, failAtCall: Int) throws {
        var calls = 0
        let writer = try GzipWriter(threads: threads, blockSize: Self.blockSize) { _ in
            defer { calls += 1 }
            if calls == failAtCall { throw DiskFull() }
        }
        let input = GzipTestInput.random.bytes(count: 8 * Self.blockSize)
        // The error surfaces from write or finish, whichever call reached the failing output.
        #expect(throws: DiskFull.self) {
            for _ in 0..<4 { try writer.write(input) }
            try writer.finish()
        }
        #expect(calls == failAtCall + 1)  // nothing written after the failure
        #expect(throws: DiskFull.self) { try writer.write([1, 2, 3]) }
        #expect(throws: DiskFull.self) { try writer.finish() }
    }

    @Test func errorOnTheTrailerPropagatesFromFinish() throws {
        var calls = 0
        let writer = try GzipWriter(threads: 2) { _ in
            calls += 1
            if calls == 3 { throw DiskFull() }  // header, the single block, then the trailer
        }
        try writer.write(Array("small".utf8))
        #expect(throws: DiskFull.self) { try writer.finish() }
    }

    // What this checks is that it returns: releasing a writer with blocks still queued on the workers must neither
    // deadlock (the time limit turns a hang into a failure) nor crash in deinit.
    @Test(.timeLimit(.minutes(1)))
    func anUnfinishedWriterCanBeReleasedWithBlocksInFlight() throws {
        var received = 0
        do {
            let writer = try GzipWriter(threads: 2, blockSize: Self.blockSize) { received += $0.count }
            try writer.write(GzipTestInput.random.bytes(count: 10 * Self.blockSize))
        }
        #expect(received > 0)
    }

    @Test func useAfterFinishIsAnError() throws {
        let writer = try GzipWriter(threads: 1) { _ in }
        try writer.finish()
        let error = #expect(throws: GzipError.self) { try writer.write([1]) }
        #expect(error?.code == .misuse)
        #expect(throws: GzipError.self) { try writer.finish() }
    }

    @Test func invalidParametersAreRejected() {
        for (level, threads, blockSize) in [(10, 1, 1 << 17), (-1, 1, 1 << 17), (6, 0, 1 << 17), (6, 1, 1000)] {
            let error = #expect(throws: GzipError.self) {
                _ = try GzipWriter(level: Int32(level), threads: threads, blockSize: blockSize) { _ in }
            }
            #expect(error?.code == .invalidArgument)
        }
    }

    // MARK: - Pass-through

    @Test func passthroughForwardsBytesUnchanged() throws {
        var out: [UInt8] = []
        let writer: any ByteStreamWriter = PassthroughWriter { out.append(contentsOf: $0) }
        try writer.write(Array("a,b\r\n".utf8))
        try writer.write([])
        try writer.write(Array("1,2\r\n".utf8))
        try writer.finish()
        #expect(out == Array("a,b\r\n1,2\r\n".utf8))
        #expect(throws: GzipError.self) { try writer.write([1]) }
    }
}
