#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file written under a temporary name in its final directory and renamed into place on `commit`, so
/// readers never see a partial file. Temporary files still open when the process is interrupted are removed by
/// `TemporaryFiles.removeAllAndExit` (the signal handler's).
///
/// The temporary file is created exclusively (`O_EXCL | O_NOFOLLOW`) under an unpredictable name, so nobody who can
/// write the directory can plant a link there that makes this process write elsewhere. The final path must be
/// new or a regular file: a symbolic link, device, FIFO or socket there is refused, as is the source database (see
/// `ProtectedFiles`). A file already at the final path is kept aside until the whole export has succeeded, and put
/// back if it fails (`TemporaryFiles.commit`).
public final class AtomicFile {
    public let path: String
    public private(set) var temporaryPath: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    // Writers hand over large pieces (a row group, a compressed block): a small buffer only gathers the crumbs.
    private let bufferLimit = 256 << 10
    public private(set) var bytesWritten: Int64 = 0

    public init(path: String) throws {
        guard !path.isEmpty else { throw ExportError(.usage, "output path is empty") }
        self.path = path
        let directory = Self.directory(of: path)
        try Self.checkTarget(path)
        TemporaryFiles.shared.removeStale(in: directory)
        (temporaryPath, descriptor) = TemporaryFiles.shared.createFile(in: directory)
        guard descriptor >= 0 else {
            throw ExportError(.outputFailed, "\(path): cannot create (\(String(cString: strerror(-descriptor))))")
        }
        buffer.reserveCapacity(bufferLimit)
    }

    /// The directory a path's file is in ("." for a bare name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Refuses a final path that must not be renamed over: the source database, or anything but a regular file.
    static func checkTarget(_ path: String) throws {
        try ProtectedFiles.shared.check(path)
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        let kind: String
        switch info.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a directory"
        case S_IFLNK: kind = "a symbolic link (give the path it points to)"
        case S_IFCHR, S_IFBLK: kind = "a device"
        case S_IFIFO: kind = "a FIFO"
        default: kind = "a socket"
        }
        throw ExportError(.outputFailed, "\(path): is \(kind); outputs are written as regular files only")
    }

    deinit {
        if descriptor >= 0 { discard() }
    }
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > bufferLimit { try flush() }
        if bytes.count >= bufferLimit {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += Int64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// A closure for format writers that take their output as a function.
    public var output: (UnsafeRawBufferPointer) throws -> Void { { [unowned self] in try self.write($0) } }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        if let code = writeFully(descriptor, bytes) {
            throw ExportError(.outputFailed, "\(path): write failed (\(String(cString: strerror(code))))")
        }
    }

    /// Writes out what is buffered and gives the buffer's memory back: for a file that is complete but held back
    /// until the whole export succeeds (an export of many tables would otherwise keep a buffer per file).
    public func settle() throws {
        do {
            try flush()
        } catch {
            discard()
            throw error
        }
        buffer = []
    }

    /// Flushes, syncs and closes the temporary file: after this only the rename is left, which needs no space.
    public func prepare() throws {
        guard descriptor >= 0 else { return }
        do {
            try flush()
            guard fsync(descriptor) == 0 || errno == EINVAL else {
                throw ExportError(.outputFailed, "\(path): sync failed (\(String(cString: strerror(errno))))")
            }
            let closed = close(descriptor)
            descriptor = -1
            guard closed == 0 else {
                throw ExportError(.outputFailed, "\(path): close failed (\(String(cString: strerror(errno))))")
            }
        } catch {
            discard()
            throw error
        }
    }

    /// Renames the prepared file into place. Inside `TemporaryFiles.commit` the file it replaces is kept aside until
    /// the whole commit has succeeded; alone, it is a commit of its own.
    public func moveIntoPlace() throws {
        try TemporaryFiles.shared.commit {
            try Self.checkTarget(path)
            let failure = TemporaryFiles.shared.replace(path, with: temporaryPath)
            guard failure == 0 else {
                discard()
                throw ExportError(.outputFailed, "\(path): cannot rename into place (\(String(cString: strerror(failure))))")
            }
        }
    }

    /// Prepares and renames: the file appears complete or not at all.
    public func commit() throws {
        try prepare()
        try moveIntoPlace()
    }

    /// Closes and deletes the temporary file; the final path is untouched.
    public func discard() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        unlink(temporaryPath)
        TemporaryFiles.shared.unregister(temporaryPath)
    }
}


