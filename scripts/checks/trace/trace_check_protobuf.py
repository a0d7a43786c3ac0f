#!/usr/bin/env python3
"""Decodes Perfetto protobuf traces packet by packet with Perfetto's own compiled protos and checks their structure.

usage: trace_check_protobuf.py trace.pftrace[.gz] ...

The protos are those the PyPI package perfetto ships (perfetto_trace_pb2, with protobuf). For each file: every
packet decodes as a TracePacket; every packet names its trusted sequence, and each sequence starts by clearing
its incremental state and setting its default clock; every event's clock is described by a ClockSnapshot of its
sequence (times on incremental clocks add up from the snapshot's value); every
interned id an event uses (event names, categories, annotation names, annotation string values) was defined
earlier in its sequence, and never redefined with another text; track uuids are unique, parents and events refer
to tracks described earlier, counters go to counter tracks and slices to the others; on every track, begins and
ends read as Perfetto reads them (sorted by time, writing order among equal times, a stack per track) pair up
exactly as written (each begin with the next end on its track), so no two slices overlap; every flow id is named
once by a slice event's flow_ids and once by a later one's terminating_flow_ids (the reader takes events in time
order, so an arrow whose end came first would be lost), and no event is a legacy one. Prints one JSON line per file; exits 1 if any check failed.
"""
import collections
import gzip
import json
import sys

from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import TracePacket, TrackEvent

CLEARED = TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
TABLES = {  # InternedData field → (what refers to it)
    "event_names": "name_iid",
    "event_categories": "category_iids",
    "debug_annotation_names": "annotation name_iid",
    "debug_annotation_string_values": "annotation string_value_iid",
}


def packets(raw):
    """The serialized packets of a Trace (field 1, length-delimited), without decoding the whole file at once."""
    offset = 0

    def varint():
        nonlocal offset
        value = shift = 0
        while True:
            byte = raw[offset]
            offset += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    while offset < len(raw):
        key = varint()
        if key != (1 << 3 | 2):
            raise ValueError(f"at byte {offset}: field {key >> 3} wire type {key & 7}, not a packet")
        length = varint()
        if offset + length > len(raw):
            raise ValueError(f"at byte {offset}: a packet of {length} bytes runs past the end")
        yield raw[offset:offset + length]
        offset += length


