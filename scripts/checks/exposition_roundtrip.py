#!/usr/bin/env python3
"""Parses the random cases written by ExpositionRoundTripTests with prometheus_client's text 0.0.4 and
OpenMetrics parsers and checks that every HELP text, label value and number comes back equal.

usage: exposition_roundtrip.py DIR   (DIR holds roundtrip.prom, roundtrip.om, roundtrip.expected)
"""
import math
import struct
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text


def unhex(token):
    assert token[0] == "x", token
    return bytes.fromhex(token[1:]).decode("utf-8")


def double(bits_hex):
    return struct.unpack(">d", int(bits_hex, 16).to_bytes(8, "big"))[0]


def same_number(parsed, expected):
    if math.isnan(expected):
        return math.isnan(parsed)
    return float(parsed) == expected


def read_text(path):
    # Bytes first: text mode would turn a raw \r inside a label value into \n.
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def main():
    directory = sys.argv[1]
    expected_lines = read_text(f"{directory}/roundtrip.expected").split("\n")
    header = expected_lines[0].split()
    seed, count = header[1], int(header[3])
    cases = [line.split(" ") for line in expected_lines[1:] if line]
    assert len(cases) == count, (len(cases), count)

    failures = []
    checked = {"help": 0, "label": 0, "number": 0}

    def check(what, ok, case, detail):
        checked[what] += 1
        if not ok and len(failures) < 20:
            failures.append(f"case {case[0]} ({case[1]}): {what} {detail}")

    for fmt, parse, path in (
        ("text", parse_text, f"{directory}/roundtrip.prom"),
        ("openmetrics", parse_om, f"{directory}/roundtrip.om"),
    ):
        families = list(parse(read_text(path)))
        if len(families) != count:
            failures.append(f"{fmt}: {len(families)} families parsed, {count} written")
        by_name = {f.name: f for f in families}
        if len(by_name) != len(families):
            failures.append(f"{fmt}: a family name came back twice (split family)")
        for case in cases:
            index, kind = case[0], case[1]
            help_text, a, b = unhex(case[2]), unhex(case[3]), unhex(case[4])
            name = f"case_{index}" if not (kind == "i" and fmt == "text") else f"case_{index}_info"
            family = by_name.get(name)
            if family is None:
                failures.append(f"{fmt}: family {name} missing")
                continue
            # HELP cannot carry surrounding whitespace in text 0.0.4; the writer trims it in both formats.
            check("help", family.documentation == help_text.strip(), case,
                  f"{fmt}: {family.documentation!r} != {help_text.strip()!r}")
            want_type = {"g": "gauge", "c": "counter", "i": "info" if fmt == "openmetrics" else "gauge",
                         "h": "histogram"}[kind]
            check("number", family.type == want_type, case, f"{fmt}: type {family.type}")
            for s in family.samples:
                check("label", s.labels.get("a") == a, case, f"{fmt}: a={s.labels.get('a')!r} != {a!r}")
                check("label", s.labels.get("b") == b, case, f"{fmt}: b={s.labels.get('b')!r} != {b!r}")
                check("number", s.timestamp is None, case, f"{fmt}: has a timestamp")
            samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
            if kind == "g":
                check("number", len(samples) == 1 and same_number(samples.get((name, None)), double(case[5])), case,
                      f"{fmt}: {samples} != {double(case[5])}")
            elif kind == "c":
                want = {(name + "_total", None): double(case[5])}
                if fmt == "openmetrics":
                    want[(name + "_created", None)] = double(case[6])
                ok = samples.keys() == want.keys() and all(same_number(samples[k], v) for k, v in want.items())
                check("number", ok, case, f"{fmt}: {samples} != {want}")
            elif kind == "i":
                check("number", samples == {(f"case_{index}_info", None): 1}, case, f"{fmt}: {samples}")
            else:
                bounds = [double(x) for x in case[5].split(",")] + [math.inf]
                counts = [int(x) for x in case[6].split(",")]
                total = 0
                buckets = [(float(le), v) for (n, le), v in samples.items() if n == name + "_bucket"]
                check("number", len(buckets) == len(bounds), case, f"{fmt}: {len(buckets)} buckets")
                for (le, value), bound, c in zip(buckets, bounds, counts):
                    total += c
                    check("number", le == bound and value == total, case, f"{fmt}: le={le} {value} != {bound} {total}")
                check("number", samples.get((name + "_count", None)) == total, case, f"{fmt}: _count")
                check("number", same_number(samples.get((name + "_sum", None)), double(case[7])), case, f"{fmt}: _sum")

    print(f"exposition round trip (seed {seed}): {count} cases x 2 formats; compared "
          f"{checked['help']} HELP texts, {checked['label']} label values, {checked['number']} numbers/types")
    if failures:
        print("FAILED:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("all equal")


if __name__ == "__main__":
    main()
