/// What tells a monitoring database from another one written over it at the same path, even into the same inode:
/// SQLite's file change counter (it only grows while one database is written), the first run id and the schema.
struct DatabaseFingerprint: Equatable {
    var changeCounter: UInt32
    var firstRunID: String?
    /// `CREATE` statements by object name.
    var schema: [String: String]

    /// Reads it inside a read transaction (so no writer is changing the header meanwhile), with statements from
    /// `prepare` (the reader's cache: this runs on every poll, inside the transaction that holds the lock).
    init(prepare: (String) throws -> SQLiteStatement) throws {
        var schema: [String: String] = [:]
        let objects = try prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        defer { objects.reset() }
        changeCounter = objects.connection.fileChangeCounter() ?? 0
        while try objects.step() { schema[objects.string(0) ?? ""] = objects.string(1) ?? "" }
        self.schema = schema
        firstRunID = nil
        if schema["workflow"] != nil {
            let first = try prepare("SELECT run_id FROM workflow ORDER BY rowid LIMIT 1")
            defer { first.reset() }
            if try first.step() { firstRunID = first.string(0) }
        }
    }

    init(changeCounter: UInt32, firstRunID: String?, schema: [String: String]) {
        self.changeCounter = changeCounter
        self.firstRunID = firstRunID
        self.schema = schema
    }

    /// True when this (later) reading cannot be of the same database as `earlier`: the counter went back, the
    /// first run changed, or an object changed or vanished (objects being added is how Parsl creates its schema).
    func replaces(_ earlier: DatabaseFingerprint) -> Bool {
        if changeCounter < earlier.changeCounter { return true }
        if let first = earlier.firstRunID, firstRunID != first { return true }
        return earlier.schema.contains { schema[$0.key] != $0.value }
    }
}
