import ParslExport
import Testing

@Suite("Timestamp parser")
struct TimestampTests {
    @Test("Parsl's own format, to the microsecond")
    func parslFormat() throws {
        let parsed = try #require(Timestamp.parse("2026-11-24 23:30:36.489918"))
        #expect(parsed.offsetSeconds == nil)
        #expect(parsed.wallClockMicros == 1_795_563_036_489_918)
        #expect(Timestamp.format(parsed.wallClockMicros) == "2026-11-24 23:30:36.489918")
    }

    @Test(
        "tolerated variants",
        arguments: [
            ("2026-11-24 23:30:36", "2026-11-24 23:30:36.000000"),
            ("2026-11-24 23:30:36.5", "2026-11-24 23:30:36.500000"),
            ("2026-11-24T23:30:36.123", "2026-11-24 23:30:36.123000"),
            ("2026-11-24 23:30", "2026-11-24 23:30:00.000000"),
            ("2026-11-24 23:30:36.1234567", "2026-11-24 23:30:36.123456"),
            ("1969-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999"),
            ("2024-02-29 00:00:00.000001", "2024-02-29 00:00:00.000001"),
        ]
    )
    func variants(input: String, expected: String) throws {
        let parsed = try #require(Timestamp.parse(input))
        #expect(Timestamp.format(parsed.wallClockMicros) == expected)
    }

    @Test("offset suffixes are kept apart from the wall clock")
    func offsets() throws {
        #expect(Timestamp.parse("2026-11-24 23:30:36Z")?.offsetSeconds == 0)
        #expect(Timestamp.parse("2026-11-24 23:30:36.1+02:00")?.offsetSeconds == 7200)
        #expect(Timestamp.parse("2026-11-24 23:30:36-0530")?.offsetSeconds == -19800)
        #expect(Timestamp.parse("2026-11-24 23:30:36+01")?.offsetSeconds == 3600)
        #expect(Timestamp.parse("2026-11-24 23:30:36+01")?.wallClockMicros == Timestamp.parse("2026-11-24 23:30:36")?.wallClockMicros)
    }

    @Test(
        "malformed and out-of-range values are rejected",
        arguments: [
            "", "2026", "2026-11-24", "2026-13-01 00:00:00", "2026-02-30 00:00:00", "2023-02-29 00:00:00",
            "2026-11-24 24:00:00", "2026-11-24 23:60:00", "2026-11-24 23:30:36.", "2026-11-24 23:30:36x",
            "2026/11/24 23:30:36", " 2026-11-24 23:30:36", "2026-11-24 23:30:36 ", "None", "1732491036",
            "2026-11-24 23:30:36+25:00",
        ]
    )
    func rejects(input: String) {
        #expect(Timestamp.parse(input) == nil)
    }

    @Test("format and parse round-trip over a wide range")
    func roundTrip() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let micros = Int64.random(in: -2_000_000_000_000_000...4_000_000_000_000_000, using: &generator)
            let text = Timestamp.format(micros)
            #expect(Timestamp.parse(text)?.wallClockMicros == micros, "\(text)")
        }
    }
}
