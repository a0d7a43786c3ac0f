import ParslExportCLI

@main
struct ParslExportTool {
    static func main() async { await ParslExportCommand.runAsMain() }
}
