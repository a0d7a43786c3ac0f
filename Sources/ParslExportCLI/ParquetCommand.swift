import ArgumentParser
import ParquetFormat
import ParslExport

/// Parquet options shared by `parquet` and `all`.
struct ParquetOptions: ParsableArguments {
    enum Codec: String, ExpressibleByArgument, CaseIterable {
        case snappy, zstd, gzip, none
    }

    @Option(help: "Page compression: snappy, zstd (level 1: about 40 % smaller, as fast), gzip (level 6) or none.")
    var compression: Codec = .snappy

    @Option(parsing: .unconditional, help: "Rows per row group (memory stays bounded by one row group per file).")
    var rowGroupSize = 128 * 1024

    func validate() throws {
        try bounded("--row-group-size", rowGroupSize, 1...(1 << 24))
    }

    func sinkOptions(directory: String) -> ParquetSink.Options {
        let codec: ParquetCompression =
            switch compression {
            case .snappy: .snappy
            // Level 1: on Parsl data as small as level 3, faster, and with half the compressor's memory.
            case .zstd: .zstd(level: 1)
            case .gzip: .gzip(level: 6)
            case .none: .none
            }
        return ParquetSink.Options(directory: directory, compression: codec, rowGroupRows: rowGroupSize)
    }
}

struct ParquetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parquet",
        abstract: "Write one Parquet file per table, typed, for pyarrow, DuckDB, polars and pandas.",
        discussion: """
            Writes <table>.parquet for workflow, task, try, status, resource, block, node and the derived \
            try_summary (an empty table gives a valid file with zero rows). Types come from the mappings: INT64, \
            DOUBLE, BOOLEAN, STRING, TIMESTAMP(MICROS) naive (UTC-adjusted with --timezone). task_depends and \
            task_joins are also written as LIST<INT64> columns named <column>_list.

            EXAMPLES
              parsl-export parquet monitoring.db -o export/
              duckdb -c "SELECT task_id FROM 'export/task.parquet' WHERE list_contains(task_depends_list, 17)"
              parsl-export parquet monitoring.db -o export/ --compression gzip --tables try_summary
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .shortAndLong, help: "Output directory (created if missing).", completion: .directory)
    var output: String
    @OptionGroup var parquet: ParquetOptions
    @OptionGroup var selection: TableSelection

    func validate() throws { try validateOutput(output) }

    func run() async throws {
        try runReportingErrors(quiet: database.quiet) {
            let tables = try selection.resolved()
            let sink = ParquetSink(options: parquet.sinkOptions(directory: output), tables: tables)
            try database.export(into: sink, tables: tables)
        }
    }
}
