#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Fixed-size records addressed by index, in pages of which at most `cachedPages` stay in memory; the others go to
/// an unlinked temporary file, so memory stays the same whatever the number of records. Meant for records visited
/// in roughly increasing index order (tasks and tries by id), where a window of recent pages is all that is
/// touched. A record never written reads as `empty`.
final class PagedRecords<Record: BitwiseCopyable> {
    private let recordsPerPage: Int
    private var pageBytes: Int { recordsPerPage * MemoryLayout<Record>.stride }
    private let empty: Record

    private struct Page {
        var number: Int
        var records: UnsafeMutablePointer<Record>
        var lastUse: UInt64
        var dirty: Bool
    }

    private var pages: [Page] = []
    /// By page number: where the page is in `pages` (-1: not in memory), and whether the file holds it. Arrays, not
    /// dictionaries: page numbers are dense, and this lookup runs whenever consecutive accesses change page.
    private var slotOfPage: [Int32] = []
    private var onDisk: [Bool] = []
    private var clock: UInt64 = 0
    private let cachedPages: Int
    private let spillDirectory: String
    private let purpose: String
    private var file: Int32 = -1
    private var lastPage = -1
    private var lastIndex = -1

    /// `purpose` names the temporary file (`.parsl-export-<purpose>-XXXXXX`) while it briefly has a name.
    init(recordsPerPage: Int, cachedPages: Int, empty: Record, spillDirectory: String, purpose: String) {
        self.recordsPerPage = max(recordsPerPage, 1)
        self.cachedPages = max(cachedPages, 2)
        self.empty = empty
        self.spillDirectory = spillDirectory
        self.purpose = purpose
    }

    deinit {
        for page in pages { page.records.deallocate() }
        if file >= 0 { close(file) }
    }

    /// Bytes of records held in memory at most.
    var memoryBound: Int { cachedPages * pageBytes }

    func read(_ index: Int) throws -> Record { try pointer(index, writing: false).pointee }

    func update(_ index: Int, _ body: (inout Record) -> Void) throws {
        body(&(try pointer(index, writing: true).pointee))
    }

    @inline(__always)
    private func pointer(_ index: Int, writing: Bool) throws -> UnsafeMutablePointer<Record> {
        precondition(index >= 0)
        let number = index / recordsPerPage
        if number != lastPage { try load(number) }
        clock &+= 1
        pages[lastIndex].lastUse = clock
        if writing { pages[lastIndex].dirty = true }
        return pages[lastIndex].records + index % recordsPerPage
    }

    private func load(_ number: Int) throws {
        if number >= slotOfPage.count {
            let count = max(number + 1, slotOfPage.count * 2)
            slotOfPage += repeatElement(-1, count: count - slotOfPage.count)
            onDisk += repeatElement(false, count: count - onDisk.count)
        }
        if slotOfPage[number] >= 0 {
            lastPage = number
            lastIndex = Int(slotOfPage[number])
            return
        }
        let slot: Int
        if pages.count < cachedPages {
            let memory = UnsafeMutablePointer<Record>.allocate(capacity: recordsPerPage)
            pages.append(Page(number: number, records: memory, lastUse: 0, dirty: false))
            slot = pages.count - 1
        } else {
            slot = pages.indices.min { pages[$0].lastUse < pages[$1].lastUse }!
            let victim = pages[slot]
            if victim.dirty {
                try transfer(victim.records, page: victim.number, write: true)
                onDisk[victim.number] = true
            }
            slotOfPage[victim.number] = -1
            pages[slot].number = number
            pages[slot].dirty = false
        }
        // Forget the page first: if the read below fails, no stale page may be taken for this one.
        lastPage = -1
        if onDisk[number] {
            try transfer(pages[slot].records, page: number, write: false)
        } else {
            pages[slot].records.initialize(repeating: empty, count: recordsPerPage)
        }
        slotOfPage[number] = Int32(slot)
        lastPage = number
        lastIndex = slot
    }

    private func transfer(_ records: UnsafeMutablePointer<Record>, page: Int, write: Bool) throws {
        if file < 0 {
            var template = Array((spillDirectory + "/.parsl-export-\(purpose)-XXXXXX").utf8CString)
            file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard file >= 0 else {
                throw ExportError(
                    .outputFailed,
                    "\(spillDirectory): cannot create a temporary file (\(String(cString: strerror(errno))))")
            }
            // Unlinked at once: the space returns to the system however the process ends.
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        let offset = off_t(page) * off_t(pageBytes)
        var done = 0
        let raw = UnsafeMutableRawPointer(records)
        while done < pageBytes {
            let result =
                write
                ? pwrite(file, raw + done, pageBytes - done, offset + off_t(done))
                : pread(file, raw + done, pageBytes - done, offset + off_t(done))
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                throw ExportError(.outputFailed, "\(spillDirectory): temporary file: \(String(cString: strerror(errno)))")
            }
            done += result
        }
    }
}
