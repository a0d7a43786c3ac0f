// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "parsl-export",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "parsl-export", targets: ["parsl-export"]),
        .library(name: "ParslExport", targets: ["ParslExport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // No default traits: keeps full Foundation (and ICU) out of the binary.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // Already in Hummingbird's graph; named here because the server uses their types directly.
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
    ],
    targets: [
        // C libraries from the system, under prefixed module names.
        .systemLibrary(name: "CParslSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CParslZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CParslDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CParslZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // Format writers: they know nothing of Parsl.
        .target(name: "GzipStream", dependencies: ["CParslZlib", "CParslDeflate"]),
        .target(name: "CSVFormat"),
        .target(name: "ParquetFormat", dependencies: ["CParslZlib", "CParslZstd"]),
        .target(name: "TraceEventFormat"),
        .target(name: "PerfettoFormat"),
        .target(name: "ExpositionFormat"),

        // Parsl knowledge: the reader, the model, the sinks. Mappings/ is embedded at build time.
        .target(
            name: "ParslExport",
            dependencies: [
                "CParslSQLite", "CParslZstd", "GzipStream", "CSVFormat", "ParquetFormat", "TraceEventFormat", "PerfettoFormat",
                "ExpositionFormat",
            ],
            resources: [.embedInCode("Mappings")]
        ),
        // The live /metrics endpoint (`serve`), on Hummingbird.
        .target(
            name: "ParslExportServer",
            dependencies: [
                "ParslExport", "ExpositionFormat", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ]
        ),
        .target(
            name: "ParslExportCLI",
            dependencies: [
                "ParslExport", "ParslExportServer", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "parsl-export", dependencies: ["ParslExportCLI"]),

        .testTarget(
            name: "FormatTests",
            dependencies: [
                "GzipStream", "CSVFormat", "ParquetFormat", "TraceEventFormat", "PerfettoFormat", "ExpositionFormat",
                "CParslZlib",
            ]
        ),
        .testTarget(
            name: "ParslExportTests",
            dependencies: [
                "ParslExport", "ParslExportCLI", "ParslExportServer", "CParslSQLite", "ExpositionFormat",
            ]
        ),
    ]
)

for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
