#!/usr/bin/env python3
"""Writes the parsl-export wheel directly by the binary distribution format (PEP 427, metadata 2.4 with PEP 639
license files): a zip of the `parsl_export` package with the binary in `parsl_export/bin/`, its `.dist-info`, and
a RECORD of sha256 hashes. Written by hand rather than by a build backend so it works offline and the platform tag
is exactly the one measured from the binary. Files are sorted and dated SOURCE_DATE_EPOCH (else 1980), so the same
inputs give the same bytes."""
import argparse
import base64
import hashlib
import os
import time
import zipfile

PACKAGE_SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parsl_export")


def record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--platform", required=True, help="e.g. manylinux_2_34_x86_64")
    parser.add_argument("--summary", required=True)
    parser.add_argument("--readme", required=True)
    parser.add_argument("--license-file", action="append", default=[], help="copied to .dist-info/licenses/")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--level", type=int, default=9, help="deflate level (9: smallest)")
    args = parser.parse_args()

    name, distribution = "parsl-export", "parsl_export"
    tag = f"py3-none-{args.platform}"
    dist_info = f"{distribution}-{args.version}.dist-info"

    files = []  # (archive path, bytes, executable)
    for source in sorted(os.listdir(PACKAGE_SOURCES)):
        if not source.endswith(".py"):
            continue
        with open(os.path.join(PACKAGE_SOURCES, source), "rb") as f:
            text = f.read().replace(b"@VERSION@", args.version.encode())
        files.append((f"{distribution}/{source}", text, False))
    with open(args.binary, "rb") as f:
        files.append((f"{distribution}/bin/parsl-export", f.read(), True))

    with open(args.readme, "rb") as f:
        readme = f.read().decode()
    license_names = [os.path.basename(path) for path in args.license_file]
    metadata = "".join(
        [
            "Metadata-Version: 2.4\n",
            f"Name: {name}\n",
            f"Version: {args.version}\n",
            f"Summary: {args.summary}\n",
            "License-Expression: Apache-2.0\n",
            *[f"License-File: {license_name}\n" for license_name in license_names],
            "Requires-Python: >=3.8\n",
            "Classifier: Environment :: Console\n",
            "Classifier: Operating System :: POSIX :: Linux\n",
            "Classifier: Topic :: System :: Monitoring\n",
            "Description-Content-Type: text/markdown\n",
            "\n",
            readme,
        ]
    )
    files.append((f"{dist_info}/METADATA", metadata.encode(), False))
    wheel = f"Wheel-Version: 1.0\nGenerator: parsl-export scripts/package\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files.append((f"{dist_info}/WHEEL", wheel.encode(), False))
    entry_points = f"[console_scripts]\n{name} = {distribution}.__main__:main\n"
    files.append((f"{dist_info}/entry_points.txt", entry_points.encode(), False))
    files.append((f"{dist_info}/top_level.txt", f"{distribution}\n".encode(), False))
    for path, license_name in zip(args.license_file, license_names):
        with open(path, "rb") as f:
            files.append((f"{dist_info}/licenses/{license_name}", f.read(), False))

    record_path = f"{dist_info}/RECORD"
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data, _ in files) + f"{record_path},,\n"
    files.append((record_path, record.encode(), False))

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    date_time = time.gmtime(max(epoch, 315532800))[:6]
    wheel_path = os.path.join(args.out_dir, f"{distribution}-{args.version}-{tag}.whl")
    with zipfile.ZipFile(wheel_path + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=args.level) as archive:
        for path, data, executable in files:
            info = zipfile.ZipInfo(path, date_time)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=args.level)
    os.replace(wheel_path + ".tmp", wheel_path)
    print(wheel_path)


if __name__ == "__main__":
    main()
