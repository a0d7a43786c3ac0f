import CParslDeflate
import CParslZlib

/// The compression libraries gzip output is made with, as linked into this binary (bug reports name them).
public enum GzipLibraries {
    /// zlib's own version string (it writes the stream framing and joins the block checksums).
    public static var zlibVersion: String { String(cString: CParslZlib.zlibVersion()) }
    /// libdeflate has no run-time version call; the header it was built against names it.
    public static let libdeflateVersion = LIBDEFLATE_VERSION_STRING
}
