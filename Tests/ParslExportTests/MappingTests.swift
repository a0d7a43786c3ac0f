import ParslExport
import Testing

@Suite("Mappings")
struct MappingTests {
    @Test("every embedded table mapping decodes, and the index lists them all")
    func embedded() throws {
        let catalog = try MappingCatalog.embedded()
        #expect(catalog.tableNames == ["workflow", "task", "try", "status", "resource", "block", "node", "try_summary"])
        for name in catalog.tableNames {
            let mapping = try #require(catalog.mapping(for: name))
            #expect(!mapping.columns.isEmpty)
            #expect(Set(mapping.columns.map(\.name)).count == mapping.columns.count, "duplicate column in \(name)")
            for column in mapping.columns where column.normalise != nil {
                #expect(catalog.index.normalisations[column.normalise!] != nil, "\(name).\(column.name)")
            }
        }
    }

    @Test("the current columns match Parsl 2026.10.26's DDL, in order")
    func currentColumnsMatchRealDatabase() throws {
        let database = try ExportPipeline(request: ExportRequest(databasePath: Fixtures.htex2026)).openDatabase()
        for table in ["workflow", "task", "try", "status", "resource", "block", "node"] {
            let mapped = database.catalog.mapping(for: table)!.columns.filter(\.isCurrent).map(\.name)
            let source = database.schema.columns(of: table)!.map(\.name)
            #expect(mapped == source, "\(table)")
        }
    }

    @Test("--mappings adds a site's extra column with its type, and overrides a meaning")
    func overrideDirectory() throws {
        let directory = temporaryDirectory()
        try writeFile(
            directory + "/task.json",
            Array(
                """
                {"table": "task", "meaning": "", "columns": [
                  {"name": "site_priority", "type": "int64", "nullable": true, "meaning": "Our scheduler's priority."},
                  {"name": "task_func_name", "type": "text", "nullable": false, "meaning": "App name (site wording)."}
                ]}
                """.utf8
            )
        )
        let path = temporaryDirectory() + "/site.db"
        try writeFile(path, try readFile(Fixtures.htex2026))
        try execute(path, "ALTER TABLE task ADD COLUMN site_priority INTEGER; UPDATE task SET site_priority = task_id * 2;")

        let plain = MemorySink(demand: SinkDemand(tables: ["task"]))
        _ = try ExportPipeline(request: ExportRequest(databasePath: path)).run(into: plain)
        let plainColumn = try #require(plain.batches.first?.schema.columns.last)
        #expect(plainColumn.name == "site_priority")
        #expect(plainColumn.type == .text)

        let extended = MemorySink(demand: SinkDemand(tables: ["task"]))
        _ = try ExportPipeline(request: ExportRequest(databasePath: path, mappingsDirectory: directory)).run(into: extended)
        let batch = try #require(extended.batches.first)
        let column = try #require(batch.column("site_priority"))
        #expect(batch.schema.columns.first { $0.name == "site_priority" }?.type == .int64)
        #expect(column.int64(at: 3) == 2 * (batch.column("task_id")?.int64(at: 3) ?? -1))
        #expect(batch.schema.columns.first { $0.name == "task_func_name" }?.meaning == "App name (site wording).")
    }
}