/// Temporary output files in flight, the output directories this export created, and the files a commit replaced,
/// so that a failed or interrupted export can remove what it made and put back what it replaced before the process
/// exits.
///
/// Files and directories are created, and files renamed into place, under the registry's lock, and an interrupt
/// cleans up and exits while holding it: any such step either happened before (and is undone) or waits until the
/// process is gone.
///
/// Temporary names are `.parsl-export-<pid>@<host>-<random>.tmp`: recognisable, unpredictable, and telling which
/// process made them, so that an export into a directory first removes those of processes on this host that are
/// gone (killed with SIGKILL, or the machine went down), when they belong to this user.
public final class TemporaryFiles: Sendable {
    public static let shared = TemporaryFiles()

    static let prefix = ".parsl-export-"
    static let suffix = ".tmp"

    /// A file renamed into place by the commit in progress, and where the file it replaced was kept (nil: none).
    private struct Replaced {
        var path: String
        var keptAside: String?
    }

    private struct State {
        var files: Set<String> = []
        var directories: [String] = []
        var replaced: [Replaced] = []
        var commitDepth = 0
        var swept: Set<String> = []
    }

    private let state = Locked(State())

    /// For tests: renaming a file to this path fails with EIO (a rename that fails at commit time for
    /// real needs an immutable file or a lost NFS handle).
    let renameFailsForTesting = Locked<String?>(nil)

    /// This process's part of a temporary name: `<pid>@<host>`.
    static let owner: String = {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let safe = host.unicodeScalars.prefix(64).map { scalar -> Character in
            scalar.properties.isAlphabetic && scalar.isASCII || ("0"..."9").contains(scalar) || scalar == "." ? Character(scalar) : "_"
        }
        return "\(getpid())@\(String(safe))"
    }()

    static func temporaryName() -> String {
        prefix + owner + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 16) + suffix
    }

    /// Creates a new temporary file in `directory`, exclusively and never through a link; its path and descriptor,
    /// or minus the errno.
    func createFile(in directory: String) -> (String, Int32) {
        state.withLock { state in
            while true {
                let path = directory + "/" + Self.temporaryName()
                let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                if descriptor < 0 && errno == EEXIST { continue }
                guard descriptor >= 0 else { return (path, -errno) }
                state.files.insert(path)
                return (path, descriptor)
            }
        }
    }

    /// Creates a directory; 0, or the errno.
    func makeDirectory(_ path: String) -> Int32 {
        state.withLock { state in
            guard mkdir(path, 0o755) == 0 else { return errno }
            state.directories.append(path)
            return 0
        }
    }

    /// The file was renamed into place or deleted.
    func unregister(_ path: String) { state.withLock { _ = $0.files.remove(path) } }

    /// Renames `temporary` over `path`, keeping a file already there aside (a hard link, which costs no space) so
    /// a failed commit can put it back. 0, or the errno.
    func replace(_ path: String, with temporary: String) -> Int32 {
        state.withLock { state in
            var keptAside: String?
            while true {
                let aside = AtomicFile.directory(of: path) + "/" + Self.temporaryName()
                if link(path, aside) == 0 {
                    keptAside = aside
                    break
                }
                if errno == EEXIST { continue }
                if errno == ENOENT { break }
                // A file system without hard links: move the old file aside instead (briefly, no file is there).
                guard rename(path, aside) == 0 else { return errno == ENOENT ? 0 : errno }
                keptAside = aside
                break
            }
            let injected = renameFailsForTesting.withLock { $0 == path }
            guard !injected, rename(temporary, path) == 0 else {
                let failure = injected ? EIO : errno
                if let keptAside {
                    if access(path, F_OK) == 0 { unlink(keptAside) } else { rename(keptAside, path) }
                }
                return failure
            }
            state.files.remove(temporary)
            state.replaced.append(Replaced(path: path, keptAside: keptAside))
            return 0
        }
    }

    /// Runs `body`, which renames outputs into place, as one commit: if it throws (or the process is interrupted
    /// meanwhile), every file it renamed into place is removed and every file it replaced is put back. Commits
    /// nest; the outermost one decides.
    public func commit<T>(_ body: () throws -> T) throws -> T {
        state.withLock { $0.commitDepth += 1 }
        do {
            let value = try body()
            state.withLock { state in
                state.commitDepth -= 1
                guard state.commitDepth == 0 else { return }
                for replaced in state.replaced { if let aside = replaced.keptAside { unlink(aside) } }
                state.replaced = []
            }
            return value
        } catch {
            state.withLock { state in
                state.commitDepth -= 1
                Self.rollBack(&state)
            }
            throw error
        }
    }

    /// Removes, once per directory and process, the temporary files in `directory` that a process of this host,
    /// now gone, left behind (this user's only).
    func removeStale(in directory: String) {
        state.withLock { state in
            guard state.swept.insert(directory).inserted, let handle = opendir(directory) else { return }
            defer { closedir(handle) }
            let host = Self.owner.split(separator: "@", maxSplits: 1)[1]
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name.hasPrefix(Self.prefix), name.hasSuffix(Self.suffix) else { continue }
                // <pid>@<host>-<random>
                let middle = name.dropFirst(Self.prefix.count).dropLast(Self.suffix.count)
                guard let at = middle.firstIndex(of: "@"), let dash = middle.lastIndex(of: "-"), at < dash,
                    middle[middle.index(after: at)..<dash] == host, let pid = pid_t(middle[..<at]),
                    pid > 0, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
                else { continue }
                let path = directory + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid() else { continue }
                unlink(path)
            }
        }
    }

    /// Deletes every registered temporary file, undoes a commit in progress, then removes the directories the
    /// export created, deepest first, where they are empty (a directory that holds anything else is kept).
    public func removeAll() { state.withLock { Self.remove(&$0) } }

    /// `removeAll`, then `lastWords` and `_exit(code)`, without letting go of the lock in between.
    public func removeAllAndExit(_ code: Int32, lastWords: () -> Void) -> Never {
        state.withLock { state -> Never in
            Self.remove(&state)
            lastWords()
            _exit(code)
        }
    }

    private static func rollBack(_ state: inout State) {
        for replaced in state.replaced.reversed() {
            if let aside = replaced.keptAside {
                rename(aside, replaced.path)
            } else {
                unlink(replaced.path)
            }
        }
        state.replaced = []
    }

    private static func remove(_ state: inout State) {
        rollBack(&state)
        for path in state.files { unlink(path) }
        for path in state.directories.reversed() { rmdir(path) }
    }
}

