#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

@testable import ParslExport
@testable import ParslExportServer

/// The HTTP routes, over a real socket on 127.0.0.1 (port chosen by the system).
@Suite(.serialized)
struct MetricsServerTests {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// A minimal HTTP/1.1 client: one request, `Connection: close`, read to the end.
    static func request(_ port: Int, _ method: String, _ path: String, accept: String? = nil) throws -> Reply {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let accept { text += "Accept: \(accept)\r\n" }
        text += "\r\n"
        // A scrape waits for a read in progress (the initial one, too), which takes long under ThreadSanitizer
        // while other suites run: give the answer a minute rather than fail on a slow machine.
        let (response, closed) = try exchange(port, text, wait: 60)
        guard closed else { throw ClientError() }
        return try parse(response)
    }

    /// A TCP connection to 127.0.0.1:`port`; the caller closes it.
    static func connection(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw ClientError()
        }
        return fd
    }

    /// Sends `text` as it is and reads until the server closes the connection (closed), or until nothing has come
    /// for `wait` seconds (not closed).
    static func exchange(_ port: Int, _ text: String, wait: Int = 10) throws -> (response: String, closed: Bool) {
        let fd = try connection(port)
        defer { close(fd) }
        var timeout = timeval(tv_sec: wait, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = text.withCString { send(fd, $0, strlen($0), 0) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var closed = true
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { closed = false }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return (String(decoding: bytes, as: UTF8.self), closed)
    }

    /// Sends one request, reads its whole answer (headers and Content-Length bytes, waiting up to a minute), then
    /// whether the connection is still open one second later.
    static func keptAliveExchange(_ port: Int, _ text: String) throws -> (response: String, openAfterwards: Bool) {
        let fd = try connection(port)
        defer { close(fd) }
        func receiveTimeout(_ seconds: Int) {
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        receiveTimeout(60)
        _ = text.withCString { send(fd, $0, strlen($0), 0) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func complete() -> Bool {
            let response = String(decoding: bytes, as: UTF8.self)
            guard let reply = try? parse(response), let length = reply.headers["content-length"].flatMap(Int.init)
            else { return false }
            return reply.body.utf8.count >= length
        }
        while !complete() {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { throw ClientError() }
            bytes += chunk[0..<n]
        }
        receiveTimeout(1)
        let after = recv(fd, &chunk, chunk.count, 0)
        return (String(decoding: bytes, as: UTF8.self), after < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    }

    /// The first response in `response` (status, headers, and the rest as its body).
    static func parse(_ response: String) throws -> Reply {
        guard let split = response.firstRange(of: "\r\n\r\n") else { throw ClientError() }
        let head = response[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(head.first?.split(separator: " ")[1] ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingPrefix(" ").description
            }
        }
        return Reply(status: status, headers: headers, body: String(response[split.upperBound...]))
    }

    struct ClientError: Error {}

    /// Runs a server on the fixture database for `body`, then shuts it down by cancellation.
    static func withServer(_ body: (Int) throws -> Void) async throws {
        let live = try LiveMetrics(configuration: .init(path: Fixtures.htex2026), options: PrometheusOptions())
        var configuration = MetricsServer.Configuration()
        configuration.port = 0
        configuration.databasePath = "<db & path>"
        let server = MetricsServer(configuration: configuration, metrics: live)
        let port = Mutex(0)
        let task = Task { try await server.run { bound in port.withLock { $0 = bound } } }
        for _ in 0..<500 where port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        let bound = port.withLock { $0 }
        try #require(bound != 0)
        // Wait for the initial read; a server that never finishes it fails here rather than in a later check.
        var initialReadDone = false
        for _ in 0..<500 {
            if try request(bound, "GET", "/metrics").body.contains("\nparsl_export_initial_read_done 1\n") {
                initialReadDone = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        try #require(initialReadDone, "the initial read did not finish within 5 s")
        try body(bound)
        task.cancel()
        _ = await task.result
    }

    @Test func routesAnswerWithTheRightStatusAndContentType() async throws {
        try await Self.withServer { port in
            let text = try Self.request(port, "GET", "/metrics")
            #expect(text.status == 200)
            #expect(text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(text.body.contains("\nparsl_tasks{app=\"sleep_task\",state=\"exec_done\"} "))
            #expect(text.body.contains("# TYPE parsl_tries_total counter") && !text.body.contains("# EOF"))
            #expect(text.body.contains("parsl_export_initial_read_done 1\n"))

            let om = try Self.request(port, "GET", "/metrics", accept: "application/openmetrics-text;version=1.0.0;q=0.9,*/*;q=0.1")
            #expect(om.status == 200)
            #expect(om.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8")
            #expect(om.body.hasSuffix("# EOF\n") && om.body.contains("# TYPE parsl_tries counter"))

            let landing = try Self.request(port, "GET", "/")
            #expect(landing.status == 200 && landing.headers["content-type"] == "text/html; charset=utf-8")
            #expect(landing.body.contains("href=\"/metrics\"") && landing.body.contains("&lt;db &amp; path&gt;"))

            #expect(try Self.request(port, "GET", "/nothing").status == 404)
            #expect(try Self.request(port, "GET", "/metrics/../../etc/passwd").status == 404)
            let post = try Self.request(port, "POST", "/metrics")
            #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD")
            #expect(try Self.request(port, "DELETE", "/").status == 405)
            let head = try Self.request(port, "HEAD", "/metrics")
            #expect(head.status == 200 && head.body.isEmpty)
        }
    }

    /// Only bodiless GET and HEAD reach the routes; anything else is answered and its connection closed at once, so
    /// a client trickling a body cannot hold a connection and a response to CONNECT (sent without a length) ends.
    @Test func requestsThatAreNotScrapesAreAnsweredThenClosed() async throws {
        try await Self.withServer { port in
            let connect = try Self.exchange(port, "CONNECT /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let connectReply = try Self.parse(connect.response)
            #expect(connect.closed && connectReply.status == 405 && connectReply.headers["allow"] == "GET, HEAD")
            #expect(connectReply.headers["connection"] == "close")

            // The body's first byte only: the server must not wait for the rest (the idle timeout is 30 s).
            let post = try Self.exchange(
                port, "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\na", wait: 5)
            #expect(post.closed && post.response.hasPrefix("HTTP/1.1 405 "))
            #expect(try Self.parse(post.response).body == "405 method not allowed: use GET\n")

            let get = try Self.exchange(
                port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\na", wait: 5)
            #expect(get.closed && get.response.hasPrefix("HTTP/1.1 413 "))

            // Pipelined: the scrapes before the refused request are answered first, in order.
            let pipelined = try Self.exchange(
                port,
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    + "DELETE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", wait: 5)
            let text = pipelined.response
            let statuses = text.ranges(of: "HTTP/1.1 ").map { text[$0.upperBound...].prefix(3) }
            #expect(pipelined.closed && statuses == ["200", "404", "405"])

            // After an upgrade request NIO parses nothing more: it is answered, with Connection: close, then closed.
            let upgrade = try Self.exchange(
                port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                wait: 5)
            let upgradeReply = try Self.parse(upgrade.response)
            #expect(upgrade.closed && upgradeReply.status == 200 && upgradeReply.headers["connection"] == "close")

            // A scrape keeps its connection: once its whole answer is in, the connection is still open a second
            // later. (The answer waits for a fresh read, slow under a sanitizer on a loaded machine.)
            let keptAlive = try Self.keptAliveExchange(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(keptAlive.openAfterwards && keptAlive.response.hasPrefix("HTTP/1.1 200 "))
            let closing = try Self.keptAliveExchange(
                port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            #expect(!closing.openAfterwards && closing.response.hasPrefix("HTTP/1.1 200 "))
        }
    }

    @Test func scrapesWaitForAReadThatStartedAfterThem() async throws {
        let live = try LiveMetrics(
            configuration: .init(path: Fixtures.htex2026), options: PrometheusOptions(), interval: .seconds(3600))
        live.start()
        defer { live.stop() }
        // Before the first read ends a scrape answers at once; then each scrape triggers a read of its own.
        for _ in 0..<500 where !live.current.initialReadDone { try await Task.sleep(for: .milliseconds(10)) }
        try #require(live.current.initialReadDone, "the initial read did not finish within 5 s")
        let first = live.current.read
        let snapshot = await live.snapshot(timeout: .seconds(10))
        #expect(snapshot.read > first)
        #expect(snapshot.databaseUp)
        let next = await live.snapshot(timeout: .seconds(10))
        #expect(next.read > snapshot.read)
    }
}
