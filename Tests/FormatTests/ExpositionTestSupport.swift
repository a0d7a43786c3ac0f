#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif




struct FileWriteError: Error { let path: String }
