/// Observations counted into fixed buckets, the way a histogram family is exposed.
///
/// Counts are kept per bucket (not cumulative) so that observing is one binary search and one
/// increment; ``ExpositionWriter`` makes them cumulative and derives `+Inf` and `_count` from them, so
/// the `+Inf` bucket always equals `_count`.
public struct Histogram: Sendable, Hashable {
    /// Finite upper bounds in increasing order (`+Inf` is implicit).
    public let upperBounds: [Double]
    /// `counts[i]` observations in (upperBounds[i-1], upperBounds[i]]; the last entry is above every bound.
    public private(set) var counts: [UInt64]
    /// The sum of the observations. A caller that keeps an exact total (integer microseconds, say) sets it, so
    /// that the order of the observations does not show in the last digits.
    public var sum: Double = 0

    public init(upperBounds: [Double]) {
        self.upperBounds = upperBounds
        self.counts = Array(repeating: 0, count: upperBounds.count + 1)
    }

    public var count: UInt64 { counts.reduce(0, &+) }

    /// Counts `value` in the first bucket whose bound is ≥ it. NaN is ignored: it belongs to no bucket
    /// and would poison the sum.
    public mutating func observe(_ value: Double) {
        guard !value.isNaN else { return }
        var low = 0
        var high = upperBounds.count
        while low < high {
            let mid = (low + high) / 2
            if upperBounds[mid] < value { low = mid + 1 } else { high = mid }
        }
        counts[low] &+= 1
        sum += value
    }

    /// Adds another histogram with the same bounds.
    public mutating func merge(_ other: Histogram) {
        precondition(other.upperBounds == upperBounds, "merging histograms with different bounds")
        for i in counts.indices { counts[i] &+= other.counts[i] }
        sum += other.sum
    }
}
