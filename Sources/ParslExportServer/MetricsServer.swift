import ExpositionFormat
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ParslExport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `serve` endpoint: `GET /metrics` (text 0.0.4, or OpenMetrics 1.0 when `Accept` asks for it), `GET /` a
/// landing page, 404 for other paths. Other methods (405) and requests with a body (413) are answered by
/// `ScrapeRequestGate`, which closes the connection after them.
public final class MetricsServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = MetricsServer.defaultPort
        /// Scrapes answered at once; more get 503 with Retry-After rather than queueing up.
        public var maxConcurrentScrapes = 16
        /// Open connections kept at once: beyond it, the one idle the longest is closed (see `OpenConnections`).
        public var maxConnections = 256
        /// How long a scrape waits for a read of the rows committed before it, before taking the latest body.
        public var scrapeTimeout: Duration = .seconds(5)
        /// Connections idle this long (including clients that send a request slowly) are closed.
        public var idleTimeout: Duration = .seconds(30)
        public var databasePath = ""

        public init() {}
    }

    /// Not in Prometheus's default port allocations (the wiki list covers 9090–9999, fully allocated by 2023;
    /// exporters for internal applications should use ports outside it), below Linux's ephemeral range.
    public static let defaultPort = 19580

    public let configuration: Configuration
    public let metrics: LiveMetrics
    private let inFlight = Locked(0)

    public init(configuration: Configuration, metrics: LiveMetrics) {
        self.configuration = configuration
        self.metrics = metrics
    }

    /// Runs until SIGINT or SIGTERM, then finishes the requests in progress and returns. `onRunning` gets the
    /// bound port (useful with port 0).
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        var logger = Logger(label: "parsl-export")
        logger.logLevel = .warning
        let idle = configuration.idleTimeout.components
        let connections = OpenConnections(limit: configuration.maxConnections)
        let app = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in await self.respond(to: request) },
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [ScrapeRequestGate(connections: connections)],
                    idleTimeout: .nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "parsl-export",
                // A hard stop above the limit, for connections that are busy or within their grace (see
                // `OpenConnections`); up to it each new connection closes idle ones.
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections + 64)
            ),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        metrics.start()
        defer { metrics.stop() }
        // SIGTERM and SIGINT: stop accepting, finish the requests in progress, return.
        try await app.runService()
    }

    /// A failure to serve in words: an errno's text (e.g. "Address already in use") rather than SwiftNIO's
    /// description of its types.
    public static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return printable(String(describing: error))
    }

    /// The whole routing: two paths. Only GET and HEAD without a body get here (`ScrapeRequestGate`).
    public func respond(to request: Request) async -> Response {
        let path = request.uri.path
        guard path == "/" || path == "/metrics" else {
            return Self.text(.notFound, "404 not found: this exporter serves / and /metrics\n")
        }
        if path == "/" {
            let response = Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: landingPage())))
            // HEAD: the headers GET would send, Content-Length included, without the body.
            return request.method == .head ? response.createHeadResponse() : response
        }
        let admitted = inFlight.withLock { count -> Bool in
            guard count < configuration.maxConcurrentScrapes else { return false }
            count += 1
            return true
        }
        guard admitted else {
            var response = Self.text(.serviceUnavailable, "503 too many concurrent scrapes\n")
            response.headers[.retryAfter] = "1"
            return response
        }
        defer { inFlight.withLock { $0 -= 1 } }
        let format = ExpositionFormat.negotiate(accept: request.headers[.accept])
        let snapshot = await metrics.snapshot(timeout: configuration.scrapeTimeout)
        let response = Response(
            status: .ok, headers: [.contentType: format.contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: snapshot.body(format))))
        return request.method == .head ? response.createHeadResponse() : response
    }

    private func landingPage() -> String {
        """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>parsl-export</title></head>
        <body><h1>parsl-export</h1>
        <p>Prometheus metrics of the Parsl monitoring database <code>\(htmlEscaped(configuration.databasePath))</code>.</p>
        <p><a href="/metrics">/metrics</a> (Prometheus text 0.0.4; OpenMetrics 1.0 with <code>Accept: application/openmetrics-text</code>)</p>
        </body></html>

        """
    }

    private static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: message)))
    }
}

private func htmlEscaped(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
