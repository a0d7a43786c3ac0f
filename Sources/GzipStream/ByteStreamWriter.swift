/// A destination for a stream of bytes that may transform them on the way (compression) or not.
///
/// Lets a caller hold either a ``GzipWriter`` or a ``PassthroughWriter`` and write through the same calls.
/// Implementations are used from one thread at a time.
public protocol ByteStreamWriter: AnyObject {
    /// Accepts the next bytes of the stream. The buffer is only read during the call.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Ends the stream: everything still held is passed on to the output. Call it exactly once.
    func finish() throws
}

extension ByteStreamWriter {
    /// Accepts the next bytes of the stream.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try self.write($0) }
    }
}

/// The "compression off" writer: every ``write(_:)`` is handed straight to the output closure.
///
/// It exists so a caller that writes either `.csv.gz` or plain `.csv` has one code path; it adds no buffering of
/// its own (buffer before writing, as with ``GzipWriter``).
public final class PassthroughWriter: ByteStreamWriter {
    private let output: (UnsafeRawBufferPointer) throws -> Void
    private var finished = false

    /// - Parameter output: receives each buffer passed to ``write(_:)``, on the caller's thread, during the call.
    public init(output: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.output = output
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !self.finished else {
            throw GzipError(code: .misuse, message: "write after finish()")
        }
        if !bytes.isEmpty {
            try self.output(bytes)
        }
    }

    public func finish() throws {
        guard !self.finished else {
            throw GzipError(code: .misuse, message: "finish() called twice")
        }
        self.finished = true
    }
}

@available(*, unavailable)
extension PassthroughWriter: Sendable {}
