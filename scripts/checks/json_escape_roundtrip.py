#!/usr/bin/env python3
"""Checks the Swift JSON string escaper against Python's own json parser.

usage: json_escape_roundtrip.py CORPUS [MIN_CASES]

CORPUS is written by the Swift test TraceEventEscapeTests.writeRoundTripCorpus (TRACE_JSON_ROUNDTRIP_FILE=CORPUS):
one case per line, `hex(input bytes) TAB json-literal`. Each literal must parse (strictly: no control characters
inside strings) to the input decoded as UTF-8 with U+FFFD for ill-formed sequences, which is the rule the escaper
implements. Exits 1 on the first mismatch, or when the corpus holds fewer than MIN_CASES (default 100000) cases.
"""
import json
import sys


def main() -> int:
    path = sys.argv[1]
    minimum = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    decoder = json.JSONDecoder(strict=True)
    cases = invalid = 0
    seed = "?"
    with open(path, "rb") as corpus:
        for number, raw in enumerate(corpus, 1):
            if raw.startswith(b"#"):
                seed = raw.decode().strip()
                continue
            # Split on the first tab only: the literal may not contain a raw tab, but check that below.
            hexpart, sep, literal = raw.rstrip(b"\n").partition(b"\t")
            if not sep:
                print(f"{path}:{number}: malformed line ({seed})", file=sys.stderr)
                return 1
            source = bytes.fromhex(hexpart.decode("ascii"))
            expected = source.decode("utf-8", "replace")
            try:
                text = literal.decode("utf-8")  # the escaper's output must itself be valid UTF-8
                got = decoder.decode(text)
            except ValueError as error:
                print(f"{path}:{number}: {error} for input {source!r} ({seed})", file=sys.stderr)
                return 1
            if got != expected:
                print(f"{path}:{number}: got {got!r}, expected {expected!r} ({seed})", file=sys.stderr)
                return 1
            cases += 1
            try:
                source.decode("utf-8")
            except UnicodeDecodeError:
                invalid += 1
    if cases < minimum:
        print(f"{path}: only {cases} cases, expected at least {minimum}", file=sys.stderr)
        return 1
    print(f"json escape round trip: {cases} cases equal ({invalid} with invalid UTF-8), {seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
