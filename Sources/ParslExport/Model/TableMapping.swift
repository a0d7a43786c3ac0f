#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One declarative table description from Mappings/: the single source of output column names, types,
/// nullability and documentation.
public struct TableMapping: Codable, Sendable, Equatable {
    public struct Column: Codable, Sendable, Equatable {
        public var name: String
        public var type: LogicalType
        public var nullable: Bool
        /// First Parsl release whose schema has the column.
        public var since: String?
        /// First Parsl release whose schema no longer has it; nil while Parsl still writes it.
        public var until: String?
        /// A named rule from `mappings.json` applied while reading (e.g. text '0'/'1' to bool).
        public var normalise: String?
        public var meaning: String

        public var isCurrent: Bool { until == nil }
    }

    public var table: String
    public var meaning: String
    public var derived: Bool?
    public var columns: [Column]

    public func column(named name: String) -> Column? { columns.first { $0.name == name } }
}

/// The mapping files index (`mappings.json`).
public struct MappingIndex: Codable, Sendable, Equatable {
    public var mapping_version: String
    public var tables: [String]
    public var derived: [String]
    public var normalisations: [String: String]
}

/// All table mappings: the embedded Mappings/, optionally extended or overridden from a directory.
public struct MappingCatalog: Sendable {
    public var index: MappingIndex
    public var tables: [String: TableMapping]

    /// Source tables in Parsl's creation order, then derived tables.
    public var tableNames: [String] { index.tables + index.derived }
    public var version: String { index.mapping_version }

    public func mapping(for table: String) -> TableMapping? { tables[table] }

    /// The mappings built into the binary.
    public static func embedded() throws -> MappingCatalog {
        let decoder = JSONDecoder()
        let index = try decoder.decode(MappingIndex.self, from: Data(PackageResources.mappings_json))
        let files: [[UInt8]] = [
            PackageResources.workflow_json, PackageResources.task_json, PackageResources.try_json,
            PackageResources.status_json, PackageResources.resource_json, PackageResources.block_json,
            PackageResources.node_json, PackageResources.try_summary_json,
        ]
        var tables: [String: TableMapping] = [:]
        for file in files {
            let mapping = try decoder.decode(TableMapping.self, from: Data(file))
            tables[mapping.table] = mapping
        }
        return MappingCatalog(index: index, tables: tables)
    }

    /// Applies every `*.json` table file in `directory`: a column with a known name replaces that column, a new
    /// one is appended; a file for an unknown table adds it.
    public mutating func merge(directory: String) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }
                .sorted()
        } catch {
            throw ExportError(.usage, "cannot read the mappings directory \(directory)")
        }
        for name in names where name != "mappings.json" {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ExportError(.usage, "cannot read mapping file \(path)")
            }
            let override: TableMapping
            do {
                override = try JSONDecoder().decode(TableMapping.self, from: data)
            } catch {
                throw ExportError(.usage, "\(path): not a valid table mapping (\(error))")
            }
            guard var base = tables[override.table] else {
                tables[override.table] = override
                index.tables.append(override.table)
                continue
            }
            for column in override.columns {
                if let i = base.columns.firstIndex(where: { $0.name == column.name }) {
                    base.columns[i] = column
                } else {
                    base.columns.append(column)
                }
            }
            if !override.meaning.isEmpty { base.meaning = override.meaning }
            tables[override.table] = base
        }
    }
}
