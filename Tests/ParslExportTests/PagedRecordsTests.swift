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

    @Test("owners sharing a pool of three pages read back every write, and a released owner's pages are reused")
    func ownersShareOnePool() throws {
        let directory = temporaryDirectory()
        defer { removeTree(directory) }
        let pool = PagePool(recordsPerPage: 16, cachedPages: 3, empty: Record(), spillDirectory: directory, purpose: "test")
        var owners = (0..<5).map { _ in PagedRecords(pool: pool) }
        var expected = [[Record]](repeating: [Record](repeating: Record(), count: 600), count: owners.count)
        for step in 0..<30_000 {
            // Owners take turns, each near a front of its own: runs whose tasks interleave in the status table.
            let owner = step * 7 % owners.count
            let front = min(step / 40, 599)
            let index = step % 9 == 0 ? step * 7_919 % 600 : max(0, front - step * 13 % 30)
            if step % 3 != 0 {
                let value = Int64(step) * 1_000_003 + Int64(owner)
                try owners[owner].update(index) { $0.value = value; $0.tag &+= 1 }
                expected[owner][index].value = value
                expected[owner][index].tag &+= 1
            } else {
                #expect(try owners[owner].read(index) == expected[owner][index])
            }
        }
        for owner in owners.indices {
            for index in expected[owner].indices { #expect(try owners[owner].read(index) == expected[owner][index]) }
        }
        #expect(owners[0].memoryBound == 3 * 16 * MemoryLayout<Record>.stride)
        // A released owner's pages (in memory and on file) go to the next owner, which still reads empty records.
        owners.removeFirst()
        let newcomer = PagedRecords(pool: pool)
        for index in 0..<600 { #expect(try newcomer.read(index) == Record()) }
        for owner in owners.indices {
            for index in expected[owner + 1].indices {
                #expect(try owners[owner].read(index) == expected[owner + 1][index])
            }
        }
        #expect(try listDirectory(directory).isEmpty)
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
