#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Pages of fixed-size records for any number of `PagedRecords` (one per run, say), of which at most `cachedPages`
/// stay in memory together, whatever the number of owners; the others go to one unlinked temporary file. Evicts the
/// least recently used page, whoever owns it.
final class PagePool<Record: BitwiseCopyable> {
    let recordsPerPage: Int
    let cachedPages: Int
    private var pageBytes: Int { recordsPerPage * MemoryLayout<Record>.stride }
    private let empty: Record

    private struct Page {
        /// -1: free (its owner is gone).
        var owner: Int
        var number: Int
        var records: UnsafeMutablePointer<Record>
        var lastUse: UInt64
        var dirty: Bool
    }

    private var pages: [Page] = []
    /// Per owner, by page number: where the page is in `pages` (-1: not in memory), and where the file holds it
    /// (-1: nowhere). Arrays, not dictionaries: page numbers are dense, and this lookup runs whenever consecutive
    /// accesses change page.
    private var slotOfPage: [[Int32]] = []
    private var fileOffset: [[Int64]] = []
    private var clock: UInt64 = 0
    private let spillDirectory: String
    private let purpose: String
    private var file: Int32 = -1
    private var fileEnd: Int64 = 0
    /// File space of released owners' pages, reused before the file grows.
    private var freeOffsets: [Int64] = []

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

    /// Bytes of records held in memory at most, by all owners together.
    var memoryBound: Int { cachedPages * pageBytes }

    func addOwner() -> Int {
        slotOfPage.append([])
        fileOffset.append([])
        return slotOfPage.count - 1
    }

    /// Frees an owner's pages in memory and on file, for the owners still there.
    func release(_ owner: Int) {
        for slot in slotOfPage[owner] where slot >= 0 {
            pages[Int(slot)].owner = -1
            pages[Int(slot)].lastUse = 0
            pages[Int(slot)].dirty = false
        }
        freeOffsets += fileOffset[owner].filter { $0 >= 0 }
        slotOfPage[owner] = []
        fileOffset[owner] = []
    }

    /// Whether `slot` still holds `owner`'s page `number` (another owner's load may have evicted it).
    @inline(__always)
    func holds(_ slot: Int, owner: Int, page number: Int) -> Bool {
        slot >= 0 && pages[slot].number == number && pages[slot].owner == owner
    }

    /// The record at `offset` of the page in `slot`, marked used (and dirty when `writing`).
    @inline(__always)
    func record(in slot: Int, at offset: Int, writing: Bool) -> UnsafeMutablePointer<Record> {
        clock &+= 1
        pages[slot].lastUse = clock
        if writing { pages[slot].dirty = true }
        return pages[slot].records + offset
    }

    /// The slot holding `owner`'s page `number`, loaded (and another page evicted) when it is not in memory.
    func load(owner: Int, page number: Int) throws -> Int {
        if number >= slotOfPage[owner].count {
            let count = max(number + 1, slotOfPage[owner].count * 2)
            slotOfPage[owner] += repeatElement(-1, count: count - slotOfPage[owner].count)
            fileOffset[owner] += repeatElement(-1, count: count - fileOffset[owner].count)
        }
        if slotOfPage[owner][number] >= 0 { return Int(slotOfPage[owner][number]) }
        let slot: Int
        if pages.count < cachedPages {
            let memory = UnsafeMutablePointer<Record>.allocate(capacity: recordsPerPage)
            pages.append(Page(owner: owner, number: number, records: memory, lastUse: 0, dirty: false))
            slot = pages.count - 1
        } else {
            slot = pages.indices.min { pages[$0].lastUse < pages[$1].lastUse }!
            let victim = pages[slot]
            if victim.owner >= 0 {
                if victim.dirty {
                    var offset = fileOffset[victim.owner][victim.number]
                    if offset < 0 {
                        offset = freeOffsets.popLast() ?? fileEnd
                        if offset == fileEnd { fileEnd += Int64(pageBytes) }
                    }
                    try transfer(victim.records, offset: offset, write: true)
                    fileOffset[victim.owner][victim.number] = offset
                }
                slotOfPage[victim.owner][victim.number] = -1
            }
            // Forget the page first: if the read below fails, no stale page may be taken for this one.
            pages[slot].owner = -1
            pages[slot].dirty = false
        }
        let offset = fileOffset[owner][number]
        if offset >= 0 {
            try transfer(pages[slot].records, offset: offset, write: false)
        } else {
            pages[slot].records.initialize(repeating: empty, count: recordsPerPage)
        }
        pages[slot].owner = owner
        pages[slot].number = number
        slotOfPage[owner][number] = Int32(slot)
        return slot
    }

    private func transfer(_ records: UnsafeMutablePointer<Record>, offset: Int64, write: Bool) throws {
        if file < 0 { file = try makeUnlinkedTemporaryFile(in: spillDirectory, purpose: purpose) }
        var done = 0
        let raw = UnsafeMutableRawPointer(records)
        while done < pageBytes {
            let result =
                write
                ? pwrite(file, raw + done, pageBytes - done, off_t(offset) + off_t(done))
                : pread(file, raw + done, pageBytes - done, off_t(offset) + off_t(done))
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                throw ExportError(.outputFailed, "\(spillDirectory): temporary file: \(String(cString: strerror(errno)))")
            }
            done += result
        }
    }
}

/// Fixed-size records addressed by index, in pages of a `PagePool`: memory stays the same whatever the number of
/// records (and, with a pool shared by several, whatever their number). Meant for records visited in roughly
/// increasing index order (tasks and tries by id), where a window of recent pages is all that is touched. A record
/// never written reads as the pool's `empty`.
final class PagedRecords<Record: BitwiseCopyable> {
    private let pool: PagePool<Record>
    private let owner: Int
    private var lastPage = -1
    private var lastSlot = -1

    init(pool: PagePool<Record>) {
        self.pool = pool
        owner = pool.addOwner()
    }

    /// Records with a pool of their own.
    convenience init(recordsPerPage: Int, cachedPages: Int, empty: Record, spillDirectory: String, purpose: String) {
        self.init(
            pool: PagePool(
                recordsPerPage: recordsPerPage, cachedPages: cachedPages, empty: empty,
                spillDirectory: spillDirectory, purpose: purpose))
    }

    deinit { pool.release(owner) }

    /// Bytes of records held in memory at most (by the whole pool, when it is shared).
    var memoryBound: Int { pool.memoryBound }

    func read(_ index: Int) throws -> Record { try pointer(index, writing: false).pointee }

    func update(_ index: Int, _ body: (inout Record) -> Void) throws {
        body(&(try pointer(index, writing: true).pointee))
    }

    @inline(__always)
    private func pointer(_ index: Int, writing: Bool) throws -> UnsafeMutablePointer<Record> {
        precondition(index >= 0)
        let number = index / pool.recordsPerPage
        if number != lastPage || !pool.holds(lastSlot, owner: owner, page: number) {
            lastPage = -1
            lastSlot = try pool.load(owner: owner, page: number)
            lastPage = number
        }
        return pool.record(in: lastSlot, at: index % pool.recordsPerPage, writing: writing)
    }
}
