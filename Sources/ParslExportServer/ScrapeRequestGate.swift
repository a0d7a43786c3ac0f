import Dispatch
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import ParslExport

/// Lets through only what a scrape is: GET or HEAD without a body. Anything else is answered here, with
/// `Connection: close`, and the connection is closed once the answer is written; Hummingbird never sees it.
///
/// Sits between the HTTP/1 codec and Hummingbird's connection handling (`additionalChannelHandlers`), because
/// the answer must end the connection, which a route cannot do:
/// - A request body would keep the connection: Hummingbird drains it after the response and restarts its idle
///   timer on every part, so a body sent a byte a second holds the connection for ever.
/// - NIO's HTTP/1 encoder sends every response to CONNECT without a body or Content-Length (it frames them all as
///   a switch to a tunnel), so only the close can tell the client where the response ends.
/// - After CONNECT or a request with `Upgrade`, NIO's decoder stops parsing and buffers whatever else arrives,
///   so such a connection can carry nothing more; an upgrade GET is answered, then closed, and nothing further
///   is read meanwhile.
/// - A request that does not keep the connection alive (HTTP/1.0 without `keep-alive`, or `Connection: close`)
///   is the last one: the connection is closed once its response is written. The HTTP version is gone after
///   the codec that turns HTTP/1 into HTTP types, so `KeepAliveMarker` sits before it and says so in a header.
/// Everything stays on the channel's event loop; one instance per connection. Each connection is known to the
/// server's `OpenConnections`, which closes idle ones when too many are open.
final class ScrapeRequestGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Reading {
        /// Requests pass.
        case open
        /// Passing the rest of the request that ends the connection.
        case lastRequest
        /// That request is complete: nothing more is read or passed.
        case ended
        /// A request was refused: nothing more is read or passed, and parse errors for it are dropped (answered).
        case refused
    }

    private var reading = Reading.open
    /// Requests passed on whose response has not ended yet (a client may send several before reading any).
    private var responsesOwed = 0
    /// The answer to the refused request, held until the responses owed before it have been written.
    private var refusal: HTTPResponse?
    private var refusalBody: ByteBuffer?
    private let connections: OpenConnections

    init(connections: OpenConnections) { self.connections = connections }

    func handlerAdded(context: ChannelHandlerContext) {
        connections.opened(context.channel)
        let pipeline = context.pipeline.syncOperations
        if let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) {
            try? pipeline.addHandler(KeepAliveMarker(), position: .before(codec))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { connections.closed(context.channel) }

    func channelInactive(context: ChannelHandlerContext) {
        connections.closed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (reading, unwrapInboundIn(data)) {
        case (.ended, _), (.refused, _):
            return
        case (.open, .head(let request)):
            if let (head, body) = Self.refusal(of: request) {
                reading = .refused
                refusal = head
                refusalBody = body
                if responsesOwed == 0 { writeRefusal(context: context) }
                return
            }
            responsesOwed += 1
            connections.busy(context.channel, true)
            if request.headerFields[.upgrade] != nil
                || request.headerFields[.connection].map({ $0.lowercased().contains("close") }) == true
            {
                reading = .lastRequest
            }
        case (.lastRequest, .end):
            reading = .ended
        default:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let closing = reading != .open
        switch unwrapOutboundIn(data) {
        case .head(var response) where closing && refusal == nil && responsesOwed == 1:
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .end where responsesOwed > 0:
            responsesOwed -= 1
            if responsesOwed == 0 { connections.busy(context.channel, false) }
            guard closing, responsesOwed == 0 else {
                context.write(data, promise: promise)
                return
            }
            if refusal != nil {
                context.write(data, promise: promise)
                writeRefusal(context: context)
            } else {
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.cascade(to: promise)
                context.writeAndFlush(data, promise: written)
                closeWhenDone(written.futureResult, context: context)
            }
        default:
            context.write(data, promise: promise)
        }
    }

    /// Once the connection is ending nothing more is read: what is sent after CONNECT or an upgrade request would
    /// only pile up in the decoder, and a refused body is not wanted.
    func read(context: ChannelHandlerContext) {
        if reading == .open || reading == .lastRequest { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The request is answered already; Hummingbird would write a second response (a 400) after it.
        if reading == .refused { return }
        context.fireErrorCaught(error)
    }

    private func writeRefusal(context: ChannelHandlerContext) {
        guard let head = refusal else { return }
        refusal = nil
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body = refusalBody { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        closeWhenDone(written.futureResult, context: context)
    }

    private func closeWhenDone(_ written: EventLoopFuture<Void>, context: ChannelHandlerContext) {
        written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// The answer to a request that is not a scrape (and whether it has a body), or nil for a scrape.
    static func refusal(of request: HTTPRequest) -> (HTTPResponse, ByteBuffer?)? {
        let status: HTTPResponse.Status
        let message: String
        var fields: HTTPFields = [.connection: "close"]
        if request.method != .get && request.method != .head {
            status = .methodNotAllowed
            message = "405 method not allowed: use GET\n"
            fields[.allow] = "GET, HEAD"
        } else if request.headerFields[.transferEncoding] != nil
            || request.headerFields[.contentLength].map({ Int($0) != 0 }) == true
        {
            status = .contentTooLarge
            message = "413 a scrape has no request body\n"
        } else {
            return nil
        }
        fields[.contentType] = "text/plain; charset=utf-8"
        fields[.contentLength] = String(message.utf8.count)
        // A response to HEAD has no body but says how long it would be; NIO drops the body and the length of a
        // response to CONNECT (see above).
        let body = request.method == .head || request.method == .connect ? nil : ByteBuffer(string: message)
        return (HTTPResponse(status: status, headerFields: fields), body)
    }
}

/// Marks a request that does not keep its connection alive (`HTTPRequestHead.isKeepAlive`: HTTP/1.0 unless it asks
/// for keep-alive, or `Connection: close`) with `Connection: close`, which the HTTP types keep.
final class KeepAliveMarker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data), !head.isKeepAlive else {
            context.fireChannelRead(data)
            return
        }
        head.headers.replaceOrAdd(name: "connection", value: "close")
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}

/// The server's open connections, so that idle ones make room when too many are open: a connection that is
/// sending no request, or only the start of one, must not keep a scrape out. While more than `limit` are open,
/// each new connection closes the ones idle the longest, provided they have been idle for `grace` (a client that
/// just connected gets that long to send its request; Prometheus reconnects for its next scrape). Connections
/// with a request in progress are never closed here.
final class OpenConnections: Sendable {
    private struct Connection {
        var channel: any Channel
        var busy: Bool
        var lastActive: UInt64
    }

    private struct State {
        var connections: [ObjectIdentifier: Connection] = [:]
        var closedForRoom = 0
        var lookAgainScheduled = false
    }

    let limit: Int
    let graceNanoseconds: UInt64
    private let state = Locked(State())

    init(limit: Int, grace: Duration = .seconds(1)) {
        self.limit = limit
        let parts = grace.components
        graceNanoseconds = UInt64(parts.seconds) * 1_000_000_000 + UInt64(parts.attoseconds / 1_000_000_000)
    }

    /// Connections closed so far to make room.
    var closedForRoom: Int { state.withLock { $0.closedForRoom } }

    func opened(_ channel: any Channel) {
        state.withLock { state in
            state.connections[ObjectIdentifier(channel)] = Connection(
                channel: channel, busy: false, lastActive: DispatchTime.now().uptimeNanoseconds)
        }
        makeRoom(on: channel.eventLoop)
    }

    /// Closes the connections idle the longest while more than `limit` are open; if some of the excess are still
    /// within their grace, looks again when it ends (accepting may have stopped at the hard limit meanwhile).
    private func makeRoom(on eventLoop: any EventLoop) {
        let (evicted, again): ([any Channel], Bool) = state.withLock { state in
            let excess = state.connections.count - limit
            guard excess > 0 else { return ([], false) }
            // Read under the lock: another event loop may have just stamped a connection with a later time than one
            // read before it, and an unsigned difference of the two would trap.
            let now = DispatchTime.now().uptimeNanoseconds
            let idle = state.connections.filter {
                !$0.value.busy && now >= $0.value.lastActive && now - $0.value.lastActive >= graceNanoseconds
            }
                .sorted { $0.value.lastActive < $1.value.lastActive }.prefix(excess)
            for (key, _) in idle { state.connections[key] = nil }
            state.closedForRoom += idle.count
            let again = idle.count < excess && !state.lookAgainScheduled
            if again { state.lookAgainScheduled = true }
            return (idle.map(\.value.channel), again)
        }
        for channel in evicted { channel.close(promise: nil) }
        if again {
            eventLoop.scheduleTask(in: .nanoseconds(Int64(graceNanoseconds))) { [self] in
                state.withLock { $0.lookAgainScheduled = false }
                makeRoom(on: eventLoop)
            }
        }
    }

    func busy(_ channel: any Channel, _ busy: Bool) {
        let now = DispatchTime.now().uptimeNanoseconds
        state.withLock { state in
            state.connections[ObjectIdentifier(channel)]?.busy = busy
            state.connections[ObjectIdentifier(channel)]?.lastActive = now
        }
    }

    func closed(_ channel: any Channel) { state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(channel)) } }
}
