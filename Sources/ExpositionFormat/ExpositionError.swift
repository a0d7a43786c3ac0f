/// A metric family or sample that cannot be written without producing an invalid exposition.
///
/// These are programming errors of the caller (a bad name, a wrong label count, a second HELP for a
/// family), reported instead of writing text a scraper would reject as a whole.
public struct ExpositionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
