"""The checks of check-package.sh that need Python (auditwheel's report, an HTTP scrape).

usage:
  package_check.py policy WHEEL               auditwheel's policy for WHEEL is the tag in its name, no external libs
  package_check.py serve DB PROM -- CMD...    CMD serve DB answers one scrape equal to the PROM file; the process
                                              is the packaged binary itself (exec'd); SIGTERM ends it with 0
Prints one line per check; exits 1 with the cause when a check fails.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "prom"))
from promtools import CheckFailed, free_port, http, promtool_check, samples  # noqa: E402


def policy(wheel):
    auditwheel = os.path.join(os.path.dirname(sys.executable), "auditwheel")
    result = subprocess.run([auditwheel, "show", "--json", wheel], capture_output=True, text=True)
    if result.returncode != 0:
        raise CheckFailed(f"auditwheel show {wheel}: rc={result.returncode}\n{result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    tag = os.path.basename(wheel)[: -len(".whl")].split("-")[-1]
    external = report["external_libs"]
    if external:
        raise CheckFailed(f"{wheel}: links libraries outside every manylinux policy: {', '.join(sorted(external))}")
    if report["overall_tag"] != tag:
        raise CheckFailed(f"{wheel}: auditwheel's policy is {report['overall_tag']}, the name says {tag}")
    libraries = ", ".join(sorted(report["versioned_symbols"]))
    print(f"auditwheel: {os.path.basename(wheel)} is {report['overall_tag']} (system libraries: {libraries})")


def serve(db, prom_file, command):
    port = free_port()
    process = subprocess.Popen([*command, "serve", db, "--listen", f"127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while True:
            if process.poll() is not None:
                raise CheckFailed(f"serve exited {process.returncode}: {process.stderr.read().decode()[-1000:]}")
            try:
                status, headers, body = http(f"http://127.0.0.1:{port}/metrics", timeout=2)
                if status == 200 and b"\nparsl_export_initial_read_done 1\n" in body:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise CheckFailed("serve did not finish its initial read in 30 s")
            time.sleep(0.05)
        # Every wrapper on the way (env, unshare's shell, the Python entry point) replaced itself: the process
        # started is the binary, so signals reach it and its exit code is the caller's.
        running = os.path.basename(os.readlink(f"/proc/{process.pid}/exe"))
        if running != "parsl-export":
            raise CheckFailed(f"serve runs as {running}, not as the parsl-export binary")
        promtool_check(body, "the scraped body")
        with open(prom_file, "rb") as f:
            from_file = samples(f.read())
        scraped = samples(body)

        def parsl(series):
            return {key: value for key, value in series.items() if not key[0].startswith("parsl_export_")}

        if parsl(scraped) != parsl(from_file):
            differ = sorted(set(parsl(scraped).items()) ^ set(parsl(from_file).items()))[:5]
            raise CheckFailed(f"scrape differs from {prom_file}: {differ}")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        if code != 0:
            raise CheckFailed(f"serve exited {code} on SIGTERM: {process.stderr.read().decode()[-1000:]}")
        print(f"serve: one scrape, promtool clean, {len(parsl(scraped))} series equal to {os.path.basename(prom_file)}; "
              "the process is the binary itself; SIGTERM -> exit 0")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def main(argv):
    try:
        if argv[:1] == ["policy"] and len(argv) == 2:
            policy(argv[1])
        elif argv[:1] == ["serve"] and len(argv) > 4 and argv[3] == "--":
            serve(argv[1], argv[2], argv[4:])
        else:
            sys.exit(__doc__)
    except CheckFailed as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
