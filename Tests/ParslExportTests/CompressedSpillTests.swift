import Testing

@testable import ParslExport

@Suite("Compressed spill")
struct CompressedSpillTests {
    @Test("what is written in chunks of any size comes back in order, and leaves no file behind")
    func roundTrip() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let spill = CompressedSpill(directory: directory, purpose: "test")
        // A fixed xorshift sequence: the same bytes on every run.
        var state: UInt64 = 20_261_207
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        var written: [UInt8] = []
        // Repetitive text, as trace events are, and stretches of noise that do not compress.
        for chunk in 0..<400 {
            let count = Int(next() % 40_000)
            let bytes: [UInt8] =
                chunk % 7 == 0
                ? (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
                : Array("{\"name\":\"RSS worker \(chunk)\",\"ph\":\"C\",\"ts\":\(chunk * 1_000)},\n".utf8.prefix(count))
            try bytes.withUnsafeBytes { try spill.write($0) }
            written += bytes
        }
        #expect(spill.count == Int64(written.count))
        var read: [UInt8] = []
        var chunks = 0
        try spill.drain { bytes in
            read += bytes
            chunks += 1
        }
        #expect(read == written)
        #expect(chunks > 1)
        #expect(try listDirectory(directory).isEmpty)
    }

    @Test("an empty spill hands back nothing and makes no file")
    func empty() throws {
        let spill = CompressedSpill(directory: "/nonexistent-parsl-export-directory", purpose: "test")
        var called = false
        try spill.drain { _ in called = true }
        #expect(!called)
    }

    @Test("a directory that cannot hold the file gives an output error naming it")
    func unwritableDirectory() throws {
        let spill = CompressedSpill(directory: "/nonexistent-parsl-export-directory", purpose: "test")
        let bytes = [UInt8](repeating: 65, count: 1 << 20)
        let error = #expect(throws: ExportError.self) {
            try bytes.withUnsafeBytes { try spill.write($0) }
            try spill.drain { _ in }
        }
        #expect(error?.code == .outputFailed)
        #expect(error?.message.contains("/nonexistent-parsl-export-directory") == true)
    }
}
