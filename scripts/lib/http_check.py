"""Hostile clients against `parsl-export serve`: malformed requests, oversized headers, slowloris, slow request
bodies, more idle connections than the limit, 1000 concurrent scrapes, path traversal, non-GET methods, CONNECT and
Upgrade requests followed by a stream, HEAD lengths, HTTP/1.0, file descriptors and memory over 10 000 scrapes, the
default bind address, IPv6 URLs, a port in use.
Prints the figures; exits 1 if any check failed.

Usage: python http_check.py BINARY DB"""
import asyncio
import hashlib
import http.client
import io
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outputs  # noqa: E402

# MetricsServer.Configuration: idleTimeout 30 s, maxConnections 256; serve's --max-scrapes default is 16.
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 256
DEFAULT_PORT = 19580
# Slack on top of the idle timeout before a still-open connection counts as never closed (2 shared cores).
CLOSE_MARGIN = 10.0
# RSS growth allowed over 10 000 scrapes after warm-up. Leaking 1 KiB per scrape already adds 10 MB, and a leaked
# body (tens of KiB) or request would add hundreds of MB; allocator arenas are settled by the warm-up.
RSS_GROWTH_KB = 10 * 1024
# Peak RSS growth allowed while 20 clients send 1 MiB headers at once (20 MiB): a server that buffers them grows
# by more; one that stops at its header limit (80 KiB a connection in SwiftNIO) by under 2 MiB.
OVERSIZE_PEAK_KB = 16 * 1024
# Sent after a CONNECT or Upgrade request, which end HTTP on the connection: a server that keeps reading buffers it.
STREAM_AFTER = 64 << 20
STREAM_GROWTH_KB = 16 * 1024
TEXT_TYPE = "text/plain; version=0.0.4"
OM_ACCEPT = "application/openmetrics-text; version=1.0.0"

failures = []


def check(ok, what, detail=""):
    line = f"{what}: {detail}" if detail and detail not in what else what
    print(f"  {'ok  ' if ok else 'FAIL'} {line if not ok else what}", flush=True)
    if not ok:
        failures.append(line)
    return ok


def figure(text):
    print(f"  ---- {text}", flush=True)


# ---------------------------------------------------------------- process figures

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def settle_fds(pid, target, slack=2, wait=5.0):
    """The fd count once it is within slack of target (closing sockets takes the server a moment), or the last seen."""
    deadline = time.monotonic() + wait
    while True:
        n = fd_count(pid)
        if abs(n - target) <= slack or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def listening(pid):
    """[(address, port)] of the TCP sockets pid listens on, from /proc/net/tcp{,6} matched by socket inode."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for row in f:
                cols = row.split()
                if cols[3] != "0A" or cols[9] not in inodes:  # 0A = LISTEN
                    continue
                hexaddr, hexport = cols[1].split(":")
                raw = bytes.fromhex(hexaddr)
                # The kernel prints each 32-bit word in host (little-endian) order.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
                found.append((socket.inet_ntop(family, raw), int(hexport, 16)))
    return found


def port_in_use(port):
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for row in f:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
                    return True
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- clients

class Reply:
    def __init__(self, outcome, status=None, headers=None, body=b""):
        self.outcome, self.status, self.headers, self.body = outcome, status, headers or {}, body

    def __str__(self):
        return f"{self.status} {self.body[:60]!r}" if self.outcome == "response" else self.outcome


class _Recorded:
    """Lets http.client parse a response already read into memory."""

    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def parse_response(data, method="GET"):
    if not data:
        return Reply("closed")
    r = http.client.HTTPResponse(_Recorded(data), method=method)
    try:
        r.begin()
        body = r.read()
    except (http.client.HTTPException, ValueError) as e:
        return Reply(f"not HTTP ({type(e).__name__}: {data[:40]!r})")
    return Reply("response", r.status, {k.lower(): v for k, v in r.getheaders()}, body)


def raw(port, data, method="GET", timeout=5.0, half_close=False):
    """Sends the bytes as they are and reads one response. outcome: response, closed (EOF or reset before any
    response), timeout (neither answer nor close), or not HTTP."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while a huge request was still going out; what it answered, if anything, is read below
        except socket.timeout:
            pass  # the server stopped reading (a header limit); read what it says
        r = http.client.HTTPResponse(s, method=method)
        try:
            r.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            return Reply("closed")
        except socket.timeout:
            return Reply("timeout")
        except http.client.HTTPException as e:
            return Reply(f"not HTTP ({type(e).__name__})")
        headers = {k.lower(): v for k, v in r.getheaders()}
        try:
            body = r.read()
        except (socket.timeout, http.client.IncompleteRead, ConnectionResetError) as e:
            # A head came but the body never ended: no usable answer for the client.
            framing = {k: headers[k] for k in ("content-length", "transfer-encoding") if k in headers} or "no framing"
            return Reply(f"{r.status} head ({framing}), body unfinished after {timeout:.0f} s ({type(e).__name__})",
                         r.status, headers)
        return Reply("response", r.status, headers, body)
    finally:
        s.close()


