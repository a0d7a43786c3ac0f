/// An append-only array in fixed-size chunks: growing it never copies what is already stored and never reserves
/// more than one chunk ahead, where a plain array doubles (up to twice the memory, and both copies while it grows).
struct ChunkedArray<Element>: RandomAccessCollection {
    private static var shift: Int { 14 }
    private static var mask: Int { (1 << shift) - 1 }

    private var chunks: [[Element]] = []
    private(set) var count = 0

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    mutating func append(_ element: Element) {
        if count & Self.mask == 0 {
            var chunk: [Element] = []
            chunk.reserveCapacity(1 << Self.shift)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(element)
        count += 1
    }

    subscript(position: Int) -> Element {
        get { chunks[position >> Self.shift][position & Self.mask] }
        set { chunks[position >> Self.shift][position & Self.mask] = newValue }
    }

    mutating func removeAll() {
        chunks = []
        count = 0
    }
}
