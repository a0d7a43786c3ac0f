#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns naive wall-clock microseconds into UTC for a named IANA zone (`--timezone`), with the C library's tz
/// database. Offsets are cached per hour, so a million timestamps cost a few hundred `mktime` calls.
public final class TimeZoneConversion: Sendable {
    public let identifier: String
    private let cache = Locked<[Int64: Int64]>([:])

    /// Fails when the zone is unknown to the system's tz database.
    public init(identifier: String) throws {
        self.identifier = identifier
        let known =
            identifier == "UTC" || identifier == "GMT"
            || (!identifier.contains("..") && access("/usr/share/zoneinfo/" + identifier, R_OK) == 0)
        guard known else { throw ExportError(.usage, "unknown time zone '\(identifier)' (use an IANA name such as Europe/Paris or UTC)") }
        setenv("TZ", identifier, 1)
        tzset()
    }

    /// UTC microseconds for a wall-clock reading in this zone. In a repeated hour (autumn) the first is chosen.
    public func utcMicros(fromWallClock micros: Int64) -> Int64 {
        let hour = micros >= 0 ? micros / 3_600_000_000 : (micros + 1) / 3_600_000_000 - 1
        let offset = cache.withLock { cache -> Int64 in
            if let cached = cache[hour] { return cached }
            let computed = Self.offsetSeconds(wallClockSeconds: hour * 3600)
            cache[hour] = computed
            return computed
        }
        return micros - offset * 1_000_000
    }

    /// The offset of the zone at a wall-clock reading. In a repeated hour both readings round-trip and the earlier
    /// instant (the first occurrence) wins; in a skipped hour neither does, and `mktime` moves it forward.
    private static func offsetSeconds(wallClockSeconds: Int64) -> Int64 {
        var wall = time_t(wallClockSeconds)
        var parts = tm()
        gmtime_r(&wall, &parts)
        var candidates: [Int64] = []
        for isDST: Int32 in [1, 0] {
            var attempt = parts
            attempt.tm_isdst = isDST
            var utc = mktime(&attempt)
            guard utc != -1 else { continue }
            var back = tm()
            localtime_r(&utc, &back)
            let sameReading =
                (back.tm_year, back.tm_mon, back.tm_mday, back.tm_hour, back.tm_min, back.tm_sec)
                == (parts.tm_year, parts.tm_mon, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
            if sameReading { candidates.append(Int64(utc)) }
        }
        if let first = candidates.min() { return wallClockSeconds - first }
        parts.tm_isdst = -1
        return wallClockSeconds - Int64(mktime(&parts))
    }
}
