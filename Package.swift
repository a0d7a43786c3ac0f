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
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // C libraries from the system, under prefixed module names.
        .systemLibrary(name: "CParslSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CParslZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Format writers: they know nothing of Parsl.
        .target(name: "GzipStream", dependencies: ["CParslZlib"]),
        .target(name: "CSVFormat"),
        .target(name: "ParquetFormat", dependencies: ["CParslZlib"]),
        .target(name: "TraceEventFormat"),
        .target(name: "ExpositionFormat"),

        // Parsl knowledge: the reader, the model, the sinks. Mappings/ is embedded at build time.
        .target(
            name: "ParslExport",
            dependencies: [
                "CParslSQLite", "GzipStream", "CSVFormat", "ParquetFormat", "TraceEventFormat", "ExpositionFormat",
            ],
            resources: [.embedInCode("Mappings")]
        ),
        .target(
            name: "ParslExportCLI",
            dependencies: ["ParslExport", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "parsl-export", dependencies: ["ParslExportCLI"]),

        .testTarget(
            name: "FormatTests",
            dependencies: ["GzipStream", "CSVFormat", "ParquetFormat", "TraceEventFormat", "ExpositionFormat", "CParslZlib"]
        ),
        .testTarget(
            name: "ParslExportTests",
            dependencies: ["ParslExport", "ParslExportCLI", "CParslSQLite"]
        ),
    ]
)

for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
