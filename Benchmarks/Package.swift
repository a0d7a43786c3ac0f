// swift-tools-version:6.1
// Micro-benchmarks of the exporter's hot paths. A separate package, so the main build never
// resolves the benchmark dependencies. Run: cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "parsl-export-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "parsl-export", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "ParslExport", package: "parsl-export"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
