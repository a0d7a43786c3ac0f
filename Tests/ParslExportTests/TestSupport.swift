import CParslSQLite
import ParslExport
import Testing

/// Paths of the committed fixture databases.
enum Fixtures {
    static let root: String = {
        var path = #filePath
        for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fixtures/databases"
    }()

    static func database(_ name: String) -> String { root + "/" + name }

    static let htex2026 = database("parsl-2026.10.26-htex.db")
    static let threads2026 = database("parsl-2026.10.26-threads.db")

    /// Every committed database. Without them the tests that take each would run no case and pass: stop instead.
    static let all: [String] = {
        let names = ((try? listDirectory(root)) ?? []).filter { $0.hasSuffix(".db") }.sorted()
        guard !names.isEmpty else { fatalError("no fixture databases in \(root): the tests cannot run without them") }
        return names.map { root + "/" + $0 }
    }()
}

/// Answers straight from SQLite, independent of the exporter's reader.
enum Oracle {
    static func scalar(_ path: String, _ sql: String) -> Int64 {
        var db: OpaquePointer?
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil)
        defer { sqlite3_close_v2(db) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else {
            // A query that cannot run proves nothing: the test fails rather than compare with a made-up value.
            Issue.record("oracle query failed on \(path): \(sql): \(String(cString: sqlite3_errmsg(db)))")
            return -1
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else {
            Issue.record("oracle query gave no row on \(path): \(sql)")
            return -1
        }
        return sqlite3_column_int64(statement, 0)
    }

    /// The text of the first column of the first row; a failed query fails the test.
    static func text(_ path: String, _ sql: String) -> String? {
        var db: OpaquePointer?
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil)
        defer { sqlite3_close_v2(db) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, sqlite3_step(statement) == SQLITE_ROW
        else {
            Issue.record("oracle query failed on \(path): \(sql)")
            sqlite3_finalize(statement)
            return nil
        }
        defer { sqlite3_finalize(statement) }
        return sqlite3_column_text(statement, 0).map { String(cString: $0) }
    }

    static func tableExists(_ path: String, _ table: String) -> Bool {
        scalar(path, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='\(table)'") == 1
    }
}

#if canImport(Glibc)
import Glibc
#endif

func listDirectory(_ path: String) throws -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

func temporaryDirectory() -> String {
    var template = Array("/tmp/parsl-export-test-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

/// Deletes a directory and everything under it.
func removeTree(_ path: String) {
    for name in (try? listDirectory(path)) ?? [] {
        let child = path + "/" + name
        var info = stat()
        if lstat(child, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { removeTree(child) } else { unlink(child) }
    }
    rmdir(path)
}
