/// An error raised by ``GzipWriter``.
///
/// Errors thrown by the writer's output closure are not wrapped: they reach the caller unchanged, so a
/// "disk full" from the file layer stays a "disk full".
public struct GzipError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidArgument
            case zlib
            case misuse
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// A parameter was out of range (level, thread count, block size).
        public static let invalidArgument = Code(.invalidArgument)
        /// zlib reported an error.
        public static let zlib = Code(.zlib)
        /// The writer was used after ``GzipWriter/finish()``.
        public static let misuse = Code(.misuse)

        public var description: String {
            switch self.base {
            case .invalidArgument: "invalid argument"
            case .zlib: "zlib error"
            case .misuse: "misuse"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, and with what.
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String {
        "\(self.code): \(self.message)"
    }
}
