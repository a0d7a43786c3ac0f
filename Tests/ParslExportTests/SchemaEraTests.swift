import ParslExport
import Testing

@Suite("Schema eras")
struct SchemaEraTests {
    static let cases: [(String, SchemaEra)] = [
        ("era-1.1.0a0.db", .v1_1a0),
        ("era-1.1.0a1.db", .v1_1a1),
        ("era-1.1.0.db", .v1_1),
        ("era-1.2.0.db", .v1_2),
        ("era-1.3.0.db", .v1_3),
        ("era-2023.04.24.db", .v2023_04_24),
        ("era-2024.03.11.db", .v2024_03),
        ("era-visualize.db", .visualizeVariant),
        ("parsl-1.2.0-htex.db", .v1_2),
        ("parsl-2023.4.17-htex.db", .v1_3),
        ("parsl-2024.1.22-htex.db", .v2023_04_24),
        ("parsl-2026.10.26-htex.db", .v2024_03),
        ("parsl-2026.10.26-threads.db", .v2024_03),
    ]

    @Test("the era is detected from the columns", arguments: cases)
    func detected(file: String, era: SchemaEra) throws {
        let database = try ExportPipeline(request: ExportRequest(databasePath: Fixtures.database(file))).openDatabase()
        #expect(database.schema.era == era)
    }

    @Test("current columns a database lacks are exported as NULL; dropped ones only where present", arguments: cases)
    func stableSchema(file: String, era: SchemaEra) throws {
        let path = Fixtures.database(file)
        let database = try ExportPipeline(request: ExportRequest(databasePath: path)).openDatabase()
        let resource = database.outputSchema(for: "resource").columns.map(\.name)
        #expect(resource.contains("psutil_cpu_num"))
        #expect(resource.contains("psutil_process_cpu_percent") == database.schema.has("resource", "psutil_process_cpu_percent"))
        let node = database.outputSchema(for: "node").columns.map(\.name)
        #expect(node.contains("reg_time") == database.schema.has("node", "reg_time"))
        #expect(database.unknownColumns(of: "task").isEmpty, "\(database.unknownColumns(of: "task"))")
    }
}
