import CParslZstd

/// The codec libraries Parquet pages are compressed with, beyond zlib (see `GzipLibraries`).
public enum ParquetCodecLibraries {
    public static var zstdVersion: String { String(cString: ZSTD_versionString()) }
}
