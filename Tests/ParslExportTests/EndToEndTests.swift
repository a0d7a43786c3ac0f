import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `parsl-export` binary as a user would, from a directory outside the source tree.
enum Binary {
    static let path: String = {
        var root = #filePath
        for _ in 0..<3 { root = String(root[..<root.lastIndex(of: "/")!]) }
        for candidate in [".build/debug/parsl-export", ".build/release/parsl-export"] {
            let full = root + "/" + candidate
            if access(full, X_OK) == 0 { return full }
        }
        return root + "/.build/debug/parsl-export"
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String], in directory: String = "/tmp") throws -> Result {
        let out = temporaryDirectory()
        let script = "cd '\(directory)' && exec '\(path)' " + arguments.map { "'" + $0.replacing("'", with: "'\\''") + "'" }.joined(separator: " ")
            + " > '\(out)/stdout' 2> '\(out)/stderr'"
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(script), nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { throw TestFailure("spawn failed") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(
            status: code,
            stdout: String(decoding: try readFile(out + "/stdout"), as: UTF8.self),
            stderr: String(decoding: try readFile(out + "/stderr"), as: UTF8.self)
        )
    }
}

@Suite("End to end")
struct EndToEndTests {
    @Test("inspect runs from outside the source tree, with the mappings built in")
    func inspectFromElsewhere() throws {
        let result = try Binary.run(["inspect", Fixtures.htex2026], in: temporaryDirectory())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("schema era: Parsl 2024.03.11"))
        #expect(result.stdout.contains("task               257 rows"))
        #expect(result.stdout.contains("1e437788-0aa0-4ea1-b699-5597f67ef52f"))
    }

    @Test(
        "bad input: one line on stderr naming the file, the documented exit code",
        arguments: [
            ("/nonexistent/monitoring.db", Int32(66)),
            ("/tmp", Int32(66)),
            ("/etc/hostname", Int32(65)),
        ]
    )
    func badInput(path: String, code: Int32) throws {
        for command in ["inspect", "csv"] {
            var arguments = [command, path]
            if command == "csv" { arguments += ["-o", temporaryDirectory() + "/out"] }
            let result = try Binary.run(arguments)
            #expect(result.status == code, "\(command): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(lines.first?.hasPrefix("parsl-export: \(path)") == true, "\(result.stderr)")
        }
    }

    @Test("csv writes every table, complete, with no temporary file left")
    func csvOutputs() throws {
        let out = temporaryDirectory() + "/csv"
        let result = try Binary.run(["csv", Fixtures.htex2026, "-o", out, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let files = try listDirectory(out).sorted()
        #expect(
            files == [
                "block.csv.gz", "node.csv.gz", "resource.csv.gz", "status.csv.gz", "task.csv.gz", "try.csv.gz",
                "try_summary.csv.gz", "workflow.csv.gz",
            ]
        )
    }

    @Test("--timezone converts the naive wall clock to UTC: the bundled run (November, Paris is UTC+1)")
    func timezone() throws {
        let out = temporaryDirectory()
        for (name, extra) in [("naive", [String]()), ("utc", ["--timezone", "Europe/Paris"])] {
            let result = try Binary.run(
                ["csv", Fixtures.htex2026, "-o", "\(out)/\(name)", "--no-gzip", "--tables", "workflow", "--quiet"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
        }
        func timeBegan(_ name: String) throws -> String {
            let text = String(decoding: try readFile("\(out)/\(name)/workflow.csv"), as: UTF8.self)
            let lines = text.split(separator: "\r\n")
            let column = try #require(lines[0].split(separator: ",").firstIndex(of: "time_began"))
            return String(lines[1].split(separator: ",", omittingEmptySubsequences: false)[column])
        }
        #expect(try timeBegan("naive") == "2026-11-24 23:30:33.700966")
        #expect(try timeBegan("utc") == "2026-11-24 22:30:33.700966")
    }

    @Test("an unwritable output directory is an output error, and nothing is left behind")
    func unwritableOutput() throws {
        let result = try Binary.run(["csv", Fixtures.htex2026, "-o", "/proc/parsl-export-test"])
        #expect(result.status == 73, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test(
        "a single-valued option given twice is a usage error, not last-one-wins; a repeatable one is not",
        arguments: [
            (["csv", "-o", "{out}/a", "-o", "{out}/b"], Int32(64), "-o/--output"),
            (["csv", "--output={out}/a", "-o{out}/b"], Int32(64), "-o/--output"),
            (["prometheus", "-o", "{out}/p.prom", "--labels", "app", "--labels", "none"], Int32(64), "--labels"),
            (["trace", "-o", "{out}/t.json", "--since", "-5", "--until", "-1"], Int32(0), ""),
            (["csv", "-o", "{out}/r", "--run", "1e43", "--run", "1e437788", "--tables", "workflow"], Int32(0), ""),
        ]
    )
    func repeatedOptions(arguments: [String], code: Int32, named: String) throws {
        let out = temporaryDirectory()
        defer { removeTree(out) }
        let given = [arguments[0], Fixtures.htex2026] + arguments.dropFirst().map { $0.replacing("{out}", with: out) }
        let result = try Binary.run(given + ["--quiet"])
        #expect(result.status == code, "\(result.stderr)")
        if code == 64 {
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("parsl-export: \(named) given twice"), "\(result.stderr)")
            #expect(try listDirectory(out).isEmpty, "a refused command line writes nothing")
        }
    }

    @Test(
        "a trace window out of range is a usage error, for trace and for all, and writes nothing",
        arguments: ["trace", "all"],
        [["--since", "1e300"], ["--until", "-1e300"], ["--since", "9.3e12"], ["--until", "1000000000.5"]]
    )
    func windowOutOfRange(command: String, window: [String]) throws {
        let out = temporaryDirectory()
        defer { removeTree(out) }
        let result = try Binary.run([command, Fixtures.htex2026, "-o", out + "/export"] + window)
        #expect(result.status == 64, "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("parsl-export: \(window[0]) \(window[1]): "), "\(result.stderr)")
        #expect(try listDirectory(out).isEmpty, "a refused command line writes nothing")
    }

    @Test(
        "dataset bounds its reading options as the other commands do, and writes nothing when refused",
        arguments: [["--batch-size", "2147483648"], ["--batch-size", "0"], ["--busy-timeout", "-1"],
            ["--busy-timeout", "3600001"]]
    )
    func datasetReadingOptionsOutOfRange(option: [String]) throws {
        let out = temporaryDirectory()
        defer { removeTree(out) }
        let result = try Binary.run(["dataset", Fixtures.htex2026, "-o", out + "/runs"] + option)
        #expect(result.status == 64, "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("parsl-export: \(option[0]) must be "), "\(result.stderr)")
        #expect(try listDirectory(out).isEmpty, "a refused command line writes nothing")
    }

    @Test("an export ends with one line of what it read, naming an unfinished run")
    func readSummaryLine() throws {
        let out = temporaryDirectory()
        defer { removeTree(out) }
        let finished = try Binary.run(["parquet", Fixtures.htex2026, "-o", out + "/a", "--tables", "task,try"])
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(finished.stderr.split(separator: "\n").last == "read 1 run: task 257, try 283 rows", "\(finished.stderr)")

        let unfinished = out + "/unfinished.db"
        try FileManager.default.copyItem(atPath: Fixtures.htex2026, toPath: unfinished)
        try execute(unfinished, "UPDATE workflow SET time_completed = NULL")
        let result = try Binary.run(["parquet", unfinished, "-o", out + "/b", "--tables", "task"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.split(separator: "\n").last
                == "read 1 run (unfinished, as committed when the export began: 1e437788-0aa0-4ea1-b699-5597f67ef52f): task 257 rows",
            "\(result.stderr)")
    }

    @Test("schema lists every mapped table")
    func schema() throws {
        let result = try Binary.run(["schema", "--markdown"])
        #expect(result.status == 0)
        for table in ["workflow", "task", "try", "status", "resource", "block", "node", "try_summary"] {
            #expect(result.stdout.contains("## \(table)"), "\(table)")
        }
    }
}
