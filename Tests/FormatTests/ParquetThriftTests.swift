import Testing

@testable import ParquetFormat

/// Exact bytes of the compact protocol, derived by hand from thrift-compact-protocol.md.
struct ParquetThriftTests {
    private func bytes(_ body: (inout ThriftCompactWriter) -> Void) -> [UInt8] {
        var w = ThriftCompactWriter()
        body(&w)
        return w.bytes
    }

    @Test func i32ValuesAreZigzagVarints() {
        #expect(bytes { $0.writeRawI32(0) } == [0x00])
        #expect(bytes { $0.writeRawI32(1) } == [0x02])
        #expect(bytes { $0.writeRawI32(-1) } == [0x01])
        #expect(bytes { $0.writeRawI32(64) } == [0x80, 0x01])
        #expect(bytes { $0.writeRawI32(.max) } == [0xFE, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(bytes { $0.writeRawI32(.min) } == [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
    }

    @Test func i64ValuesAreZigzagVarints() {
        #expect(bytes { $0.writeRawI64(-2) } == [0x03])
        #expect(bytes { $0.writeRawI64(300) } == [0xD8, 0x04])
        #expect(
            bytes { $0.writeRawI64(.min) } == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        )
    }

    @Test func fieldHeadersUseDeltasAndLongFormPast15() {
        let out = bytes { w in
            w.structBegin()
            w.field(1, i32: 5)  // delta 1, type i32
            w.field(3, i64: 1)  // delta 2, type i64
            w.field(20, i32: 7)  // delta 17: type byte, then the id as a zigzag i16 varint
            w.field(21, i16: -3)  // back to a short header after a long one
            w.structEnd()
        }
        #expect(out == [0x15, 0x0A, 0x26, 0x02, 0x05, 0x28, 0x0E, 0x14, 0x05, 0x00])
    }

    @Test func boolFieldsLiveInTheTypeNibble() {
        let out = bytes { w in
            w.structBegin()
            w.field(1, bool: true)
            w.field(2, bool: false)
            w.structEnd()
        }
        #expect(out == [0x11, 0x12, 0x00])
    }

    @Test func i8IsOneRawByte() {
        let out = bytes { w in
            w.structBegin()
            w.field(1, i8: 64)
            w.field(2, i8: -1)
            w.structEnd()
        }
        #expect(out == [0x13, 0x40, 0x13, 0xFF, 0x00])
    }

    @Test func doubleIsEightBytesLittleEndian() {
        let out = bytes { w in
            w.structBegin()
            w.field(1, double: 1.0)
            w.structEnd()
        }
        #expect(out == [0x17, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x00])
    }

    @Test func binaryAndStringsAreLengthPrefixed() {
        let out = bytes { w in
            w.structBegin()
            w.field(1, string: "é")
            w.field(2, binary: [0xFF, 0x00])
            w.structEnd()
        }
        #expect(out == [0x18, 0x02, 0xC3, 0xA9, 0x18, 0x02, 0xFF, 0x00, 0x00])
    }

    @Test func listHeadersShortAndLong() {
        let short = bytes { w in
            w.structBegin()
            w.fieldListBegin(2, elementType: .i32, count: 3)
            w.writeRawI32(0)
            w.writeRawI32(3)
            w.writeRawI32(8)
            w.structEnd()
        }
        #expect(short == [0x29, 0x35, 0x00, 0x06, 0x10, 0x00])

        let long = bytes { w in w.listHeader(elementType: .binary, count: 20) }
        #expect(long == [0xF8, 0x14])
        let fourteen = bytes { w in w.listHeader(elementType: .struct, count: 14) }
        #expect(fourteen == [0xEC])
        let bools = bytes { w in
            w.listHeader(elementType: ThriftType.boolElement, count: 2)
            w.writeRawBool(true)
            w.writeRawBool(false)
        }
        #expect(bools == [0x22, 0x01, 0x00])
    }

    @Test func nestedStructsRestartFieldDeltas() {
        let out = bytes { w in
            w.structBegin()
            w.field(1, i32: 1)
            w.fieldStructBegin(5)
            w.field(1, i32: 2)
            w.structEnd()
            w.field(6, i32: 3)  // delta 1 from field 5 of the outer struct
            w.structEnd()
        }
        #expect(out == [0x15, 0x02, 0x4C, 0x15, 0x04, 0x00, 0x15, 0x06, 0x00])
    }

    // MARK: - Parquet structs

    @Test func timestampLogicalType() {
        let naive = bytes { LogicalType.timestampMicros(utcAdjusted: false).encode(to: &$0) }
        // TIMESTAMP (8) { isAdjustedToUTC=false, unit: TimeUnit { MICROS (2) {} } }
        #expect(naive == [0x8C, 0x12, 0x1C, 0x2C, 0x00, 0x00, 0x00, 0x00])
        let utc = bytes { LogicalType.timestampMicros(utcAdjusted: true).encode(to: &$0) }
        #expect(utc == [0x8C, 0x11, 0x1C, 0x2C, 0x00, 0x00, 0x00, 0x00])
    }

    @Test func integerLogicalTypeWritesBitWidthAsI8() {
        let out = bytes { LogicalType.integer(bitWidth: 64, signed: true).encode(to: &$0) }
        #expect(out == [0xAC, 0x13, 0x40, 0x11, 0x00, 0x00])
    }

    @Test func stringSchemaElement() {
        let element = SchemaElement(
            type: .byteArray,
            repetition: .optional,
            name: "s",
            convertedType: .utf8,
            logicalType: .string
        )
        let out = bytes { element.encode(to: &$0) }
        #expect(
            out == [
                0x15, 0x0C,  // 1: type BYTE_ARRAY (6)
                0x25, 0x02,  // 3: repetition OPTIONAL (1)
                0x18, 0x01, 0x73,  // 4: name "s"
                0x25, 0x00,  // 6: converted_type UTF8 (0)
                0x4C, 0x1C, 0x00, 0x00,  // 10: logicalType { STRING (1) {} }
                0x00,
            ]
        )
    }

    @Test func dataPageHeader() {
        let header = PageHeader(kind: .data(numValues: 3, encoding: .plain), uncompressedSize: 10, compressedSize: 12)
        let out = bytes { header.encode(to: &$0) }
        #expect(
            out == [
                0x15, 0x00,  // type DATA_PAGE
                0x15, 0x14,  // uncompressed 10
                0x15, 0x18,  // compressed 12
                0x2C,  // 5: data_page_header
                0x15, 0x06, 0x15, 0x00, 0x15, 0x06, 0x15, 0x06, 0x00,
                0x00,
            ]
        )
    }

    @Test func statisticsWithAndWithoutBounds() {
        let empty = bytes { Statistics(nullCount: 2).encode(to: &$0) }
        #expect(empty == [0x36, 0x04, 0x00])
        let full = bytes {
            Statistics(nullCount: 0, minValue: [0x61], maxValue: [0x7A], nanCount: 1).encode(to: &$0)
        }
        #expect(
            full == [
                0x36, 0x00,  // 3: null_count 0
                0x28, 0x01, 0x7A,  // 5: max_value "z"
                0x18, 0x01, 0x61,  // 6: min_value "a"
                0x11, 0x11,  // 7, 8: exact
                0x16, 0x02,  // 9: nan_count 1
                0x00,
            ]
        )
    }
}
