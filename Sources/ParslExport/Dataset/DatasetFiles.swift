#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system steps of a dataset update: the lock, directories, the partition swap.
enum DatasetFiles {
    /// Takes an exclusive `flock` on `ROOT/_parsl_export.lock`; held until the process exits (or `unlock`).
    /// Without `wait`, a held lock is an error naming ROOT; with it, `waiting` is called once and the update waits.
    static func lock(root: String, wait: Bool, waiting: () -> Void) throws -> Int32 {
        let path = root + "/" + DatasetLayout.lockName
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ExportError(.outputFailed, "\(path): cannot open the dataset lock (\(String(cString: strerror(errno))))")
        }
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return descriptor }
        guard errno == EWOULDBLOCK else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw ExportError(.outputFailed, "\(path): cannot lock the dataset (\(reason))")
        }
        guard wait else {
            close(descriptor)
            throw ExportError(
                .outputFailed,
                "\(root): another parsl-export dataset is updating this dataset; run again when it has finished, or pass --wait")
        }
        waiting()
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw ExportError(.outputFailed, "\(path): cannot lock the dataset (\(reason))")
            }
        }
        return descriptor
    }

    static func unlock(_ descriptor: Int32) {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Creates one directory (its parent must exist); an existing directory is fine.
    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) == 0 || (errno == EEXIST && isDirectory(path)) { return }
        throw ExportError(.outputFailed, "\(path): cannot create directory (\(String(cString: strerror(errno))))")
    }

    /// Names in a directory, without `.` and `..`; empty when it cannot be read.
    static func entries(of path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Deletes `path` and everything under it; a missing path is fine.
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in entries(of: path) { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else {
            throw ExportError(.outputFailed, "\(to): cannot rename \(from) into place (\(String(cString: strerror(errno))))")
        }
    }

    /// Puts the directory `staged` at `target`. An existing `target` is exchanged with it in one step
    /// (`renameat2(RENAME_EXCHANGE)`), so a reader sees the old partition or the new one, never none; the old
    /// one is then at `staged`, for the caller to delete. Where the exchange is not supported, the old directory
    /// is first moved to `staged + ".old"`.
    static func swapIntoPlace(staged: String, target: String) throws {
        guard exists(target) else { return try rename(staged, target) }
        if renameExchange(staged, target) == 0 { return }
        let aside = staged + ".old"
        try rename(target, aside)
        do {
            try rename(staged, target)
        } catch {
            try? rename(aside, target)
            throw error
        }
        try rename(aside, staged)
    }

    /// Makes the renames in `directory` durable.
    static func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    /// `renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE)`; -1 where the system or file system lacks it.
    private static func renameExchange(_ from: String, _ to: String) -> Int32 {
        #if os(Linux)
        let renameExchangeFlag: UInt32 = 2
        return glibcRenameat2(AT_FDCWD, from, AT_FDCWD, to, renameExchangeFlag)
        #else
        return -1
        #endif
    }
}

#if os(Linux)
@_silgen_name("renameat2")
private func glibcRenameat2(
    _ oldDirectory: Int32, _ oldPath: UnsafePointer<CChar>, _ newDirectory: Int32, _ newPath: UnsafePointer<CChar>,
    _ flags: UInt32
) -> Int32
#endif
