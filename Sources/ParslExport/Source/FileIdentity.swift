#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file by device and inode: what a name points to can change (a database renamed over), this cannot.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    /// The file `path` names now (following links), or nil when there is none.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }
}

extension MonitoringDatabase {
    /// Fails when the path no longer names the file the export opened first: a connection opened now would read
    /// another database, and the outputs would mix the two.
    func checkSameFile() throws {
        guard let identity, FileIdentity(path: path) != identity else { return }
        throw FileIdentity.replacedError(path)
    }
}

extension FileIdentity {
    /// The error of a read that would go on in another file than the one it started in.
    static func replacedError(_ path: String) -> ExportError {
        ExportError(.inputLocked, "\(path): the file was replaced (renamed over) during the export; export it again")
    }
}
