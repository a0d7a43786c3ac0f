import Testing

@testable import ParslExport

/// `--timezone`: Parsl's naive wall-clock timestamps turned into UTC with the system's tz database.
@Suite("Time zone conversion", .serialized)
struct TimeZoneConversionTests {
    private func utc(_ wallClock: String, in zone: String) throws -> String {
        let conversion = try TimeZoneConversion(identifier: zone)
        let parsed = try #require(Timestamp.parse(wallClock))
        return Timestamp.format(conversion.utcMicros(fromWallClock: parsed.wallClockMicros))
    }

    @Test func summerAndWinterOffsets() throws {
        #expect(try utc("2026-07-01 12:00:00.250000", in: "Europe/Paris") == "2026-07-01 10:00:00.250000")
        #expect(try utc("2026-01-15 12:00:00.000000", in: "Europe/Paris") == "2026-01-15 11:00:00.000000")
        #expect(try utc("2026-07-01 12:00:00.000000", in: "America/Chicago") == "2026-07-01 17:00:00.000000")
        #expect(try utc("2026-07-01 12:00:00.000000", in: "UTC") == "2026-07-01 12:00:00.000000")
    }

    /// Clocks go back at 03:00 CEST on 2026-10-25: 02:30 happens twice, first at 00:30 UTC, then at 01:30 UTC.
    @Test func aRepeatedHourTakesItsFirstOccurrence() throws {
        #expect(try utc("2026-10-25 02:30:00.000000", in: "Europe/Paris") == "2026-10-25 00:30:00.000000")
        #expect(try utc("2026-10-25 03:30:00.000000", in: "Europe/Paris") == "2026-10-25 02:30:00.000000")
        #expect(try utc("2026-11-01 01:30:00.000000", in: "America/New_York") == "2026-11-01 05:30:00.000000")
    }

    @Test func anUnknownZoneIsAUsageError() {
        #expect(throws: ExportError.self) { try TimeZoneConversion(identifier: "Mars/Olympus_Mons") }
        #expect(throws: ExportError.self) { try TimeZoneConversion(identifier: "../../etc/passwd") }
    }
}
