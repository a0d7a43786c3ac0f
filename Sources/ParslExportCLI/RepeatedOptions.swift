#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ArgumentParser

/// ArgumentParser keeps the last of a repeated single-valued option, so `-o a -o b` would quietly write to `b`; a user
/// who typed two outputs meant something else. Which options take one value comes from the parser's own description
/// of the command tree, so nothing here can drift from the declarations.
enum RepeatedOptions {
    private struct Tool: Decodable { var command: Command }
    private struct Command: Decodable {
        var commandName: String
        var arguments: [Argument]?
        var subcommands: [Command]?
    }
    private struct Argument: Decodable {
        var kind: String
        var isRepeating: Bool
        var names: [Name]?
    }
    private struct Name: Decodable {
        var kind: String
        var name: String
        var spelling: String { kind == "long" ? "--" + name : "-" + name }
    }

    /// Throws a usage error naming the first single-valued option that `arguments` (without the program name) give
    /// more than once.
    static func check(_ arguments: [String], root: any ParsableCommand.Type) throws {
        guard let tool = try? JSONDecoder().decode(Tool.self, from: Data(root._dumpHelp().utf8)) else { return }
        var command = tool.command
        var index = arguments.startIndex
        while index < arguments.endIndex, let sub = command.subcommands?.first(where: { $0.commandName == arguments[index] }) {
            command = sub
            index += 1
        }
        // Every option's spellings, mapped to its position among the command's arguments.
        var options: [String: Int] = [:]
        let declared = command.arguments ?? []
        for (position, argument) in declared.enumerated() where argument.kind == "option" {
            for name in argument.names ?? [] { options[name.spelling] = position }
        }
        var seen: [Int: String] = [:]
        while index < arguments.endIndex {
            let token = arguments[index]
            index += 1
            if token == "--" { break }
            guard token.hasPrefix("-"), token.count > 1 else { continue }
            let name: String
            let valueAttached: Bool
            if token.hasPrefix("--") {
                name = String(token.prefix { $0 != "=" })
                valueAttached = name.count < token.count
            } else {
                name = String(token.prefix(2))
                valueAttached = token.count > 2
            }
            guard let position = options[name] else { continue }
            var given = token
            if !valueAttached, index < arguments.endIndex {
                given += " " + arguments[index]
                index += 1  // its value, whatever it looks like
            }
            guard !declared[position].isRepeating else { continue }
            if let first = seen[position] {
                let spellings = (declared[position].names ?? []).map(\.spelling).sorted { $0.count < $1.count }.joined(separator: "/")
                throw ValidationError("\(spellings) given twice ('\(first)' and '\(given)'): give it once")
            }
            seen[position] = given
        }
    }
}
