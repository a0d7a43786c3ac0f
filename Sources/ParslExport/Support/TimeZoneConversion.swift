#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Turns naive wall-clock microseconds into UTC for a named IANA zone (`--timezone`), from the zone's TZif file
/// in the system's tz database, read once: its transitions, then the POSIX rule of its footer for later years.
/// Nothing process-wide is touched (no `TZ`, no `tzset`), so exports with different zones can run side by side.
public final class TimeZoneConversion: Sendable {
    public let identifier: String
    private let rules: ZoneRules
    private let cache = Locked<[Int64: Int64]>([:])

    /// Where the tz database lives.
    static let zoneDirectory = "/usr/share/zoneinfo/"

    /// Fails when the zone is unknown to the system's tz database.
    public init(identifier: String) throws {
        self.identifier = identifier
        let unknown = ExportError(.usage, "unknown time zone '\(identifier)' (use an IANA name such as Europe/Paris or UTC)")
        if identifier == "UTC" || identifier == "GMT" {
            rules = ZoneRules(transitions: [], offsets: [], initial: 0, footer: nil)
            return
        }
        guard !identifier.isEmpty, !identifier.contains(".."), !identifier.hasPrefix("/"),
            let bytes = Self.readFile(Self.zoneDirectory + identifier), let parsed = ZoneRules(tzif: bytes)
        else { throw unknown }
        rules = parsed
    }

    /// UTC microseconds for a wall-clock reading in this zone. In a repeated hour (autumn) the first is chosen; in
    /// a skipped hour (spring) the offset before the change applies, which moves the reading forward.
    public func utcMicros(fromWallClock micros: Int64) -> Int64 {
        let hour = micros >= 0 ? micros / 3_600_000_000 : (micros + 1) / 3_600_000_000 - 1
        let offset = cache.withLock { cache -> Int64 in
            if let cached = cache[hour] { return cached }
            let computed = rules.offsetSeconds(wallClockSeconds: hour * 3600)
            cache[hour] = computed
            return computed
        }
        return micros - offset * 1_000_000
    }

    /// The offset east of UTC, in seconds, at a UTC instant.
    func offsetSeconds(utcSeconds: Int64) -> Int64 { rules.offset(atUTC: utcSeconds) }

    private static func readFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
            if count < chunk.count { break }
            if bytes.count > 1 << 20 { return nil }
        }
        return ferror(file) == 0 ? bytes : nil
    }
}

/// A zone's offsets over time, as a TZif file (RFC 8536) gives them.
struct ZoneRules: Sendable {
    /// UTC seconds at which `offsets[i]` starts.
    let transitions: [Int64]
    let offsets: [Int64]
    /// The offset before the first transition.
    let initial: Int64
    /// The rule after the last transition.
    let footer: PosixZoneRule?

    init(transitions: [Int64], offsets: [Int64], initial: Int64, footer: PosixZoneRule?) {
        self.transitions = transitions
        self.offsets = offsets
        self.initial = initial
        self.footer = footer
    }

