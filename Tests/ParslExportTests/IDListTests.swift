import Testing

@testable import ParslExport

@Suite("Id lists")
struct IDListTests {
    @Test(arguments: [
        ("139,140", [Int64(139), 140]),
        ("", []),
        ("7", [7]),
        (" 12 , 15 ", [12, 15]),
        ("1 2,3", [3]),  // two numbers without a comma is not a number
        ("4,x,5", [4, 5]),
        ("9,,10", [9, 10]),
        ("1234567890123456789,6", [6]),  // past 18 digits: not a task id
    ])
    func parse(text: String, ids: [Int64]) {
        var text = text
        #expect(text.withUTF8 { IDList.parse($0) } == ids)
    }
}
