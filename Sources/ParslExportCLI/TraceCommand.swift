import ArgumentParser
import GzipStream
import ParslExport

extension TraceFormat: ExpressibleByArgument {}

struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Write a trace per run (Chrome JSON or Perfetto protobuf), for Perfetto (ui.perfetto.dev) and chrome://tracing.",
        discussion: """
            Each executor block is a process. Its "lane" threads hold the tries, packed into the fewest lanes \
            (slices never overlap on a lane): a try is a slice named after its app, coloured by its final state, \
            with waiting (launched → running) and running (running → returned) phases inside, status changes as \
            instants, and arrows from each dependency. Its "worker" threads show what each worker process did: \
            the execution (running → returned) of every try whose resource samples name that worker. Tries that \
            never ran have a process of their own. Resource samples become counters per worker (resident memory, \
            CPU cores in use), block lifecycles are slices on the "blocks" process, and manager snapshots are \
            counters (active managers, connected workers). A crashed run's open tries end at the last timestamp \
            in the database and are marked unfinished.

            -o: a path ending in .json, .json.gz, .pftrace or .pftrace.gz is one file (one run: use --run or \
            --latest when the database holds several); any other path is a directory that gets \
            trace-<run id>.json.gz per run (trace-<run id>.pftrace.gz with --format perfetto).

            FORMATS: the file name decides (.json → JSON, .pftrace → protobuf) unless --format says; a directory \
            gets JSON unless --format perfetto. JSON opens in chrome://tracing, Perfetto and most trace tools; use \
            it for small and medium runs. Perfetto's protobuf (TracePacket/TrackEvent) holds the same tracks, \
            slices, args, flows and counters in a fraction of the size and opens in Perfetto only; use it for \
            large runs: Perfetto's UI runs out of memory on JSON near 1 GB (some 550 000 tasks), and a \
            protobuf trace of a million tasks opens there. --max-events defaults to 5000000 for JSON and to no \
            limit for protobuf.

            Times are microseconds since the run's first event, or epoch microseconds with --absolute. --since and \
            --until take seconds after the run's first event (e.g. 90 or 12.5) or a timestamp in the database's \
            clock (e.g. "2026-11-24 23:31:00"); slices overlapping the window are kept whole.

            EXAMPLES
              parsl-export trace monitoring.db --latest -o trace.json.gz
              parsl-export trace monitoring.db -o traces/
              parsl-export trace monitoring.db --latest -o run.pftrace.gz
              parsl-export trace monitoring.db --run 1e43 -o run.json --since 60 --until 120
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(
        name: .shortAndLong,
        help: "Output: a .json, .json.gz, .pftrace or .pftrace.gz file, or a directory for one file per run.",
        completion: .file(extensions: ["json", "pftrace", "gz"])
    )
    var output: String
    @OptionGroup var layout: TraceLayoutOptions
    @Flag(help: "Uncompressed files when -o is a directory.")
    var noGzip = false
    @Option(parsing: .unconditional, help: "gzip level, 0 (store) to 9 (smallest).")
    var level: Int32 = 6
    @Option(parsing: .unconditional, help: "Compression threads (default: all cores).")
    var threads: Int = GzipWriter.defaultThreadCount

    func validate() throws {
        try validateOutput(output)
        try bounded("--level", level, 0...9)
        try bounded("--threads", threads, 1...maxThreads)
        _ = try resolvedFormat()
    }

    /// The format a file name asks for, in any case, if it names a trace file.
    static func fileFormat(_ path: String) -> TraceFormat? {
        let lowered = path.lowercased()
        return TraceFormat.allCases.first {
            lowered.hasSuffix(".\($0.fileExtension)") || lowered.hasSuffix(".\($0.fileExtension).gz")
        }
    }

    static func isFilePath(_ path: String) -> Bool { fileFormat(path) != nil }

    func resolvedFormat() throws -> TraceFormat {
        let named = Self.fileFormat(output)
        if let format = layout.format, let named, format != named {
            throw ValidationError("--format \(format.rawValue) does not match the file name \(output)")
        }
        return layout.format ?? named ?? .json
    }

    func run() async throws {
        try runReportingErrors(quiet: database.quiet) {
            let format = try resolvedFormat()
            let options = TraceSink.Options(
                output: output,
                outputIsDirectory: !Self.isFilePath(output),
                format: format,
                gzipInDirectory: !noGzip,
                gzipLevel: level,
                threads: threads,
                absoluteTime: layout.absolute,
                since: try layout.sinceBound(),
                until: try layout.untilBound(),
                maxEvents: layout.maxEvents ?? (format == .json ? TraceSink.largestOpenableJSONEvents : 0)
            )
            let sink = TraceSink(options: options)
            try database.export(into: sink, tables: [])
        }
    }
}

/// What a trace holds: the options `trace` and `all` share.
struct TraceLayoutOptions: ParsableArguments {
    @Option(help: "Trace format: json or perfetto (protobuf). Default: from the file name; JSON for a directory.")
    var format: TraceFormat?
    @Flag(help: "Epoch microseconds instead of microseconds since the run's first event.")
    var absolute = false
    @Option(parsing: .unconditional, help: "Leave out what ends before this: seconds after the run's first event, or a timestamp.")
    var since: String?
    @Option(parsing: .unconditional, help: "Leave out what starts after this: seconds after the run's first event, or a timestamp.")
    var until: String?
    @Option(
        parsing: .unconditional,
        help: "Stop with an error when a trace would hold more events than this (0: no limit). Default: for trace, 5000000 for JSON and no limit for protobuf; for all, no limit."
    )
    var maxEvents: Int?

    func validate() throws {
        if let maxEvents { try bounded("--max-events", maxEvents, 0...1_000_000_000) }
        switch (try sinceBound(), try untilBound()) {
        case (.offset(let start)?, .offset(let end)?), (.absolute(let start)?, .absolute(let end)?):
            guard start <= end else { throw ValidationError("--since \(since!) is after --until \(until!)") }
        default:
            break
        }
    }

    func sinceBound() throws -> TraceTimeBound? { try Self.bound(since, "--since") }
    func untilBound() throws -> TraceTimeBound? { try Self.bound(until, "--until") }

    /// Offsets beyond this many seconds (about 31 years) are refused: microseconds of any larger one, added to a
    /// run's origin, could overflow.
    static let largestOffsetSeconds = 1_000_000_000.0

    static func bound(_ text: String?, _ flag: String) throws -> TraceTimeBound? {
        guard let text else { return nil }
        if let seconds = Double(text), seconds.isFinite {
            guard abs(seconds) <= largestOffsetSeconds else {
                throw ValidationError("\(flag) \(text): seconds must be within ±\(Int(largestOffsetSeconds))")
            }
            return .offset(Int64((seconds * 1_000_000).rounded()))
        }
        if let parsed = Timestamp.parse(text) {
            return .absolute(parsed.wallClockMicros - Int64(parsed.offsetSeconds ?? 0) * 1_000_000)
        }
        throw ValidationError("\(flag) '\(text)' is neither seconds nor a timestamp like 2026-11-24 23:31:00")
    }
}
