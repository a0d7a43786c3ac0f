"""A minimal Chrome DevTools Protocol client for headless Chromium, loopback only.

Chromium picks its own debugging port (--remote-debugging-port=0, read back from DevToolsActivePort), so several
checks can run at once on a shared machine. The browser and its temporary profile are removed on close(), also
when the caller fails.
"""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket  # websocket-client


class ChromeError(RuntimeError):
    pass


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise ChromeError("no chromium on PATH (apt-get install -y --no-install-recommends chromium)")


class Chrome:
    def __init__(self, start_timeout: float = 30.0, call_timeout: float = 300.0):
        self.profile = tempfile.mkdtemp(prefix="parsl-export-chromium-")
        self.proc = subprocess.Popen(
            [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "--remote-allow-origins=*",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        try:
            self._connect(start_timeout, call_timeout)
        except BaseException:
            self.close()
            raise
        self.seq = 0
        self.events = []

    def _connect(self, start_timeout: float, call_timeout: float) -> None:
        port_file = pathlib.Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + start_timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChromeError(f"chromium exited with status {self.proc.returncode} at start")
            try:
                port = int(port_file.read_text().split()[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as response:
                    tabs = json.load(response)
                page = next(t for t in tabs if t.get("type") == "page")
                self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=call_timeout,
                                                      suppress_origin=True)
                return
            except (OSError, ValueError, IndexError, StopIteration, websocket.WebSocketException) as error:
                last_error = error
                time.sleep(0.1)
        raise ChromeError(f"chromium did not open its debugging port in {start_timeout:.0f} s ({last_error})")

    def call(self, method: str, **params):
        self.seq += 1
        self.ws.send(json.dumps({"id": self.seq, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.seq:
                if "error" in message:
                    raise ChromeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def eval(self, expression: str):
        """Evaluates JavaScript (awaiting a promise) and returns its value as JSON-compatible data."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise ChromeError(details.get("exception", {}).get("description") or details.get("text") or str(details))
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        """Polls `expression` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.eval(expression)
            except ChromeError:
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise ChromeError(f"timed out after {timeout:.0f} s waiting for {what}")

    def exceptions(self):
        return [e["params"]["exceptionDetails"].get("exception", {}).get("description", "")[:500]
                for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
