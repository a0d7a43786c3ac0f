import ArgumentParser
import GzipStream
import ParslExport

/// CSV options shared by `csv` and `all`.
struct CSVOptions: ParsableArguments {
    @Flag(help: "Plain files instead of gzipped ones (.csv, not .csv.gz).")
    var noGzip = false

    @Option(parsing: .unconditional, help: "gzip level, 0 (store) to 9 (smallest).")
    var level: Int32 = 6

    @Flag(help: "Start each file with a UTF-8 byte-order mark (Excel needs it to read UTF-8).")
    var bom = false

    @Flag(help: "Write text exactly; do not neutralise values a spreadsheet would run as formulas.")
    var raw = false

    @Option(parsing: .unconditional, help: "Compression threads (default: all cores).")
    var threads: Int = GzipWriter.defaultThreadCount

    func validate() throws {
        try bounded("--level", level, 0...9)
        try bounded("--threads", threads, 1...maxThreads)
    }

    func sinkOptions(directory: String) -> CSVSink.Options {
        CSVSink.Options(directory: directory, gzip: !noGzip, level: level, byteOrderMark: bom, raw: raw, threads: threads)
    }
}

/// `--tables` as a set, checked against the mappings.
struct TableSelection: ParsableArguments {
    @Option(
        name: .customLong("tables"),
        help: "Only these tables, comma-separated (default: workflow,task,try,status,resource,block,node,try_summary)."
    )
    var tables: [String] = []

    func resolved() throws -> Set<String> {
        let known = try MappingCatalog.embedded().tableNames
        let names = tables.flatMap { $0.split(separator: ",").map(String.init) }
        if names.isEmpty { return Set(known) }
        for name in names where !known.contains(name) {
            throw ValidationError("unknown table '\(name)' (known: \(known.joined(separator: ", ")))")
        }
        return Set(names)
    }
}

struct CSVCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csv",
        abstract: "Write one gzip-compressed CSV file per table, for spreadsheets and pandas.",
        discussion: """
            Writes <table>.csv.gz for workflow, task, try, status, resource, block, node and the derived \
            try_summary (a header row even when a table is empty). RFC 4180 with CRLF line ends, UTF-8; NULL is an \
            empty field; timestamps as YYYY-MM-DD HH:MM:SS.ffffff. Text a spreadsheet would run as a formula (leading \
            = + - @ TAB CR) gets a leading ' unless --raw. Files appear only when complete.

            EXAMPLES
              parsl-export csv monitoring.db -o export/
              parsl-export csv monitoring.db -o export/ --tables task,try_summary --latest
              parsl-export csv monitoring.db -o export/ --no-gzip --raw
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .shortAndLong, help: "Output directory (created if missing).", completion: .directory)
    var output: String
    @OptionGroup var csv: CSVOptions
    @OptionGroup var selection: TableSelection

    func validate() throws { try validateOutput(output) }

    func run() async throws {
        try runReportingErrors(quiet: database.quiet) {
            let tables = try selection.resolved()
            let sink = CSVSink(options: csv.sinkOptions(directory: output), tables: tables)
            try database.export(into: sink, tables: tables)
        }
    }
}
