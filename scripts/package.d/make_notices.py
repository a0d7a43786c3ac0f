#!/usr/bin/env python3
"""Writes THIRD-PARTY-NOTICES for the packaged binary: the license of every library compiled into it (the C
libraries' Debian copyright files, the Swift runtime's, and each resolved Swift package's LICENSE and NOTICE).
Identical license texts are printed once, under the names of all that use them."""
import argparse
import os

SEPARATOR = "\n" + "=" * 100 + "\n"


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().strip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--c-library", nargs=2, action="append", default=[], metavar=("NAME", "COPYRIGHT_FILE"))
    parser.add_argument("--swift-runtime-license", required=True)
    parser.add_argument("--checkouts", required=True, help="SwiftPM's checkouts directory")
    parser.add_argument("--extra", action="append", default=[], help="a line naming a runtime with no notice to copy")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    users_by_text = {}  # license text -> names, in first-seen order
    for name, path in args.c_library:
        users_by_text.setdefault(read(path), []).append(name)
    users_by_text.setdefault(read(args.swift_runtime_license), []).append(
        "the Swift runtime, standard library, Foundation and Dispatch"
    )
    notices = []
    for package in sorted(os.listdir(args.checkouts)):
        directory = os.path.join(args.checkouts, package)
        for entry in sorted(os.listdir(directory)):
            upper = entry.upper()
            if upper.startswith("LICENSE") or upper.startswith("COPYING"):
                users_by_text.setdefault(read(os.path.join(directory, entry)), []).append(f"Swift package {package}")
            elif upper.startswith("NOTICE"):
                notices.append((package, read(os.path.join(directory, entry))))

    parts = [
        "parsl-export's binary includes the following software. The Swift packages are those resolved for the build "
        "(a superset of what is linked).\n"
    ]
    parts += [f"{line}\n" for line in args.extra]
    for text, users in users_by_text.items():
        parts.append(SEPARATOR + "Used by: " + ", ".join(users) + "\n\n" + text)
    for package, text in notices:
        parts.append(SEPARATOR + f"NOTICE of Swift package {package}\n\n" + text)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("".join(parts))


if __name__ == "__main__":
    main()