def stream_after(port, head, total):
    """Sends head, waits for the answer's head (as a tunnelling client would), then sends up to total bytes as fast
    as the server takes them. (bytes sent, whether the server ended the connection: reset or broken pipe, as
    opposed to taking everything or stalling)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    sent, chunk = 0, b"a" * 65536
    try:
        s.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = s.recv(65536)
            if not data:
                break
            answer += data
        while sent < total:
            sent += s.send(chunk)
        return sent, False
    except (BrokenPipeError, ConnectionResetError):
        return sent, True
    except socket.timeout:
        return sent, False
    finally:
        s.close()


def scrape(port, timeout=5.0, accept=None):
    """(status, content type, body, seconds) of one GET /metrics on a new connection."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/metrics", headers={"Accept": accept} if accept else {})
        r = c.getresponse()
        body = r.read()
        return r.status, r.getheader("Content-Type", ""), body, time.monotonic() - t0
    finally:
        c.close()


def valid_exposition(body, content_type):
    """None if prometheus_client's parser for the announced format reads every sample, else the error."""
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/openmetrics-text"):
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
        elif content_type.startswith(TEXT_TYPE):
            from prometheus_client.parser import text_string_to_metric_families
        else:
            return f"content type {content_type!r}"
        n = sum(len(list(f.samples)) for f in text_string_to_metric_families(text))
        return None if n else "no samples"
    except Exception as e:  # noqa: BLE001 - any parser error is the finding
        return f"{type(e).__name__}: {e}"


class Server(outputs.Server):
    def __init__(self, binary, db, listen=None):
        argv = [binary, "serve", db] + (["--listen", listen] if listen else [])
        super().__init__(argv)
        m = re.match(r"http://(.+):(\d+)/metrics", self.url or "")
        self.host, self.port = (m.group(1), int(m.group(2))) if m else (None, None)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None


# ---------------------------------------------------------------- phases

def phase_leaks(srv):
    print("fd and memory over 10 000 sequential scrapes", flush=True)
    # Warm-up: the first full read, allocator arenas, NIO's pools.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body, _ = scrape(srv.port)
        if status == 200 and re.search(rb"^parsl_export_initial_read_done 1", body, re.M):
            break
        time.sleep(0.2)
    else:
        check(False, "initial read finished within 30 s")
    for _ in range(1000):
        scrape(srv.port)
    time.sleep(0.5)  # let the last connections close
    fd0, rss0 = fd_count(srv.pid), status_kb(srv.pid, "VmRSS")
    t0 = time.monotonic()
    bad = {}
    size = 0
    for i in range(10_000):
        status, _, body, _ = scrape(srv.port)
        if status != 200:
            bad[status] = bad.get(status, 0) + 1
        size = len(body)
    elapsed = time.monotonic() - t0
    fd1 = settle_fds(srv.pid, fd0)
    rss1 = status_kb(srv.pid, "VmRSS")
    figure(f"10 000 scrapes in {elapsed:.1f} s ({10_000 / elapsed:.0f}/s), body {size} bytes")
    figure(f"fds {fd0} -> {fd1}; VmRSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB ({(rss1 - rss0) / 1024:+.1f} MB)")
    check(not bad, "every sequential scrape answered 200", str(bad))
    check(abs(fd1 - fd0) <= 2, "fd count flat (+-2)", f"{fd0} -> {fd1}")
    check(rss1 - rss0 < RSS_GROWTH_KB, f"RSS growth < {RSS_GROWTH_KB // 1024} MB", f"{(rss1 - rss0) / 1024:.1f} MB")
    return fd0


def phase_concurrent(srv, n=1000):
    print(f"{n} concurrent scrapes", flush=True)

    async def one(i):
        # Every fourth asks for OpenMetrics, as Prometheus does.
        accept = f"Accept: {OM_ACCEPT}\r\n" if i % 4 == 0 else ""
        request = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n".encode()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", srv.port), 60)
            writer.write(request)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 60)  # Connection: close -> until EOF
            writer.close()
            return parse_response(data)
        except Exception as e:  # noqa: BLE001 - a refused, reset or hung connection is a finding
            return Reply(f"error {type(e).__name__}")

    async def all_at_once():
        return await asyncio.gather(*(one(i) for i in range(n)))

    t0 = time.monotonic()
    replies = asyncio.run(all_at_once())
    elapsed = time.monotonic() - t0
    counts = {}
    for r in replies:
        key = r.status if r.outcome == "response" else r.outcome
        counts[key] = counts.get(key, 0) + 1
    parsed, invalid, seen = 0, [], set()
    for r in replies:
        if r.status != 200:
            continue
        digest = hashlib.sha256(r.body).digest()
        if digest in seen:  # identical bodies need parsing once
            continue
        seen.add(digest)
        parsed += 1
        problem = valid_exposition(r.body, r.headers.get("content-type", ""))
        if problem:
            invalid.append(problem)
    no_retry = sum(1 for r in replies if r.status == 503 and "retry-after" not in r.headers)
    figure(f"{n} scrapes in {elapsed:.1f} s: {counts}; {parsed} distinct bodies parsed")
    check(set(counts) <= {200, 503}, "every response is 200 or 503", str(counts))
    check(counts.get(200, 0) > 0, "some scrapes served")
    check(not invalid, "every 200 body parses with prometheus_client", "; ".join(invalid[:3]))
    check(no_retry == 0, "503 answers carry Retry-After", f"{no_retry} without")
    still_serving(srv, "the concurrent scrapes")
    return counts