    /// Parses a TZif file, version 1 (32-bit times) or 2+ (the 64-bit block and the footer).
    init?(tzif bytes: [UInt8]) {
        func be32(_ at: Int) -> Int64? {
            guard at + 4 <= bytes.count else { return nil }
            let value = UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
            return Int64(Int32(bitPattern: value))
        }
        func be64(_ at: Int) -> Int64? {
            guard let high = be32(at), let low = be32(at + 4) else { return nil }
            return high << 32 | (low & 0xFFFF_FFFF)
        }
        func header(_ at: Int) -> (version: UInt8, counts: [Int])? {
            guard at + 44 <= bytes.count, bytes[at..<at + 4].elementsEqual("TZif".utf8) else { return nil }
            var counts: [Int] = []
            for index in 0..<6 {
                guard let count = be32(at + 20 + index * 4), count >= 0, count < 1 << 20 else { return nil }
                counts.append(Int(count))
            }
            return (bytes[at + 4], counts)
        }
        // counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        func blockLength(_ counts: [Int], timeSize: Int) -> Int {
            counts[3] * timeSize + counts[3] + counts[4] * 6 + counts[5] + counts[2] * (timeSize + 4) + counts[1] + counts[0]
        }
        guard let first = header(0) else { return nil }
        var start = 44
        var counts = first.counts
        var timeSize = 4
        if first.version >= UInt8(ascii: "2") {
            start += blockLength(first.counts, timeSize: 4)
            guard let second = header(start) else { return nil }
            start += 44
            counts = second.counts
            timeSize = 8
        }
        let timeCount = counts[3]
        let typeCount = counts[4]
        guard typeCount > 0, start + blockLength(counts, timeSize: timeSize) <= bytes.count else { return nil }
        var times: [Int64] = []
        for index in 0..<timeCount {
            guard let time = timeSize == 8 ? be64(start + index * 8) : be32(start + index * 4) else { return nil }
            times.append(time)
        }
        let indexStart = start + timeCount * timeSize
        let typeStart = indexStart + timeCount
        var typeOffsets: [Int64] = []
        var typeIsDST: [Bool] = []
        for index in 0..<typeCount {
            guard let offset = be32(typeStart + index * 6) else { return nil }
            typeOffsets.append(offset)
            typeIsDST.append(bytes[typeStart + index * 6 + 4] != 0)
        }
        var offsets: [Int64] = []
        for index in 0..<timeCount {
            let type = Int(bytes[indexStart + index])
            guard type < typeCount else { return nil }
            offsets.append(typeOffsets[type])
        }
        // RFC 8536: before the first transition, the first standard-time type applies (else type 0).
        let initialType = typeIsDST.firstIndex(of: false) ?? 0
        var footer: PosixZoneRule?
        if timeSize == 8 {
            let footerStart = start + blockLength(counts, timeSize: 8)
            if footerStart < bytes.count, bytes[footerStart] == 0x0A,
                let end = bytes[(footerStart + 1)...].firstIndex(of: 0x0A)
            {
                footer = PosixZoneRule(String(decoding: bytes[(footerStart + 1)..<end], as: UTF8.self))
            }
        }
        self.init(transitions: times, offsets: offsets, initial: typeOffsets[initialType], footer: footer)
    }

    /// The offset at a UTC instant.
    func offset(atUTC utc: Int64) -> Int64 {
        if let last = transitions.last, utc >= last, let footer { return footer.offset(atUTC: utc) }
        if transitions.isEmpty { return footer?.offset(atUTC: utc) ?? initial }
        // The last transition at or before `utc`.
        var low = 0
        var high = transitions.count
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle] <= utc { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? initial : offsets[low - 1]
    }

    /// The offset of a wall-clock reading: the earliest instant that reads so; in a gap, the offset before it.
    func offsetSeconds(wallClockSeconds wall: Int64) -> Int64 {
        // Offsets in force within a day of the reading; one of them is the answer.
        var candidates = Set<Int64>()
        for probe in stride(from: wall - 2 * 86_400, through: wall + 2 * 86_400, by: 3600) {
            candidates.insert(offset(atUTC: probe))
        }
        let matching = candidates.filter { offset(atUTC: wall - $0) == $0 }
        if let earliest = matching.map({ wall - $0 }).min() { return wall - earliest }
        // A skipped reading: the offset in force just before the gap, as an hour earlier reads.
        return offset(atUTC: wall - candidates.max()! - 3600)
    }
}

/// A POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3` (the footer of a TZif file): a standard offset, and
/// optionally a daylight offset with the rules of its start and end.
struct PosixZoneRule: Sendable {
    enum Day: Sendable {
        /// Month, week 1–5 (5: last), weekday 0 (Sunday)–6.
        case monthWeekDay(Int64, Int64, Int64)
        /// Julian day 1–365, February 29 never counted.
        case julianNoLeap(Int64)
        /// Day 0–365, February 29 counted in leap years.
        case zeroBased(Int64)
    }

    struct Change: Sendable {
        var day: Day
        /// Seconds after local midnight (of the offset in force before the change).
        var time: Int64
    }

    let standard: Int64
    let daylight: (offset: Int64, start: Change, end: Change)?

