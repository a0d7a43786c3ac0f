"""Helpers that run the real Prometheus consumers against exporter output, all on 127.0.0.1:
promtool (Go parser + lint), node_exporter's textfile collector, prometheus_client's two parsers, and a real
Prometheus server that scrapes a target every second and is read through its query API."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text


class CheckFailed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, accept=None, method="GET", timeout=10):
    """(status, headers, body bytes), also for 4xx/5xx."""
    request = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def promtool_check(body: bytes, what: str):
    """promtool check metrics: exit 0 and nothing printed (no parse error, no lint finding)."""
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    out = (p.stdout + p.stderr).decode(errors="replace").strip()
    if p.returncode != 0 or out:
        raise CheckFailed(f"promtool on {what}: rc={p.returncode}\n{out[:2000]}")


def samples(body: bytes, openmetrics=False):
    """{(name, sorted label items): value} parsed by prometheus_client; also checks one family per name."""
    parse = parse_openmetrics if openmetrics else parse_text
    families = list(parse(body.decode("utf-8")))
    names = [f.name for f in families]
    if len(names) != len(set(names)):
        raise CheckFailed("a family was split into two groups: " + str([n for n in names if names.count(n) > 1]))
    result = {}
    for f in families:
        for s in f.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in result:
                raise CheckFailed(f"duplicate series {key}")
            if s.timestamp is not None:
                raise CheckFailed(f"sample with a timestamp: {key}")
            result[key] = s.value
    return result


def node_exporter_textfile(prom_file: str):
    """Runs node_exporter's textfile collector on a directory holding only prom_file; returns its parsl_ lines.
    Fails unless node_textfile_scrape_error is 0 and its log has no level=error."""
    directory = tempfile.mkdtemp(prefix="textfile-")
    try:
        shutil.copy(prom_file, os.path.join(directory, "parsl.prom"))
        port = free_port()
        log_path = os.path.join(directory, "node_exporter.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                ["prometheus-node-exporter", "--collector.disable-defaults", "--collector.textfile",
                 f"--collector.textfile.directory={directory}", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            body = None
            for _ in range(100):
                try:
                    status, _, body = http(f"http://127.0.0.1:{port}/metrics", timeout=2)
                    if status == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            if body is None:
                raise CheckFailed("node_exporter did not answer")
            text = body.decode()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        log_text = open(log_path).read()
        if "level=error" in log_text:
            raise CheckFailed("node_exporter logged errors:\n" + log_text[-2000:])
        if "node_textfile_scrape_error 0" not in text.splitlines():
            raise CheckFailed("node_textfile_scrape_error is not 0")
        return [line for line in text.splitlines() if line.startswith("parsl_")]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class PrometheusServer:
    """A real Prometheus on 127.0.0.1 scraping `targets` ({job: "host:port"}) every second."""

    def __init__(self, targets):
        self.directory = tempfile.mkdtemp(prefix="prometheus-")
        self.port = free_port()
        config = os.path.join(self.directory, "prometheus.yml")
        jobs = "".join(
            f"  - job_name: {json.dumps(job)}\n    static_configs:\n      - targets: [{json.dumps(target)}]\n"
            for job, target in targets.items())
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + jobs)
        self.log = open(os.path.join(self.directory, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.directory}/tsdb",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, expr):
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, _, body = http(url)
        data = json.loads(body)
        if data.get("status") != "success":
            raise CheckFailed(f"query {expr}: {data}")
        return data["data"]["result"]

    def wait_for(self, expr, timeout=30):
        """The query's result once it has one (Prometheus needs ~6 s for its first scrape)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                result = self.query(expr)
                if result:
                    return result
            except (OSError, CheckFailed, ValueError):
                pass
            time.sleep(0.25)
        raise CheckFailed(f"Prometheus never returned {expr}; targets: {self.targets()}")

    def targets(self):
        try:
            status, _, body = http(f"http://127.0.0.1:{self.port}/api/v1/targets")
            return [(t["labels"].get("job"), t["health"], t.get("lastError")) for t in json.loads(body)["data"]["activeTargets"]]
        except Exception as e:  # noqa: BLE001 - diagnostics only
            return str(e)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