def check(path):
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    problems = []
    counts = collections.Counter()

    def problem(text):
        if len(problems) < 20:
            problems.append(text)
        counts["problems"] += 1

    sequences = {}  # id → {"tables": {table: {iid: text}}, "clock": id, "clocks": set}
    tracks = {}  # uuid → "counter" | "slices"
    written = collections.defaultdict(list)  # track → [(ts, order, kind)] as written
    flows = collections.defaultdict(collections.Counter)
    for order, blob in enumerate(packets(raw)):
        packet = TracePacket.FromString(blob)  # raises on anything that does not decode
        counts["packets"] += 1
        if not packet.HasField("trusted_packet_sequence_id"):
            problem(f"packet {order} names no trusted sequence")
            continue
        sequence_id = packet.trusted_packet_sequence_id
        sequence = sequences.get(sequence_id)
        if sequence is None:
            if not packet.sequence_flags & CLEARED:
                problem(f"sequence {sequence_id} does not start by clearing its incremental state")
            sequence = sequences[sequence_id] = {"tables": {t: {} for t in TABLES}, "clock": None, "clocks": {}}
        if packet.HasField("trace_packet_defaults"):
            sequence["clock"] = packet.trace_packet_defaults.timestamp_clock_id
        if packet.HasField("clock_snapshot"):
            for clock in packet.clock_snapshot.clocks:  # an incremental clock's value: its last packet's time
                sequence["clocks"][clock.clock_id] = clock.timestamp if clock.is_incremental else None
        if packet.HasField("interned_data"):
            for table in TABLES:
                for entry in getattr(packet.interned_data, table):
                    text = entry.str if table == "debug_annotation_string_values" else entry.name
                    known = sequence["tables"][table].setdefault(entry.iid, text)
                    if known != text:
                        problem(f"sequence {sequence_id}: {table} iid {entry.iid} redefined")
        if packet.HasField("track_descriptor"):
            track = packet.track_descriptor
            if track.uuid in tracks:
                problem(f"track uuid {track.uuid} described twice")
            if track.HasField("parent_uuid") and track.parent_uuid not in tracks:
                problem(f"track {track.uuid}: parent {track.parent_uuid} not described before")
            tracks[track.uuid] = "counter" if track.HasField("counter") else "slices"
            counts["tracks"] += 1
        if not packet.HasField("track_event"):
            continue
        event = packet.track_event
        counts["events"] += 1
        if not packet.HasField("timestamp"):
            problem(f"packet {order}: an event without a timestamp")
        clock = packet.timestamp_clock_id if packet.HasField("timestamp_clock_id") else sequence["clock"]
        if clock not in sequence["clocks"]:
            problem(f"sequence {sequence_id}: clock {clock} has no ClockSnapshot before use")
            continue
        time = packet.timestamp
        if sequence["clocks"][clock] is not None:  # incremental: the time since the clock's previous packet
            time = sequence["clocks"][clock] = sequence["clocks"][clock] + packet.timestamp
        tables = sequence["tables"]
        uses = [("event_names", event.name_iid)] if event.HasField("name_iid") else []
        uses += [("event_categories", iid) for iid in event.category_iids]
        for annotation in event.debug_annotations:
            uses.append(("debug_annotation_names", annotation.name_iid))
            if annotation.HasField("string_value_iid"):
                uses.append(("debug_annotation_string_values", annotation.string_value_iid))
        for table, iid in uses:
            if iid not in tables[table]:
                problem(f"packet {order}: {TABLES[table]} {iid} not interned in sequence {sequence_id} before")
        kind = tracks.get(event.track_uuid)
        if kind is None:
            problem(f"packet {order}: track {event.track_uuid} not described before")
            continue
        if event.type == TrackEvent.TYPE_COUNTER:
            counts["counters"] += 1
            if kind != "counter":
                problem(f"packet {order}: a counter value on a slice track")
            continue
        if kind == "counter":
            problem(f"packet {order}: a slice event on a counter track")
        if event.HasField("legacy_event"):
            problem(f"packet {order}: a legacy event")
            continue
        for flow_id in event.flow_ids:
            flows[flow_id]["out"] += 1
            flows[flow_id]["out_time"] = time
            flows[flow_id]["out_event"] = (event.track_uuid, order)
        for flow_id in event.terminating_flow_ids:
            flows[flow_id]["in"] += 1
            flows[flow_id]["in_time"] = time
            flows[flow_id]["in_event"] = (event.track_uuid, order)
        name = {TrackEvent.TYPE_SLICE_BEGIN: "B", TrackEvent.TYPE_SLICE_END: "E", TrackEvent.TYPE_INSTANT: "I"}.get(
            event.type)
        if name is None:
            problem(f"packet {order}: event of type {event.type}")
            continue
        written[event.track_uuid].append((time, order, name))

    # Slices: as written (each begin with the next end on its track) against as read (sorted, a stack).
    starts = {}  # (track, order) of a begin, end or instant → the start of the slice it makes or ends, as read
    for track, events in written.items():
        intended, open_begin = set(), []
        for ts, order, kind in events:
            if kind == "B":
                open_begin.append((ts, order))
            elif kind == "E":
                if not open_begin:
                    problem(f"track {track}: an end at {ts} with no begin before it")
                    continue
                begin = open_begin.pop()
                intended.add((begin, ts))
        read, stack = set(), []
        for ts, order, kind in sorted(events):
            if kind == "B":
                stack.append((ts, order))
                starts[(track, order)] = ts
            elif kind == "E" and stack:
                begin = stack.pop()
                read.add((begin, ts))
                starts[(track, order)] = begin[0]
            elif kind == "I":
                starts[(track, order)] = ts
        if open_begin or stack:
            problem(f"track {track}: {len(stack)} slices never end")
        if intended != read:
            wrong = sorted((b[0], e) for b, e in intended - read)[:3]
            problem(f"track {track}: {len(intended - read)} slices overlap another and would be read as other "
                    f"slices, e.g. (start, end) {wrong}")
        counts["slices"] += len(intended)
        counts["instants"] += sum(kind == "I" for _, _, kind in events)
    for flow_id, ends in flows.items():
        if ends["out"] != 1 or ends["in"] != 1:
            problem(f"flow {flow_id}: named by {ends['out']} flow_ids and {ends['in']} terminating_flow_ids, not one each")
        elif ends["in_time"] < ends["out_time"]:
            problem(f"flow {flow_id}: ends at {ends['in_time']}, before it starts at {ends['out_time']}")
        elif starts.get(ends["in_event"], 0) < starts.get(ends["out_event"], 0):
            # Perfetto's FlowTracker points an arrow from the earlier-starting of the two slices it joins.
            problem(f"flow {flow_id}: the slice it reaches starts at {starts.get(ends['in_event'])}, before the slice "
                    f"it leaves at {starts.get(ends['out_event'])}: Perfetto would draw it backwards")
    counts["flows"] = len(flows)
    counts["sequences"] = len(sequences)
    if not counts["events"]:
        problem("no events: nothing was checked")
    return {"file": path, "counts": dict(counts), "problems": problems}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    failed = 0
    for path in sys.argv[1:]:
        try:
            result = check(path)
        except (OSError, ValueError, IndexError) as error:  # DecodeError is a ValueError
            result = {"file": path, "problems": [f"{type(error).__name__}: {error}"]}
        result["ok"] = not result["problems"]
        failed += not result["ok"]
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
