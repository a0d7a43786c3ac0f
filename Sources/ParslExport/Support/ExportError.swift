/// A failure the user can act on: one line naming the file and the cause, and a documented exit code.
public struct ExportError: Error, Sendable, CustomStringConvertible {
    /// Exit codes, documented in `parsl-export --help` and the README.
    public enum Code: Int32, Sendable, CaseIterable {
        /// Bad command line or options, or an output path that is the source database or one of its files.
        case usage = 64
        /// The input is missing, not a file, or cannot be opened.
        case inputMissing = 66
        /// The input is not a readable Parsl monitoring database (not SQLite, corrupt, truncated, no Parsl tables).
        case inputInvalid = 65
        /// The database stayed locked by a writer past the busy timeout, or was replaced during the export: a retry
        /// may succeed.
        case inputLocked = 75
        /// An output could not be written (permissions, disk full); nothing partial is left behind.
        case outputFailed = 73
        /// Interrupted by SIGINT/SIGTERM; temporary files were removed.
        case interrupted = 130
        /// A guard such as --max-events stopped the export.
        case limitExceeded = 69
        /// A value could not be represented in an output format.
        case dataError = 70

        public var summary: String {
            switch self {
            case .usage: "bad command line, or an output that is the source database"
            case .inputMissing: "input missing or unreadable"
            case .inputInvalid: "input is not a readable Parsl monitoring database"
            case .inputLocked: "database locked by a writer for longer than the busy timeout, or replaced during the export"
            case .outputFailed: "output could not be written (or serve could not listen); previous outputs kept"
            case .interrupted: "interrupted; no partial output left"
            case .limitExceeded: "a limit such as --max-events was exceeded"
            case .dataError: "a value cannot be written in the requested format"
            }
        }
    }

    public let code: Code
    public let message: String

    /// Control characters in `message` (SQLite quotes schema text, file names may hold anything) are escaped, so
    /// the error stays one line.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = printable(message)
    }

    public var description: String { message }
}

/// Characters that must not reach a terminal or a log line as they are: C0 and C1 controls and DEL (terminal escape
/// sequences), the Unicode line and paragraph separators (line breaks to many readers), and the bidirectional
/// overrides and isolates (they reorder what is shown). Messages quote text from the database, which may hold any.
func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
    default: false
    }
}

/// `text` with every character `needsEscape` names escaped: safe to print on one line.
public func printable(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: needsEscape) else { return text }
    var out = ""
    for scalar in text.unicodeScalars { appendEscaped(scalar, to: &out) }
    return out
}

/// Appends `scalar`, as `\n`, `\r`, `\t` or `\u{hex}` when `needsEscape` says so.
func appendEscaped(_ scalar: Unicode.Scalar, to out: inout String) {
    switch scalar {
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    case let s where needsEscape(s): out += "\\u{\(String(s.value, radix: 16))}"
    default: out.unicodeScalars.append(scalar)
    }
}
