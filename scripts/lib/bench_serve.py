"""Measures serve: first answer, initial read, warm scrape latency and memory across many scrapes."""
import argparse
import glob
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def value(body, name):
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=10_000)
    args = parser.parse_args()
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "parsl-export", "bench")
    os.makedirs(cache, exist_ok=True)
    # Reuse scripts/bench's database of the same size when there is one.
    made = sorted(glob.glob(os.path.join(cache, f"tasks-{args.tasks}-s1-*.db")))
    db = made[-1] if made else os.path.join(cache, f"serve-{args.tasks}.db")
    if not os.path.exists(db):
        subprocess.run([os.path.join(ROOT, "scripts", "synth-db"), "-o", db, "--tasks", str(args.tasks)], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    started = time.monotonic()
    server = subprocess.Popen([os.environ["PARSL_EXPORT"], "serve", db, "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = done = None
    try:
        while time.monotonic() - started < 300:
            try:
                body = urllib.request.urlopen(url, timeout=30).read().decode()
            except OSError:
                time.sleep(0.02)
                continue
            now = time.monotonic() - started
            first = first if first is not None else now
            if value(body, "parsl_export_initial_read_done") == 1:
                done = now
                break
            time.sleep(0.05)
        rss_before = rss_kb(server.pid)
        latencies = []
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            urllib.request.urlopen(url, timeout=30).read()
            latencies.append((time.perf_counter() - t0) * 1000)
        rss_after = rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"database: {db} ({os.path.getsize(db) / 1e6:.0f} MB, {args.tasks} tasks)")
    print(f"first answer: {first:.2f} s after start; initial read done: {done:.2f} s")
    print(f"warm scrape: median {statistics.median(latencies):.1f} ms, p99 "
          f"{sorted(latencies)[int(len(latencies) * 0.99) - 1]:.1f} ms over {len(latencies)} scrapes")
    print(f"RSS: {rss_before / 1024:.1f} MB after the initial read, {rss_after / 1024:.1f} MB after the scrapes")


if __name__ == "__main__":
    sys.exit(main())
