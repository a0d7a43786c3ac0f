/// The documented output schema, generated from Mappings/ (`parsl-export schema`).
public enum SchemaDocument {
    public static func render(_ catalog: MappingCatalog, markdown: Bool) -> String {
        var out: [String] = []
        if markdown {
            out.append("# parsl-export output schema (mappings version \(catalog.version))")
            out.append("")
            out.append(conventions.map { "- " + $0 }.joined(separator: "\n"))
        } else {
            out.append("parsl-export output schema (mappings version \(catalog.version))")
            out.append("")
            out.append(conventions.map { "* " + $0 }.joined(separator: "\n"))
        }
        for name in catalog.tableNames {
            guard let mapping = catalog.mapping(for: name) else { continue }
            out.append("")
            if markdown {
                out.append("## \(name)\(mapping.derived == true ? " (derived)" : "")")
                out.append("")
                out.append(mapping.meaning)
                out.append("")
                out.append("| column | type | nullable | Parsl versions | meaning |")
                out.append("| --- | --- | --- | --- | --- |")
                for column in mapping.columns {
                    let meaning = column.meaning + (column.normalise.map { " Normalised: \(catalog.index.normalisations[$0] ?? $0)" } ?? "")
                    out.append("| `\(column.name)` | \(column.type.rawValue) | \(column.nullable ? "yes" : "no") | \(versions(column)) | \(meaning.replacing("|", with: "\\|")) |")
                }
            } else {
                out.append("\(name)\(mapping.derived == true ? " (derived)" : ""): \(mapping.meaning)")
                for column in mapping.columns {
                    out.append("  \(column.name.padding(44)) \(column.type.rawValue.padding(9)) \(column.nullable ? "null    " : "not null") \(versions(column).padding(20)) \(column.meaning)")
                }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func versions(_ column: TableMapping.Column) -> String {
        switch (column.since, column.until) {
        case (let since?, let until?): "\(since) – before \(until)"
        case (let since?, nil): "\(since) +"
        case (nil, let until?): "before \(until)"
        case (nil, nil): "all"
        }
    }

    /// How values are written, per format; shown before the tables.
    public static let conventions: [String] = [
        "Column names are Parsl's own; derived tables and columns have names of their own.",
        "Columns a database's schema era lacks are exported as NULL when Parsl still writes them today, and left out when Parsl has since dropped them; columns not in the mappings pass through as text.",
        "timestamp: Parsl writes naive local time of the writing host. Exported as is (naive) unless --timezone ZONE is given, then converted to UTC. CSV: `YYYY-MM-DD HH:MM:SS.ffffff`; Parquet: INT64 TIMESTAMP(MICROS, isAdjustedToUTC=false, or true with --timezone). A value that does not parse is reported and exported as NULL.",
        "int64: CSV decimal digits; Parquet INT64. float64: CSV the shortest text that reads back as the same double (`0.1`, `1.0`, `1e-05`; `inf`, `-inf`, `nan`), nothing rounded; Parquet DOUBLE.",
        "bool: CSV `true`/`false`; Parquet BOOLEAN.",
        "id-list: comma-separated task ids exactly as in the source (`''` when none). Parquet adds a `<name>_list` LIST<INT64> column.",
        "NULL: an empty CSV field; a Parquet null. Parsl's own empty markers ('' and the text 'None') are kept as they are.",
        "CSV: RFC 4180, UTF-8, CRLF, header row; text (header names included) starting with = + - @ TAB or CR gets a leading ' unless --raw (spreadsheet formula safety); numbers are never altered. --bom starts each file with a UTF-8 byte-order mark for Excel.",
    ]
}
