import Testing

@testable import ParslExport

@Suite("Paged records")
struct PagedRecordsTests {
    struct Record: Equatable {
        var value: Int64 = -1
        var tag: UInt8 = 0
    }

    @Test("a small window of pages over a temporary file reads back every write, in any order")
    func matchesAnArray() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let records = PagedRecords(recordsPerPage: 16, cachedPages: 3, empty: Record(), spillDirectory: directory, purpose: "test")
        var expected = [Record](repeating: Record(), count: 5_000)
        for step in 0..<40_000 {
            // Mostly near a moving front, every tenth access far behind it: the pattern of tasks and late retries.
            let front = min(step / 8, expected.count - 1)
            let index = step % 10 == 0 ? step * 7_919 % expected.count : max(0, front - step * 31 % 40)
            if step % 3 != 0 {
                let value = Int64(step) * 1_000_003
                try records.update(index) { $0.value = value; $0.tag &+= 1 }
                expected[index].value = value
                expected[index].tag &+= 1
            } else {
                #expect(try records.read(index) == expected[index])
            }
        }
        for index in expected.indices { #expect(try records.read(index) == expected[index]) }
        // The temporary file was unlinked at once: nothing is left in the directory.
        #expect(try listDirectory(directory).isEmpty)
        #expect(records.memoryBound == 3 * 16 * MemoryLayout<Record>.stride)
    }

    @Test("an unwritable spill directory is an output error naming it, not a crash")
    func unwritableDirectory() throws {
        let records = PagedRecords(recordsPerPage: 4, cachedPages: 2, empty: Record(), spillDirectory: "/nonexistent/dir", purpose: "test")
        let error = #expect(throws: ExportError.self) {
            for index in 0..<64 { try records.update(index) { $0.value = Int64(index) } }
        }
        #expect(error?.message.hasPrefix("/nonexistent/dir: cannot create a temporary file") == true)
    }
}
