import CParslSQLite
import GzipStream
import ParquetFormat

/// The C libraries compiled into this binary, for `--version`: users report bugs against them, and a packaged
/// binary carries its own copies rather than the system's.
public enum LinkedLibraries {
    public static var summary: String {
        [
            "SQLite \(String(cString: sqlite3_libversion()))",
            "zlib \(GzipLibraries.zlibVersion)",
            "zstd \(ParquetCodecLibraries.zstdVersion)",
            "libdeflate \(GzipLibraries.libdeflateVersion)",
        ].joined(separator: ", ")
    }
}