/// The source database and its companion files (`-journal`, `-wal`, `-shm`), which no output may replace. Known by
/// device and inode, so another name for the same file (a hard link, a path through a symbolic link) is refused
/// too; a companion that does not exist yet is known by its directory and name.
public final class ProtectedFiles: Sendable {
    public static let shared = ProtectedFiles()

    private struct Identity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private struct Entry {
        var database: String
        var files: Set<Identity>
        /// The database's directory and the names of its companions.
        var directory: Identity?
        var names: Set<String>
    }

    private let entries = Locked([Entry]())

    /// Protects `database` and its companion files from being written over by this process.
    public func protect(database: String) {
        var entry = Entry(database: database, files: [], directory: nil, names: [])
        for suffix in ["", "-journal", "-wal", "-shm"] {
            if let identity = Self.identity(database + suffix) { entry.files.insert(identity) }
        }
        entry.directory = Self.identity(AtomicFile.directory(of: database))
        let base = database.split(separator: "/").last.map(String.init) ?? database
        entry.names = Set(["", "-journal", "-wal", "-shm"].map { base + $0 })
        entries.withLock { $0.append(entry) }
    }

    /// Throws a usage error when writing `path` would replace a protected file.
    func check(_ path: String) throws {
        let target = Self.identity(path)
        let directory = Self.identity(AtomicFile.directory(of: path))
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let database = entries.withLock { entries in
            entries.first { entry in
                target.map { entry.files.contains($0) } == true
                    || (directory != nil && directory == entry.directory && entry.names.contains(base))
            }?.database
        }
        if let database {
            throw ExportError(.usage, "\(path): is the source database \(database) or one of its files; choose another output")
        }
    }

    private static func identity(_ path: String) -> Identity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

/// Completed files of a sink, held back until the whole export has succeeded.
struct PendingFiles {
    private var files: [AtomicFile] = []

    /// Holds back a complete file; its buffer is written out now, so held files cost no memory.
    mutating func append(_ file: AtomicFile) throws {
        files.append(file)
        try file.settle()
    }

    /// Writes out every file (flush, sync, close) before any is renamed, so a full disk or a failed write leaves
    /// none of them behind.
    mutating func prepareAll() throws {
        do {
            for file in files { try file.prepare() }
        } catch {
            discardAll()
            throw error
        }
    }

    /// Renames the prepared files into place, as one commit: if one fails, the ones already renamed are removed
    /// and the files they replaced put back.
    mutating func moveAllIntoPlace() throws -> [String] {
        defer { files = [] }
        do {
            return try TemporaryFiles.shared.commit {
                for file in files { try file.moveIntoPlace() }
                return files.map(\.path)
            }
        } catch {
            for file in files { file.discard() }
            throw error
        }
    }

    mutating func discardAll() {
        for file in files { file.discard() }
        files = []
    }
}
