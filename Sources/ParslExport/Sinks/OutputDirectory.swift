#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum OutputDirectory {
    /// Creates `path` and its parents when missing; fails with an error naming it when that is impossible. What it
    /// creates is removed again if the export fails (`TemporaryFiles.removeAll`).
    static func create(_ path: String) throws {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            var info = stat()
            if stat(partial, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    throw ExportError(.outputFailed, "\(partial): exists and is not a directory")
                }
                continue
            }
            let failure = TemporaryFiles.shared.makeDirectory(partial)
            guard failure == 0 || failure == EEXIST else {
                throw ExportError(.outputFailed, "\(partial): cannot create directory (\(String(cString: strerror(failure))))")
            }
        }
        guard access(path, W_OK) == 0 else {
            throw ExportError(.outputFailed, "\(path): directory is not writable")
        }
    }
}
