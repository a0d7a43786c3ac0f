#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file written under a temporary name in its final directory and renamed into place on `commit`, so
/// readers never see a partial file. Temporary files still open when the process is interrupted are removed by
/// `TemporaryFiles.removeAllAndExit` (the signal handler's).
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    // Writers hand over large pieces (a row group, a compressed block): a small buffer only gathers the crumbs.
    private let bufferLimit = 256 << 10
    public private(set) var bytesWritten: Int64 = 0

    public init(path: String) throws {
        self.path = path
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let base = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        temporaryPath = (directory.isEmpty ? "" : directory + "/") + "." + base + ".\(getpid()).tmp"
        descriptor = TemporaryFiles.shared.openFile(temporaryPath)
        guard descriptor >= 0 else {
            throw ExportError(.outputFailed, "\(path): cannot create (\(String(cString: strerror(-descriptor))))")
        }
        buffer.reserveCapacity(bufferLimit)
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
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw ExportError(.outputFailed, "\(path): write failed (\(String(cString: strerror(errno))))")
            }
            offset += n
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

    /// Renames the prepared file into place.
    public func moveIntoPlace() throws {
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            discard()
            throw ExportError(.outputFailed, "\(path): cannot rename into place (\(reason))")
        }
        TemporaryFiles.shared.unregister(temporaryPath)
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

/// Temporary output files in flight, and the output directories this export created, so that a failed or
/// interrupted export can remove them before the process exits.
///
/// Files and directories are created under the registry's lock, and an interrupt removes them and exits while
/// holding it: any creation either happened before (and is removed) or waits until the process is gone.
public final class TemporaryFiles: Sendable {
    public static let shared = TemporaryFiles()

    private struct State {
        var files: Set<String> = []
        var directories: [String] = []
    }

    private let state = Locked(State())

    /// Creates (or truncates) a temporary file for writing; its descriptor, or minus the errno.
    func openFile(_ path: String) -> Int32 {
        state.withLock { state in
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { return -errno }
            state.files.insert(path)
            return descriptor
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

    /// Deletes every registered temporary file, then the directories the export created, deepest first, where
    /// they are empty (a directory that holds anything else is kept).
    public func removeAll() { state.withLock { Self.remove($0) } }

    /// `removeAll`, then `lastWords` and `_exit(code)`, without letting go of the lock in between.
    public func removeAllAndExit(_ code: Int32, lastWords: () -> Void) -> Never {
        state.withLock { state -> Never in
            Self.remove(state)
            lastWords()
            _exit(code)
        }
    }

    private static func remove(_ state: State) {
        for path in state.files { unlink(path) }
        for path in state.directories.reversed() { rmdir(path) }
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

    /// Renames the prepared files into place; if one fails, the ones already renamed are removed too.
    mutating func moveAllIntoPlace() throws -> [String] {
        defer { files = [] }
        var renamed: [String] = []
        for file in files {
            do {
                try file.moveIntoPlace()
            } catch {
                for path in renamed { unlink(path) }
                for file in files { file.discard() }
                throw error
            }
            renamed.append(file.path)
        }
        return renamed
    }

    mutating func discardAll() {
        for file in files { file.discard() }
        files = []
    }
}
