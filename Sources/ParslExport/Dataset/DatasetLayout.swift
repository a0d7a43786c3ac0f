/// Where a dataset keeps what: `ROOT/<table>/run_id=<escaped run id>/part-0.parquet` for the tables, and
/// `_`-prefixed files beside the tables at ROOT (manifest, lock, `_SUCCESS`, staging), which every reader of
/// `ROOT/<table>` skips because it never looks outside that directory, and a reader of ROOT itself skips by the
/// Hadoop convention (names starting with `_` or `.` are not data).
public enum DatasetLayout {
    /// The partition column: the directory level under each table.
    public static let partitionColumn = "run_id"
    /// One file per run and table; a re-export replaces the whole `run_id=` directory.
    public static let partFileName = "part-0.parquet"
    public static let manifestName = "_parsl_export_manifest.json"
    public static let lockName = "_parsl_export.lock"
    public static let successName = "_SUCCESS"
    /// Prefix of the directory a run's partitions are written in before they are renamed into the tables.
    public static let stagingPrefix = "_parsl_export_staging-"

    /// `run_id=<value>` with the value escaped as Hive and Spark escape partition values.
    public static func partitionDirectory(runID: String) -> String {
        partitionColumn + "=" + escapePartitionValue(runID)
    }

    /// Hive's `FileUtils.escapePathName` (and Spark's `ExternalCatalogUtils.escapePathName`): control characters
    /// and `"#%'*/:=?\{[]^` and DEL become `%XX` (upper-case hex); everything else, non-ASCII included, stays. An
    /// empty value is Hive's default partition name.
    public static func escapePartitionValue(_ value: String) -> String {
        if value.isEmpty { return "__HIVE_DEFAULT_PARTITION__" }
        var escaped = ""
        for scalar in value.unicodeScalars {
            if scalar.value < 0x80, needsHiveEscape(UInt8(scalar.value)) {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                escaped += "%" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// The inverse of `escapePartitionValue`, as the readers decode directory names.
    public static func unescapePartitionValue(_ text: String) -> String {
        if text == "__HIVE_DEFAULT_PARTITION__" { return "" }
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "%"), index + 2 < utf8.count,
                let byte = UInt8(String(decoding: utf8[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            {
                bytes.append(byte)
                index += 3
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func needsHiveEscape(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x01...0x1F, 0x7F: true
        case UInt8(ascii: "\""), UInt8(ascii: "#"), UInt8(ascii: "%"), UInt8(ascii: "'"), UInt8(ascii: "*"),
            UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "\\"),
            UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "^"):
            true
        default: false
        }
    }
}
