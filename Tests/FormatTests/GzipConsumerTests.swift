import GzipStream
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real consumers read what the writer produces: gzip, zcat, Python's gzip module. A missing tool fails the
/// test rather than skipping it.
@Suite(.serialized)
struct GzipConsumerTests {
    @Test func gzipZcatAndPythonReadTheOutput() throws {
        let directory = try ScratchFiles.makeDirectory("gzip-consumers")
        defer { ScratchFiles.remove(directory) }
        let input = GzipTestInput.csvLike.bytes(count: 3_000_000)
        try ScratchFiles.write("\(directory)/data.csv", input)
        try ScratchFiles.write("\(directory)/data.csv.gz", try gzipWithWriter(input, threads: 2))

        #expect(ScratchFiles.shell("gzip -t '\(directory)/data.csv.gz'") == 0)
        #expect(ScratchFiles.shell("zcat '\(directory)/data.csv.gz' > '\(directory)/zcat.out'") == 0)
        #expect(try ScratchFiles.read("\(directory)/zcat.out") == input)
        let python = """
            import gzip, sys
            with gzip.open(sys.argv[1], 'rb') as f: got = f.read()
            with open(sys.argv[2], 'rb') as f: want = f.read()
            sys.exit(0 if got == want else 3)
            """
        #expect(ScratchFiles.shell("python3 -c \"\(python)\" '\(directory)/data.csv.gz' '\(directory)/data.csv'") == 0)
    }

    struct WriteFailed: Error {
        var code: Int32
    }

    @Test(.timeLimit(.minutes(1)))
    func aFullDiskSurfacesAsTheWriteError() throws {
        // /dev/full fails every write with ENOSPC: the error must come out of the writer as the closure threw it.
        let fd = open("/dev/full", O_WRONLY)
        try #require(fd >= 0, "cannot open /dev/full")
        defer { close(fd) }
        let writer = try GzipWriter(threads: 2, blockSize: 32 << 10) { buffer in
            if write(fd, buffer.baseAddress, buffer.count) < 0 { throw WriteFailed(code: errno) }
        }
        let error = #expect(throws: WriteFailed.self) {
            try writer.write(GzipTestInput.random.bytes(count: 1 << 20))
            try writer.finish()
        }
        #expect(error?.code == ENOSPC)
    }

    @Test func level6IsNoLargerThanGzip() throws {
        let directory = try ScratchFiles.makeDirectory("gzip-size")
        defer { ScratchFiles.remove(directory) }
        let input = GzipTestInput.csvLike.bytes(count: 8_000_000, seed: 3)
        try ScratchFiles.write("\(directory)/data.csv", input)
        #expect(ScratchFiles.shell("gzip -6 -n -k '\(directory)/data.csv'") == 0)
        let reference = try ScratchFiles.read("\(directory)/data.csv.gz").count
        let ours = try gzipWithWriter(input, threads: 2).count
        let ratio = Double(ours) / Double(reference)
        // Independent blocks lose the matches across block edges; libdeflate's parsing must win that back.
        #expect(ratio <= 1.0, "ours \(ours) bytes vs gzip -6 \(reference) bytes")
    }
}
