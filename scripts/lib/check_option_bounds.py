"""Hostile values for every value-taking option of every command (see scripts/checks/check-option-bounds.sh)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BINARY, DATABASE = sys.argv[1], sys.argv[2]
VALUES = ["1e300", "-1e300", "nan", "inf", "-1", "0", "9223372036854775808", "2147483648", "", "1e-300"]
# Options whose values are names or paths, not numbers: other checks cover them.
NOT_NUMERIC = {"--output", "--mappings", "--run", "--tables", "--timezone", "--listen", "--labels", "--format",
               "--compression"}
# Each command's output arguments; {out} is a fresh directory per case.
COMMANDS = {
    "csv": ["-o", "{out}/export"], "parquet": ["-o", "{out}/export"], "trace": ["-o", "{out}/export"],
    "prometheus": ["-o", "{out}/metrics.prom"], "all": ["-o", "{out}/export"], "dataset": ["-o", "{out}/export"],
    "inspect": [], "serve": ["--listen", "127.0.0.1:0"],
}
# Fewest numeric options per command: a help text that stopped parsing must fail the check, not pass it empty.
AT_LEAST = {"csv": 4, "parquet": 3, "trace": 7, "prometheus": 5, "all": 11, "dataset": 3, "inspect": 2, "serve": 8}


def options(command):
    text = subprocess.run([BINARY, command, "--help"], capture_output=True, text=True, check=True).stdout
    found = sorted(set(re.findall(r"^\s+(--[a-z0-9-]+) <", text, re.M)) - NOT_NUMERIC)
    if len(found) < AT_LEAST[command]:
        sys.exit(f"check-option-bounds: {command}: only {len(found)} numeric options in --help: {found}")
    return found


def run(command, option, value, out):
    args = [BINARY, command, DATABASE] + [a.replace("{out}", out) for a in COMMANDS[command]] + [option, value]
    if command not in ("inspect",):
        args.append("--quiet")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if command == "serve":
        # A server that accepted its options keeps running: alive after a second is a pass.
        deadline = time.monotonic() + 1.0
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
            return 0, ""
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return "hung", ""
    return process.returncode, stderr


failures, cases = [], 0
for command in COMMANDS:
    for option in options(command):
        for value in VALUES:
            out = tempfile.mkdtemp(prefix="option-bounds.")
            try:
                code, stderr = run(command, option, value, out)
                cases += 1
                lines = stderr.strip().splitlines()
                problem = None
                if code not in (0, 64):
                    problem = f"exit {code}"
                elif code == 64 and len(lines) != 1:
                    problem = f"{len(lines)} lines on stderr"
                elif code == 64 and os.listdir(out):
                    problem = f"refused, but wrote {os.listdir(out)}"
                if problem:
                    failures.append(f"{command} {option} {value!r}: {problem}: {stderr.strip()[:200]}")
            finally:
                shutil.rmtree(out, ignore_errors=True)
for failure in failures:
    print("check-option-bounds:", failure, file=sys.stderr)
print(f"check-option-bounds: {cases} cases, {len(failures)} failed")
sys.exit(1 if failures else 0)