def still_serving(srv, what):
    if not srv.alive():
        _, lines = srv.stop(signal.SIGTERM, timeout=1)
        cause = [l for l in lines if "runtime failure" in l or "Fatal error" in l or " crashed:" in l] or lines[-3:]
        return check(False, f"server alive after {what}", f"exited with {srv.proc.returncode}: {cause[:3]}")
    try:
        status, _, _, _ = scrape(srv.port)
    except Exception as e:  # noqa: BLE001
        status = repr(e)
    return check(status == 200, f"/metrics still served after {what}", str(status))


def phase_malformed(srv):
    print("malformed requests -> 4xx or closed, never a crash", flush=True)
    rng = random.Random(8)
    tls_hello = bytes.fromhex("16030100a5010000a10303") + bytes(rng.randrange(256) for _ in range(160))
    cases = [
        ("random bytes 1", bytes(rng.randrange(256) for _ in range(64)) + b"\r\n\r\n"),
        ("random bytes 2", bytes(rng.randrange(256) for _ in range(4096)) + b"\r\n\r\n"),
        ("random printable", "".join(chr(rng.randrange(32, 127)) for _ in range(300)).encode() + b"\r\n\r\n"),
        ("NUL bytes", b"\x00" * 64 + b"\r\n\r\n"),
        ("TLS ClientHello on the plain port", tls_hello),
        ("HTTP/0.9 style", b"GET /metrics\r\n\r\n"),
        ("method only", b"GET\r\n\r\n"),
        ("missing target", b"GET  HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("bad version token", b"GET /metrics HTPT/1.1\r\nHost: x\r\n\r\n"),
        ("version 9.9", b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("lowercase method", b"get /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("unknown method", b"FROB /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("NUL in target", b"GET /met\x00rics HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a response sent as a request", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("header without colon", b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n"),
        ("empty header name", b"GET /metrics HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"),
        ("space in header name", b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"),
        ("space before colon", b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("separator in header name", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX(y): v\r\n\r\n"),
        ("NUL in header value", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n"),
        ("bare CR in header value", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n"),
        ("obs-fold first line", b"GET /metrics HTTP/1.1\r\n folded: x\r\nHost: x\r\n\r\n"),
        ("negative Content-Length", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        ("huge Content-Length", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        ("two Content-Lengths",
         b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ("Content-Length and chunked",
         b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("bad chunk size", b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"),
    ]
    for name, data in cases:
        r = raw(srv.port, data)
        # 505 is the precise answer to an unsupported version; any other 4xx or a close is fine.
        ok = r.outcome == "closed" or (r.outcome == "response" and (400 <= r.status < 500 or r.status == 505))
        check(ok, f"{name} -> 4xx or closed (got {r})", str(r))
        still_serving(srv, name)
    # Requests that are only unfinished, not wrong: the server may wait for more, so the client ends its side.
    for name, data in [("empty lines then EOF", b"\r\n\r\n"), ("half a request line then EOF", b"GET /met")]:
        r = raw(srv.port, data, half_close=True)
        check(r.outcome == "closed" or (r.outcome == "response" and 400 <= r.status < 500),
              f"{name} -> 4xx or closed (got {r})", str(r))
    # A valid request followed by garbage in the same packet: the first is answered, the garbage is not.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n\x01\x02garbage\xff\r\n\r\n")
    first = http.client.HTTPResponse(s)
    first.begin()
    first.read()
    try:
        second = http.client.HTTPResponse(s)
        second.begin()
        after = f"{second.status}"
        ok = 400 <= second.status < 500
    except (http.client.RemoteDisconnected, ConnectionResetError):
        after, ok = "closed", True
    except socket.timeout:
        after, ok = "timeout", False
    s.close()
    check(first.status == 200 and ok, f"valid request + garbage -> 200 then 4xx or closed (got {first.status}, {after})")
    still_serving(srv, "pipelined garbage")


def phase_oversized(srv):
    print("oversized request heads -> 400/414/431 or closed, bounded memory", flush=True)
    limit_codes = {400, 413, 414, 431}

    def head_with(header=b"", target=b"/metrics"):
        return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n"

    def refused(r):
        return r.outcome == "closed" or (r.outcome == "response" and r.status in limit_codes)

    # 64 KiB is below SwiftNIO's default head limit (80 KiB), so serving it is as correct as refusing it.
    r = raw(srv.port, head_with(b"X-Big: " + b"a" * (64 << 10) + b"\r\n"))
    check(refused(r) or (r.outcome == "response" and r.status == 200), f"64 KiB header -> 200 or refused (got {r})")
    figure(f"64 KiB header: {r.outcome} {r.status or ''}")
    still_serving(srv, "64 KiB header")
    cases = [
        ("128 KiB header", head_with(b"X-Big: " + b"a" * (128 << 10) + b"\r\n")),
        ("1 MiB header", head_with(b"X-Big: " + b"a" * (1 << 20) + b"\r\n")),
        ("1 MiB of small headers", head_with(b"X-a: b\r\n" * ((1 << 20) // 8))),
        ("1 MiB header name", head_with(b"X" * (1 << 20) + b": v\r\n")),
        ("1 MiB target", head_with(target=b"/metrics?" + b"a" * (1 << 20))),
    ]
    for name, data in cases:
        r = raw(srv.port, data, timeout=10)
        check(refused(r), f"{name} -> 400/414/431 or closed (got {r})", str(r))
        still_serving(srv, name)
    peak0, rss0 = status_kb(srv.pid, "VmHWM"), status_kb(srv.pid, "VmRSS")
    results = [None] * 20
    data = head_with(b"X-Big: " + b"a" * (1 << 20) + b"\r\n")

    def send(i):
        results[i] = raw(srv.port, data, timeout=20)
    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak1, rss1 = status_kb(srv.pid, "VmHWM"), status_kb(srv.pid, "VmRSS")
    figure(f"20 x 1 MiB header at once: peak RSS {peak0 / 1024:.1f} -> {peak1 / 1024:.1f} MB, "
           f"RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB")
    check(all(refused(r) for r in results), "20 x 1 MiB header at once -> refused or closed",
          str(sorted({str(r) for r in results})))
    check(peak1 - peak0 < OVERSIZE_PEAK_KB, f"peak RSS growth < {OVERSIZE_PEAK_KB // 1024} MB",
          f"{(peak1 - peak0) / 1024:.1f} MB")
    still_serving(srv, "20 x 1 MiB header")


def phase_traversal(srv, db):
    print("path traversal -> 404 or 400, never a file", flush=True)
    port = srv.port
    targets = [
        "/../../etc/passwd", "/../../../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e/",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/..%2f..%2fetc%2fpasswd", "/metrics/../../", "/metrics/../../etc/passwd",
        "/metrics/..%2f..%2fetc%2fpasswd", "/./../etc/passwd", "//etc/passwd", "/%2fetc%2fpasswd",
        "/..\\..\\etc\\passwd", "/%c0%ae%c0%ae/etc/passwd", "/etc/passwd%00/metrics",
        "/proc/self/environ", "/" + db.lstrip("/"), "/%2f" + db.lstrip("/").replace("/", "%2f"), "/metrics/",
        f"http://127.0.0.1:{port}/../../etc/passwd", f"http://127.0.0.1:{port}/etc/passwd",
        "http://evil.example/etc/passwd", "file:///etc/passwd", f"http://127.0.0.1:{port}/%2e%2e/%2e%2e/etc/passwd",
    ]
    # What a leaked file would contain: /etc/passwd, the environment, or the SQLite database itself.
    secrets = [b"root:", b"PATH=", b"SQLite format 3"]
    for target in targets:
        r = raw(port, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("latin-1"))
        leaked = [s for s in secrets if s in r.body]
        ok = (r.outcome == "response" and r.status in (400, 404) and not leaked) or r.outcome == "closed"
        check(ok, f"GET {target} -> 404/400 (got {r})", f"{r}, leaked {leaked}" if leaked else str(r))
    # RFC 9112 3.2.2: a server must accept the absolute form, so this one is the metrics (or a refusal).
    r = raw(port, f"GET http://127.0.0.1:{port}/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    ok = r.outcome == "response" and (r.status in (400, 404) or (r.status == 200 and b"parsl_export_" in r.body))
    check(ok, f"absolute-form /metrics -> metrics or 400/404 (got {r.outcome} {r.status})", str(r))
    still_serving(srv, "path traversal")


def phase_methods(srv):
    print("methods -> 405 with Allow, HEAD without a body", flush=True)
    port = srv.port
    for path in ("/metrics", "/"):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
            body = b"" if method in ("OPTIONS", "TRACE") else b"x=1"
            r = raw(port, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Echo-Probe: secret-token\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            allow = {m.strip() for m in r.headers.get("allow", "").split(",")}
            ok = r.outcome == "response" and r.status == 405 and "GET" in allow and b"secret-token" not in r.body
            check(ok, f"{method} {path} -> 405 with Allow: GET (got {r.status} Allow {r.headers.get('allow')!r})",
                  str(r))
        # CONNECT with a path as target, and with the authority form RFC 9110 gives it: not a proxy, never 2xx.
        for target in (path, f"127.0.0.1:{port}"):
            r = raw(port, f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            allow = r.headers.get("allow", "")
            if target == path:
                ok = r.outcome == "closed" or (r.outcome == "response" and (
                    (r.status == 405 and "GET" in allow) or r.status == 400))
                want = "405 with Allow (or 400/closed)"
            else:
                ok = r.outcome == "closed" or (r.outcome == "response" and 400 <= r.status < 500)
                want = "4xx or closed"
            check(ok, f"CONNECT {target} -> {want} (got {r})", str(r))
        r = raw(port, f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), method="HEAD")
        check(r.outcome == "response" and r.status == 200 and r.body == b"", f"HEAD {path} -> 200, no body",
              str(r))
    r = raw(port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(r.outcome == "response" and r.status == 200 and r.headers.get("content-type", "").startswith(TEXT_TYPE),
          "GET /metrics -> 200 text 0.0.4", str(r))
    # After CONNECT or a request with Upgrade, SwiftNIO's decoder parses nothing more and buffers what arrives: the
    # server must answer and end the connection, not read on. Peak RSS, as a buffer freed at the close would not
    # show in RSS afterwards.
    peak0 = status_kb(srv.pid, "VmHWM")
    for name, head in [("CONNECT", f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
                       ("GET with Upgrade", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                                            "Upgrade: websocket\r\n\r\n")]:
        sent, ended = stream_after(port, head.encode(), STREAM_AFTER)
        figure(f"{name} then a stream: {'connection ended' if ended else 'connection kept'} after "
               f"{sent / (1 << 20):.1f} MiB")
        check(ended, f"{name} then {STREAM_AFTER >> 20} MiB -> connection ended", f"{sent >> 20} MiB taken")
    peak1 = status_kb(srv.pid, "VmHWM")
    figure(f"peak RSS {peak0 / 1024:.1f} -> {peak1 / 1024:.1f} MB")
    check(peak1 - peak0 < STREAM_GROWTH_KB, f"peak RSS growth < {STREAM_GROWTH_KB // 1024} MB",
          f"{(peak1 - peak0) / 1024:.1f} MB")
    still_serving(srv, "methods")


def phase_slow_bodies(srv):
    """More clients than the connection limit, each starting a request body: each must be answered
    and closed at once, not held while the body trickles in, or they take every connection."""
    n = MAX_CONNECTIONS + 44
    print(f"{n} clients starting a 1 MB request body (more than the {MAX_CONNECTIONS} connections allowed)", flush=True)
    # Not the first phase's baseline: connections an earlier phase's clients left open are still waiting for them.
    fd0 = fd_count(srv.pid)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(f"{'POST' if i % 2 else 'GET'} /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Content-Length: 1000000\r\n\r\na".encode())
        socks.append(s)
    deadline = time.monotonic() + 10
    outcomes = {}
    try:
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                r = http.client.HTTPResponse(s)
                r.begin()
                r.read()
                key = f"{r.status} then {'closed' if s.recv(1) == b'' else 'open'}"
            except socket.timeout:
                key = "still open after 10 s"
            except (ConnectionResetError, http.client.RemoteDisconnected):
                key = "closed without an answer"
            outcomes[key] = outcomes.get(key, 0) + 1
        # The clients keep their sockets open: only the server's close frees the connections.
        try:
            status, _, _, seconds = scrape(srv.port, timeout=5)
        except Exception as e:  # noqa: BLE001
            status, seconds = repr(e), float("nan")
    finally:
        for s in socks:
            s.close()
    figure(f"{n} slow bodies: {outcomes}; a scrape meanwhile: {status} in {seconds * 1000:.0f} ms")
    check(set(outcomes) <= {"405 then closed", "413 then closed"}, "every slow body -> 405/413, then closed",
          str(outcomes))
    check(status == 200 and seconds < 1.0, "a scrape while they hold their sockets -> 200 in < 1 s",
          f"{status} in {seconds:.2f} s")
    fd1 = settle_fds(srv.pid, fd0)
    check(abs(fd1 - fd0) <= 2, "server fds back to the baseline after slow bodies (+-2)", f"{fd0} -> {fd1}")


class SlowClients:
    """Connections that send slowly or not at all, watched from a thread until the server closes each of them."""

    def __init__(self, port):
        self.port = port
        self.clients = []
        self.stop = threading.Event()

    def add(self, kind, first, trickle=b"", until=0.0, read_response=False):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        now = time.monotonic()
        if first:
            s.sendall(first)
        if read_response:
            r = http.client.HTTPResponse(s)
            r.begin()
            r.read()
        s.setblocking(False)
        self.clients.append({"kind": kind, "sock": s, "opened": now, "last_sent": time.monotonic(),
                             "trickle": trickle, "trickle_until": now + until, "closed": None})

    def run(self, deadline):
        while not self.stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            for c in self.clients:
                if c["closed"] is not None:
                    continue
                try:
                    while True:  # drain what the server says (an error answer), EOF means closed
                        data = c["sock"].recv(65536)
                        if not data:
                            c["closed"] = time.monotonic()
                            break
                except BlockingIOError:
                    pass
                except OSError:
                    c["closed"] = time.monotonic()
                if c["closed"] is None and c["trickle"] and time.monotonic() < c["trickle_until"]:
                    try:
                        c["sock"].send(c["trickle"])
                        c["last_sent"] = time.monotonic()
                    except BlockingIOError:
                        pass
                    except OSError:
                        c["closed"] = time.monotonic()
            if all(c["closed"] is not None for c in self.clients):
                return
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))  # one byte a second

    def close_all(self):
        for c in self.clients:
            c["sock"].close()


def phase_slow(srv, fd0, during):
    """Slowloris and idle connections; `during` runs after the attack window, while the server closes them."""
    print("slowloris: 200 connections, one header byte a second", flush=True)
    slow = SlowClients(srv.port)
    attack = 10.0
    forever = 3600.0
    head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Loris: "
    for _ in range(200):
        slow.add("slowloris (trickles 10 s, then silent)", head, b"a", attack)
    for _ in range(5):
        slow.add("header trickler (never stops)", head, b"a", forever)
    slow.add("slow body (POST, Content-Length 1 MB, a byte a second)",
             b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n", b"a", forever)
    slow.add("idle (sends nothing)", b"")
    slow.add("half a request line", b"GET /met")
    slow.add("keep-alive, idle after its response", b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
             read_response=True)
    started = min(c["opened"] for c in slow.clients)
    deadline = started + attack + IDLE_TIMEOUT + CLOSE_MARGIN + 2
    watcher = threading.Thread(target=slow.run, args=(deadline,), daemon=True)
    watcher.start()
    # During the attack: a normal scrape every 0.25 s, timed.
    latencies, errors, held = [], [], 0
    while time.monotonic() < started + attack:
        try:
            status, _, _, seconds = scrape(srv.port, timeout=5)
            latencies.append(seconds)
            if status != 200:
                errors.append(status)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        held = max(held, fd_count(srv.pid) - fd0)
        time.sleep(0.25)
    worst = max(latencies) if latencies else float("nan")
    figure(f"during the attack: {len(latencies)} scrapes, worst {worst * 1000:.0f} ms, median "
           f"{sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms; server held {held} extra fds")
    check(held >= 200, "the 200 attack connections were accepted (server fds rose by >= 200)", f"+{held}")
    check(not errors, "every scrape during the attack answered 200", str(errors[:3]))
    check(latencies and worst < 1.0, "every scrape during the attack answered in < 1 s", f"worst {worst:.2f} s")
    during()
    watcher.join()
    slow.close_all()
    print("slow and idle connections closed by the server", flush=True)
    kinds = {}
    for c in slow.clients:
        kinds.setdefault(c["kind"], []).append(c)
    for kind, group in kinds.items():
        # The server may time a connection from its opening or from its last byte; either way it must end it within
        # the idle timeout (plus slack) of the later of the two.
        late = [c for c in group if c["closed"] is None
                or c["closed"] - max(c["opened"], c["last_sent"] if c["trickle_until"] - c["opened"] < forever
                                     else c["opened"]) > IDLE_TIMEOUT + CLOSE_MARGIN]
        closed = [c["closed"] - c["opened"] for c in group if c["closed"] is not None]
        span = f"closed after {min(closed):.1f}-{max(closed):.1f} s" if closed else "none closed"
        figure(f"{kind}: {len(group)} connections, {span}")
        never = sum(1 for c in late if c["closed"] is None)
        check(not late, f"{kind}: closed within {IDLE_TIMEOUT:.0f} s (+{CLOSE_MARGIN:.0f} s slack)",
              f"{len(late)} of {len(group)} late, {never} still open after {time.monotonic() - started:.0f} s")
    fd_end = settle_fds(srv.pid, fd0)
    figure(f"fds after the slow connections: {fd_end} (baseline {fd0})")
    check(abs(fd_end - fd0) <= 2, "server fds back to the baseline after slow clients (+-2)", f"{fd0} -> {fd_end}")
    return worst


def phase_crowd(srv):
    """More idle and slow-header connections than the connection limit, some reconnecting as soon as they are
    closed: scrapes must still be answered at once (the server closes the connections idle the longest)."""
    print(f"crowd: {MAX_CONNECTIONS + 100} idle and half-sent connections, reconnecting, then scrapes", flush=True)
    stop = threading.Event()
    opened = [0]

    def crowd(kind, count):
        socks = []
        while not stop.is_set():
            socks = [c for c in socks if c.fileno() >= 0]
            while len(socks) < count and not stop.is_set():
                try:
                    c = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                    if kind == "half":
                        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    c.setblocking(False)
                    socks.append(c)
                    opened[0] += 1
                except OSError:
                    time.sleep(0.05)
            # A connection the server closed reads as EOF: drop it, and reconnect next round.
            for c in socks:
                try:
                    if c.recv(1) == b"":
                        c.close()
                except BlockingIOError:
                    pass
                except OSError:
                    c.close()
            time.sleep(0.05)
        for c in socks:
            c.close()

    threads = [threading.Thread(target=crowd, args=("idle", MAX_CONNECTIONS), daemon=True),
               threading.Thread(target=crowd, args=("half", 100), daemon=True)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    latencies, errors = [], []
    for _ in range(20):
        try:
            status, _, _, seconds = scrape(srv.port, timeout=5)
            latencies.append(seconds)
            if status != 200:
                errors.append(status)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    worst = max(latencies) if latencies else float("nan")
    figure(f"crowd: {opened[0]} connections opened, {len(latencies)} of 20 scrapes answered, worst "
           f"{worst * 1000:.0f} ms")
    check(not errors and len(latencies) == 20, "every scrape among idle and half-sent connections answered 200",
          str(errors[:3]))
    check(latencies and worst < 2.0, "every scrape among idle connections answered in < 2 s", f"worst {worst:.2f} s")
    still_serving(srv, "crowd")


def phase_framing(srv):
    """HEAD says how long GET's body is; an HTTP/1.0 request without keep-alive gets its answer and the close."""
    print("HEAD lengths and HTTP/1.0", flush=True)
    port = srv.port
    for path in ("/", "/metrics"):
        get = raw(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = raw(port, f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), method="HEAD")
        length = int(head.headers.get("content-length", "-1"))
        # /metrics changes between two scrapes (its scrape duration), by a few bytes at most.
        close = length == len(get.body) if path == "/" else abs(length - len(get.body)) < 64
        check(head.outcome == "response" and head.body == b"" and length > 0 and close,
              f"HEAD {path}: Content-Length {length}, GET's body {len(get.body)} bytes", str(head))
    for request, want_close in [(b"GET /metrics HTTP/1.0\r\n\r\n", True),
                                (b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
                                (b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False)]:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        t0 = time.monotonic()
        s.sendall(request)
        data, closed = b"", False
        s.settimeout(3)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
        except socket.timeout:
            pass
        s.close()
        elapsed = time.monotonic() - t0
        answered = data.startswith(b"HTTP/1.1 200")
        label = request.split(b"\r\n")[0].decode() + (" keep-alive" if b"keep-alive" in request else
                                                          " close" if b"close" in request else "")
        if want_close:
            check(answered and closed and elapsed < 2, f"{label}: answered, then closed ({elapsed:.2f} s)",
                  f"answered {answered}, closed {closed}")
        else:
            check(answered and not closed, f"{label}: answered, connection kept", f"answered {answered}, "
                  f"closed {closed}")


def phase_listen(binary, db):
    """The URL of an IPv6 address in brackets; a port in use is one line and exit 73; a wildcard bind warns."""
    print("listen: IPv6 URL, port in use, wildcard warning", flush=True)
    port = free_port()
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
        ipv6 = True
    except OSError:
        ipv6 = False
    if ipv6:
        srv = Server(binary, db, f"[::1]:{port}")
        try:
            check(srv.url == f"http://[::1]:{port}/metrics", f"--listen [::1]:{port} prints a bracketed URL",
                  str(srv.lines[-2:]))
            if srv.url:
                c = http.client.HTTPConnection("::1", port, timeout=5)
                c.request("GET", "/metrics")
                check(c.getresponse().status == 200, "scrape over IPv6 -> 200")
                c.close()
        finally:
            srv.stop(signal.SIGTERM)
    else:
        figure("no IPv6 loopback here: the bracketed URL is not checked")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        p = subprocess.run([binary, "serve", db, "--listen", f"127.0.0.1:{busy}"], capture_output=True, timeout=30)
        lines = [l for l in p.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
        # The serve log's timestamped lines (the file read while binding) are not errors.
        errors = [l for l in lines if not re.match(r"\d{4}-\d\d-\d\dT", l)]
        check(p.returncode == 73 and len(errors) == 1 and "in use" in errors[0],
              "a port in use: exit 73 and one error line saying so", f"rc {p.returncode}: {lines[:3]}")
    srv = Server(binary, db, f"0.0.0.0:{free_port()}")
    try:
        check(any("warning" in l and "every interface" in l for l in srv.lines),
              "--listen 0.0.0.0 warns that the metrics are open to every interface", str(srv.lines[:2]))
    finally:
        srv.stop(signal.SIGTERM)


def phase_replaced(binary, db):
    """The file renamed over by one that is not a database: the last good values stay, with database_up 0."""
    print("replaced: the database renamed over by an unreadable file", flush=True)
    import shutil
    import tempfile
    work = tempfile.mkdtemp(prefix="http-replaced-")
    path = os.path.join(work, "monitoring.db")
    shutil.copyfile(db, path)
    srv = Server(binary, path, "127.0.0.1:0")
    try:
        def samples():
            status, _, body, _ = scrape(srv.port)
            lines = [l for l in body.decode("utf-8").splitlines() if l and not l.startswith("#")]
            return status, dict(l.rsplit(" ", 1) for l in lines)
        deadline = time.monotonic() + 20
        status, good = samples()
        while good.get("parsl_export_initial_read_done") != "1" and time.monotonic() < deadline:
            time.sleep(0.2)
            status, good = samples()
        check(status == 200 and good.get("parsl_export_database_up") == "1", "replaced: first scrape reads the file")
        with open(path + ".new", "wb") as f:
            f.write(b"not a database, long enough to be mistaken for one" * 100)
        os.rename(path + ".new", path)
        time.sleep(0.5)
        status, kept = samples()
        series = {k: v for k, v in good.items() if k.startswith("parsl_") and not k.startswith("parsl_export_")}
        lost = [k for k, v in series.items() if kept.get(k) != v]
        check(status == 200 and kept.get("parsl_export_database_up") == "0"
              and kept.get("parsl_export_initial_read_done") == "1" and series and not lost,
              f"replaced: all {len(series)} series kept with database_up 0, initial_read_done 1",
              f"database_up {kept.get('parsl_export_database_up')}, initial_read_done "
              f"{kept.get('parsl_export_initial_read_done')}, {len(lost)} series lost or changed, e.g. {lost[:2]}")
    finally:
        rc, lines = srv.stop(signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)
    check(any("serving the last good values" in l for l in lines), "replaced: the log says the last good values are served",
          str(lines[-3:]))


def phase_bind(binary, db):
    print("bind address", flush=True)
    runs = []
    if port_in_use(DEFAULT_PORT):
        figure(f"port {DEFAULT_PORT} is taken; checking the PORT-only form of --listen instead of the default")
    else:
        runs.append(("no --listen", None, DEFAULT_PORT))
    port = free_port()
    runs.append((f"--listen {port}", str(port), port))
    for name, listen, want_port in runs:
        srv = Server(binary, db, listen)
        try:
            socks = listening(srv.pid) if srv.url else []
            figure(f"{name}: listens on {socks}")
            check(socks == [("127.0.0.1", want_port)], f"{name}: listens on 127.0.0.1:{want_port} only", str(socks))
        finally:
            srv.stop(signal.SIGTERM)
    # The same reading must see a wildcard bind when one is asked for, or the checks above prove nothing.
    port = free_port()
    srv = Server(binary, db, f"0.0.0.0:{port}")
    try:
        socks = listening(srv.pid) if srv.url else []
        check(socks == [("0.0.0.0", port)], f"--listen 0.0.0.0:{port}: the check sees 0.0.0.0", str(socks))
    finally:
        srv.stop(signal.SIGTERM)


def main():
    binary, db = sys.argv[1], sys.argv[2]
    t_start = time.monotonic()
    srv = Server(binary, db, "127.0.0.1:0")
    if not srv.url:
        print(f"FAIL: serve did not start: {srv.lines[-5:]}")
        srv.stop(signal.SIGKILL)
        return 1
    print(f"serve pid {srv.pid} on {srv.url}", flush=True)
    figures = {}
    try:
        fd0 = phase_leaks(srv)
        counts = phase_concurrent(srv)
        phase_malformed(srv)
        phase_oversized(srv)
        phase_traversal(srv, db)
        phase_methods(srv)
        phase_slow_bodies(srv)
        phase_framing(srv)
        phase_crowd(srv)
        # Binding runs while the slow connections wait for their timeout.
        worst = phase_slow(srv, fd0, lambda: (phase_bind(binary, db), phase_listen(binary, db),
                                              phase_replaced(binary, db)))
        figures = {"503": counts.get(503, 0), "200": counts.get(200, 0), "worst": worst}
    finally:
        alive = srv.alive()
        rc, lines = srv.stop(signal.SIGTERM)
    check(alive, "server alive at the end")
    check(rc == 0, "SIGTERM -> exit 0", f"rc {rc}")
    odd = [l for l in lines if re.search(r"fatal|crash|panic|signal|error", l, re.I)]
    check(not odd, "no error lines on stderr", "; ".join(odd[:3]))
    print(f"served 10 000 measured sequential (after 1 000 warm-up) + {figures.get('200', 0)} concurrent scrapes ({figures.get('503', 0)} x 503), "
          f"worst scrape latency under slowloris {figures.get('worst', float('nan')) * 1000:.0f} ms, "
          f"{time.monotonic() - t_start:.0f} s in all", flush=True)
    if failures:
        print(f"{len(failures)} FAILED:")
        for f in failures:
            print(f"  {f}")
        return 1
    print("all HTTP checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
