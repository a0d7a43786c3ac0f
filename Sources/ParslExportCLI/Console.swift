#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import ParslExport

enum Console {
    static func error(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

/// SIGINT/SIGTERM: remove temporary outputs, then exit with the documented code.
enum Interrupts {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    /// The database being exported, named in the interrupt message like every other error.
    nonisolated(unsafe) static var databasePath = ""
    /// Removes what a command keeps outside the temporary-file registry (the dataset's staging directory).
    nonisolated(unsafe) static var cleanup: () -> Void = {}

    static func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                TemporaryFiles.shared.removeAllAndExit(ExportError.Code.interrupted.rawValue) {
                    cleanup()
                    Console.error("parsl-export: \(databasePath.isEmpty ? "" : databasePath + ": ")interrupted; temporary files removed")
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// For `serve`, which shuts down gracefully on these signals itself: the exit-at-once handlers step aside.
    static func standDown() {
        for source in sources { source.cancel() }
        sources = []
    }
}

/// Progress on stderr, only when it is a terminal and the work takes a while.
final class Progress: @unchecked Sendable {
    private var last: UInt64 = 0
    private let start = DispatchTime.now().uptimeNanoseconds
    private let enabled: Bool

    init(quiet: Bool) { enabled = !quiet && Console.stderrIsTerminal }

    func update(_ table: String, _ rows: Int) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - start > 1_000_000_000, now - last > 200_000_000 else { return }
        last = now
        var text = "\r\u{1B}[K\(table): \(rows) rows"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    func done() {
        guard enabled, last != 0 else { return }
        var text = "\r\u{1B}[K"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
