#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import ParslExport
import ParslExportServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve live Prometheus metrics of a database over HTTP (/metrics).",
        discussion: """
            Follows the database while Parsl writes it: each scrape first reads the rows committed since the last \
            read (rowid high-water marks, short read transactions on a thread of their own), so it shows every row \
            committed before it, and Parsl's writer is never held up for more than a few milliseconds. If the file \
            is locked, missing or replaced, /metrics keeps the last good values with parsl_export_database_up 0 \
            and recovers by itself; a replaced file is read from the start. Until the first full read has \
            finished, parsl_export_initial_read_done is 0.

            GET /metrics answers Prometheus text 0.0.4, or OpenMetrics 1.0 when the Accept header asks for \
            application/openmetrics-text (Prometheus does). GET / is a landing page. Other paths get 404, other \
            methods 405; scrapes beyond --max-scrapes at once get 503. SIGINT/SIGTERM finish the requests in \
            progress and exit 0.

            The default port, \(MetricsServer.defaultPort), is outside Prometheus's default port allocation \
            list (9090-9999, allocated to public exporters; the exporter guide asks other exporters to stay \
            out of it). It binds 127.0.0.1 unless --listen says otherwise.

            With --latest it follows the newest run: when a new run appears in the \
            file, the metrics start over for it. Each change is logged on stderr \
            with a UTC timestamp: the file becoming readable or not, runs \
            appearing and completing, the file being replaced.

            \(PrometheusMetricOptions.familiesHelp)

            \(PrometheusMetricOptions.manyRunsHelp)

            EXAMPLES
              parsl-export serve runinfo/monitoring.db
              parsl-export serve runinfo/monitoring.db --latest --labels app,run_id
              curl -s http://127.0.0.1:\(MetricsServer.defaultPort)/metrics
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Address and port to listen on (HOST:PORT, [IPv6]:PORT, or PORT for 127.0.0.1).")
    var listen = "127.0.0.1:\(MetricsServer.defaultPort)"
    @OptionGroup var metrics: PrometheusMetricOptions
    @Option(parsing: .unconditional, help: "Seconds between reads when nobody scrapes (0.01 to 86400).")
    var interval: Double = 5
    @Option(parsing: .unconditional, help: "Seconds a scrape waits for its read before taking the latest values (0.01 to 3600).")
    var scrapeTimeout: Double = 5
    @Option(parsing: .unconditional, help: "Scrapes answered at once; more get 503 (1 to 1024).")
    var maxScrapes = 16

    func validate() throws {
        _ = try Self.parseListen(listen)
        try bounded("--interval", interval, 0.01...86_400)
        try bounded("--scrape-timeout", scrapeTimeout, 0.01...3_600)
        try bounded("--max-scrapes", maxScrapes, 1...1_024)
    }

    func run() async throws {
        let options = try metrics.resolved()
        let (host, port) = try Self.parseListen(listen)
        do {
            try database.checkImmutable()
        } catch let error as ExportError {
            Console.error("parsl-export: \(error.message)")
            throw ExitCode(error.code.rawValue)
        }
        if Self.isWildcard(host) && !quiet {
            Console.error(
                "parsl-export: warning: listening on every interface (\(host)); the metrics name hosts, users and apps: "
                    + "firewall the port or bind 127.0.0.1")
        }
        var collector = MetricsCollector.Configuration(request: try database.request())
        collector.busyTimeoutMilliseconds = min(database.reading.busyTimeout, 1_000)
        let live: LiveMetrics
        do {
            live = try LiveMetrics(
                configuration: collector, options: options, interval: .milliseconds(Int64(interval * 1000)),
                log: { line in if !quiet { Console.error("\(Self.timestamp()) parsl-export: \(line)") } })
        } catch let error as ExportError {
            Console.error("parsl-export: \(error.message)")
            throw ExitCode(error.code.rawValue)
        }
        var server = MetricsServer.Configuration()
        server.host = host
        server.port = port
        server.maxConcurrentScrapes = maxScrapes
        server.scrapeTimeout = .milliseconds(Int64(scrapeTimeout * 1000))
        server.databasePath = database.database
        Interrupts.standDown()
        do {
            try await MetricsServer(configuration: server, metrics: live).run { bound in
                if !quiet {
                    Console.error("\(Self.timestamp()) parsl-export: serving \(printable(database.database)) on \(Self.url(host: host, port: bound))")
                }
            }
        } catch {
            Console.error("parsl-export: cannot listen on \(listen): \(MetricsServer.describe(error))")
            throw ExitCode(ExportError.Code.outputFailed.rawValue)
        }
    }

    /// UTC time of a log line, ISO 8601 to the millisecond.
    static func timestamp() -> String {
        let micros = ExporterStatus.wallClockMicros()
        var seconds = time_t(micros / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(micros / 1_000 % 1_000)
        let fraction = String(millis + 1_000).dropFirst()
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }

    private var quiet: Bool { database.quiet }

    /// The /metrics URL; an IPv6 address goes in brackets.
    static func url(host: String, port: Int) -> String {
        "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/metrics"
    }

    /// Addresses that accept connections from every interface.
    static func isWildcard(_ host: String) -> Bool { ["0.0.0.0", "::", "0:0:0:0:0:0:0:0", "*"].contains(host) }

    static func parseListen(_ text: String) throws -> (String, Int) {
        var host = "127.0.0.1"
        var portText = text
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = String(text[text.index(after: close)...].dropFirst())
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw ValidationError("--listen: expected HOST:PORT, [IPv6]:PORT or PORT, got '\(text)'")
        }
        return (host, port)
    }
}
