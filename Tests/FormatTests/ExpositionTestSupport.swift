#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif


func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}


struct FileWriteError: Error { let path: String }