    init?(_ text: String) {
        var bytes = Array(text.utf8)[...]
        func name() -> Bool {
            if bytes.first == UInt8(ascii: "<") {
                guard let close = bytes.firstIndex(of: UInt8(ascii: ">")) else { return false }
                bytes = bytes[(close + 1)...]
                return true
            }
            let letters = bytes.prefix { ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") }
            guard letters.count >= 3 else { return false }
            bytes = bytes.dropFirst(letters.count)
            return true
        }
        func number() -> Int64? {
            let digits = bytes.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard !digits.isEmpty else { return nil }
            bytes = bytes.dropFirst(digits.count)
            return digits.reduce(0) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
        }
        /// [+-]hh[:mm[:ss]] in seconds.
        func duration() -> Int64? {
            var sign: Int64 = 1
            if let first = bytes.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
                sign = first == UInt8(ascii: "-") ? -1 : 1
                bytes = bytes.dropFirst()
            }
            guard let hours = number() else { return nil }
            var seconds = hours * 3600
            for scale: Int64 in [60, 1] {
                guard bytes.first == UInt8(ascii: ":") else { break }
                bytes = bytes.dropFirst()
                guard let part = number() else { return nil }
                seconds += part * scale
            }
            return sign * seconds
        }
        func change() -> Change? {
            guard bytes.first == UInt8(ascii: ",") else { return nil }
            bytes = bytes.dropFirst()
            let day: Day
            switch bytes.first {
            case UInt8(ascii: "M"):
                bytes = bytes.dropFirst()
                guard let month = number(), bytes.popFirst() == UInt8(ascii: "."), let week = number(),
                    bytes.popFirst() == UInt8(ascii: "."), let weekday = number(), (1...12).contains(month),
                    (1...5).contains(week), (0...6).contains(weekday)
                else { return nil }
                day = .monthWeekDay(month, week, weekday)
            case UInt8(ascii: "J"):
                bytes = bytes.dropFirst()
                guard let julian = number(), (1...365).contains(julian) else { return nil }
                day = .julianNoLeap(julian)
            default:
                guard let zeroBased = number(), (0...365).contains(zeroBased) else { return nil }
                day = .zeroBased(zeroBased)
            }
            var time: Int64 = 7200
            if bytes.first == UInt8(ascii: "/") {
                bytes = bytes.dropFirst()
                guard let parsed = duration() else { return nil }
                time = parsed
            }
            return Change(day: day, time: time)
        }
        guard name(), let standardWest = duration() else { return nil }
        standard = -standardWest
        guard !bytes.isEmpty else {
            daylight = nil
            return
        }
        guard name() else { return nil }
        var daylightOffset = standard + 3600
        if let first = bytes.first, first != UInt8(ascii: ",") {
            guard let west = duration() else { return nil }
            daylightOffset = -west
        }
        guard let start = change(), let end = change(), bytes.isEmpty else { return nil }
        daylight = (daylightOffset, start, end)
    }

    func offset(atUTC utc: Int64) -> Int64 {
        guard let daylight else { return standard }
        let (year, _, _) = Timestamp.civilFromDays(Timestamp.floorDivide(utc + standard, 86_400).0)
        // The changes of this year in UTC; the start is given in standard time, the end in daylight time.
        let start = Self.localSeconds(daylight.start, year: year) - standard
        let end = Self.localSeconds(daylight.end, year: year) - daylight.offset
        let inDaylight = start < end ? (utc >= start && utc < end) : !(utc >= end && utc < start)
        return inDaylight ? daylight.offset : standard
    }

    /// Local seconds since the epoch at which a change happens in `year`.
    static func localSeconds(_ change: Change, year: Int64) -> Int64 {
        let days: Int64
        switch change.day {
        case .julianNoLeap(let julian):
            let base = Timestamp.daysFromCivil(year: year, month: 1, day: 1) + julian - 1
            days = base + (Timestamp.isLeap(year) && julian >= 60 ? 1 : 0)
        case .zeroBased(let day):
            days = Timestamp.daysFromCivil(year: year, month: 1, day: 1) + day
        case .monthWeekDay(let month, let week, let weekday):
            let first = Timestamp.daysFromCivil(year: year, month: month, day: 1)
            // 1970-01-01 was a Thursday (weekday 4).
            let firstWeekday = Timestamp.floorDivide(first + 4, 7).1
            var day = first + Timestamp.floorDivide(weekday - firstWeekday, 7).1 + (week - 1) * 7
            let length = Timestamp.daysInMonth(year: year, month: month)
            while day >= first + length { day -= 7 }
            days = day
        }
        return days * 86_400 + change.time
    }
}
