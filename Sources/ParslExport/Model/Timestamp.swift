/// Parsl's timestamps: `YYYY-MM-DD HH:MM:SS.ffffff` text (SQLAlchemy's SQLite DateTime), naive local time of the
/// host that wrote them. Parsed by hand from the bytes: DateFormatter is ~800× slower and drops microseconds.
public enum Timestamp {
    /// A parsed timestamp: wall-clock microseconds counted as if UTC, and the offset (seconds east of UTC) when
    /// the text carried one.
    public struct Parsed: Equatable, Sendable {
        public var wallClockMicros: Int64
        public var offsetSeconds: Int32?
    }

    /// Accepts `YYYY-MM-DD[ T]HH:MM[:SS[.f{1,9}]][Z|±HH[:]MM|±HH]`; nil for anything else.
    public static func parse(_ text: UnsafeBufferPointer<UInt8>) -> Parsed? {
        if let canonical = parseCanonical(text) { return canonical }
        var position = 0
        let count = text.count

        func digits(_ n: Int) -> Int64? {
            guard position + n <= count else { return nil }
            var value: Int64 = 0
            for i in position..<(position + n) {
                let d = text[i] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                value = value * 10 + Int64(d)
            }
            position += n
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard position < count, text[position] == byte else { return false }
            position += 1
            return true
        }

        guard let year = digits(4), expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
            let day = digits(2)
        else { return nil }
        guard position < count, text[position] == UInt8(ascii: " ") || text[position] == UInt8(ascii: "T") else {
            return nil
        }
        position += 1
        guard let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2) else { return nil }
        var second: Int64 = 0
        var micros: Int64 = 0
        if expect(UInt8(ascii: ":")) {
            guard let s = digits(2) else { return nil }
            second = s
            if expect(UInt8(ascii: ".")) {
                var scale: Int64 = 100_000
                var seen = 0
                while position < count, case let d = text[position] &- UInt8(ascii: "0"), d < 10 {
                    micros += Int64(d) * scale  // digits past the sixth only truncate
                    scale /= 10
                    seen += 1
                    position += 1
                }
                guard seen > 0 else { return nil }
            }
        }
        guard (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(day), hour < 24,
            minute < 60, second < 61
        else { return nil }

        var offset: Int32?
        if position < count {
            let sign = text[position]
            if sign == UInt8(ascii: "Z") {
                position += 1
                offset = 0
            } else if sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                position += 1
                guard let oh = digits(2), oh < 24 else { return nil }
                var om: Int64 = 0
                if position < count {
                    _ = expect(UInt8(ascii: ":"))
                    guard let m = digits(2), m < 60 else { return nil }
                    om = m
                }
                let seconds = Int32(oh * 3600 + om * 60)
                offset = sign == UInt8(ascii: "-") ? -seconds : seconds
            } else {
                return nil
            }
        }
        guard position == count else { return nil }

        let days = daysFromCivil(year: year, month: month, day: day)
        let total = ((days * 24 + hour) * 60 + minute) * 60 + second
        return Parsed(wallClockMicros: total * 1_000_000 + micros, offsetSeconds: offset)
    }

    /// The shape Parsl writes, `YYYY-MM-DD HH:MM:SS` with or without `.ffffff`, read without the general
    /// parser's bookkeeping (millions of these per export); nil for anything else, which `parse` then reads.
    @inline(__always)
    private static func parseCanonical(_ text: UnsafeBufferPointer<UInt8>) -> Parsed? {
        let count = text.count
        guard count == 26 || count == 19, text[4] == UInt8(ascii: "-"), text[7] == UInt8(ascii: "-"),
            text[10] == UInt8(ascii: " "), text[13] == UInt8(ascii: ":"), text[16] == UInt8(ascii: ":"),
            count == 19 || text[19] == UInt8(ascii: ".")
        else { return nil }
        var bad: UInt8 = 0
        @inline(__always) func digit(_ index: Int) -> Int64 {
            let d = text[index] &- UInt8(ascii: "0")
            bad |= d > 9 ? 1 : 0
            return Int64(d)
        }
        @inline(__always) func two(_ index: Int) -> Int64 { digit(index) * 10 + digit(index + 1) }
        let year = two(0) * 100 + two(2)
        let month = two(5)
        let day = two(8)
        let hour = two(11)
        let minute = two(14)
        let second = two(17)
        var micros: Int64 = 0
        if count == 26 { micros = ((two(20) * 100) + two(22)) * 100 + two(24) }
        guard bad == 0, (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month), hour < 24,
            minute < 60, second < 61
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let total = ((days * 24 + hour) * 60 + minute) * 60 + second
        return Parsed(wallClockMicros: total * 1_000_000 + micros, offsetSeconds: nil)
    }

    public static func parse(_ text: String) -> Parsed? {
        var copy = text
        return copy.withUTF8 { parse($0) }
    }

    /// Formats microseconds as `YYYY-MM-DD HH:MM:SS.ffffff` (26 bytes), appending to `out`. Years outside
    /// 0…9999 keep their last four digits: Parsl never writes them, and the width stays fixed.
    public static func format(_ micros: Int64, into out: inout [UInt8]) {
        let (seconds, fraction) = floorDivide(micros, 1_000_000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civilFromDays(days)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 26) { text in
            @inline(__always) func put(_ value: Int64, at position: Int, width: Int) {
                var v = value < 0 ? -value : value
                var index = position + width - 1
                while index >= position {
                    text[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
                    v /= 10
                    index -= 1
                }
            }
            put(year, at: 0, width: 4)
            text[4] = UInt8(ascii: "-")
            put(month, at: 5, width: 2)
            text[7] = UInt8(ascii: "-")
            put(day, at: 8, width: 2)
            text[10] = UInt8(ascii: " ")
            put(secondOfDay / 3600, at: 11, width: 2)
            text[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, at: 14, width: 2)
            text[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, at: 17, width: 2)
            text[19] = UInt8(ascii: ".")
            put(fraction, at: 20, width: 6)
            out.append(contentsOf: UnsafeBufferPointer(text))
        }
    }

    public static func format(_ micros: Int64) -> String {
        var out: [UInt8] = []
        format(micros, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let (q, r) = a.quotientAndRemainder(dividingBy: b)
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
