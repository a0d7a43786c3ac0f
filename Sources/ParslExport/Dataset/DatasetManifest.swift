#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a dataset holds: each source database as last seen, and each run with its source, whether it had finished
/// and the rows exported per table. Kept at `ROOT/_parsl_export_manifest.json`; an update reads it to decide what
/// to export again and rewrites it (atomically) once a database's runs are in place.
public struct DatasetManifest: Codable, Sendable, Equatable {
    public static let currentFormat = "parsl-export dataset 1"

    public struct Source: Codable, Sendable, Equatable {
        public var identity: DatabaseIdentity
        public var firstRunID: String?
        public var runIDs: [String]
    }

    public struct Run: Codable, Sendable, Equatable {
        /// The database the run was exported from (the first one that had it, see the duplicate rule).
        public var source: String
        public var workflowName: String?
        /// `time_completed` was set when the run was exported: it is not read again.
        public var finished: Bool
        /// Set while the run's partitions are being swapped into the tables; a run left in this state (an export
        /// that died mid-swap) is exported again by the next update.
        public var replacing: Bool
        public var rows: [String: Int]
        /// When it was last exported, UTC, ISO 8601.
        public var exportedAt: String
    }

    public var format = Self.currentFormat
    public var exporterVersion = ExportPipeline.exporterVersion
    public var mappingVersion: String
    /// The `--timezone` the dataset's timestamps were converted from (nil: naive): every run must agree.
    public var timeZone: String?
    public var sources: [String: Source] = [:]
    public var runs: [String: Run] = [:]

    public init(mappingVersion: String, timeZone: String?) {
        self.mappingVersion = mappingVersion
        self.timeZone = timeZone
    }

    enum CodingKeys: String, CodingKey {
        case format, exporterVersion = "exporter_version", mappingVersion = "mapping_version"
        case timeZone = "time_zone", sources, runs
    }

    /// The manifest at `path`, or nil when there is none; an unreadable one is an error (it is never guessed at).
    public static func load(path: String) throws -> DatasetManifest? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if access(path, F_OK) == 0 { throw ExportError(.outputFailed, "\(path): cannot read the dataset manifest") }
            return nil
        }
        do {
            let manifest = try JSONDecoder().decode(DatasetManifest.self, from: data)
            guard manifest.format == currentFormat else {
                throw ExportError(.outputFailed, "\(path): dataset manifest of format '\(manifest.format)', expected '\(currentFormat)'")
            }
            return manifest
        } catch let error as ExportError {
            throw error
        } catch {
            throw ExportError(.outputFailed, "\(path): dataset manifest is not valid (\(error)); move it away to rebuild the dataset")
        }
    }

    /// Writes the manifest under a temporary name and renames it over the old one.
    public func save(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        let file = try AtomicFile(path: path)
        do {
            try file.write(Array(data) + [UInt8(ascii: "\n")])
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
    }
}

extension DatasetManifest.Source {
    enum CodingKeys: String, CodingKey {
        case identity, firstRunID = "first_run_id", runIDs = "run_ids"
    }
}

extension DatasetManifest.Run {
    enum CodingKeys: String, CodingKey {
        case source, workflowName = "workflow_name", finished, replacing, rows, exportedAt = "exported_at"
    }
}

/// A database file as the file system and SQLite's header describe it; two equal identities mean nothing has
/// been written since. SQLite bumps the header's file change counter on every commit in rollback-journal mode; in
/// WAL mode commits go to the `-wal` file first, so its size and modification time count too.
public struct DatabaseIdentity: Codable, Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modifiedNanoseconds: Int64
    public var changeCounter: UInt32
    public var walSize: Int64
    public var walModifiedNanoseconds: Int64

    enum CodingKeys: String, CodingKey {
        case device, inode, size, modifiedNanoseconds = "mtime_ns", changeCounter = "change_counter"
        case walSize = "wal_size", walModifiedNanoseconds = "wal_mtime_ns"
    }

    /// The identity of the file at `path` now; nil when it cannot be read (the export then reports why).
    public static func of(path: String) -> DatabaseIdentity? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        var header = [UInt8](repeating: 0, count: 28)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        let read = header.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 28, 0) }
        close(descriptor)
        let counter =
            read == 28 ? header[24...27].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } : 0
        var wal = stat()
        let hasWAL = stat(path + "-wal", &wal) == 0
        return DatabaseIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modifiedNanoseconds: nanoseconds(info.st_mtim), changeCounter: counter,
            walSize: hasWAL ? Int64(wal.st_size) : 0, walModifiedNanoseconds: hasWAL ? nanoseconds(wal.st_mtim) : 0)
    }

    private static func nanoseconds(_ time: timespec) -> Int64 { Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec) }
}
