"""Every panel of `parsl-export dashboard` queried on a real Prometheus that scraped `serve`: each target's
expression (Grafana's variables filled in as Grafana would) must return data."""
import json
import subprocess
import time
import urllib.parse

from promtools import CheckFailed, http


def expressions(binary, labels="app"):
    out = subprocess.run([binary, "dashboard", "--labels", labels], capture_output=True, check=True).stdout
    dashboard = json.loads(out)
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def check_dashboard(binary, prometheus, start, end, labels="app", step=2, every_target=True):
    """Range queries over [start, end]; returns the number of panels checked. `every_target` False: a panel passes
    when one of its targets has data (finished runs have no series in the "now" node gauges)."""
    panels, empty = set(), {}
    for title, expr in expressions(binary, labels):
        query = expr.replace("$__rate_interval", "10s").replace("$run_id", ".*")
        url = f"http://127.0.0.1:{prometheus.port}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)})
        status, _, body = http(url)
        data = json.loads(body)
        if data.get("status") != "success":
            raise CheckFailed(f"dashboard panel {title!r}: {query}: {data.get('error')}")
        if any(series["values"] for series in data["data"]["result"]):
            panels.add(title)
        elif every_target:
            raise CheckFailed(f"dashboard panel {title!r}: {query} returned no data")
        else:
            empty.setdefault(title, []).append(query)
    missing = {t: q for t, q in empty.items() if t not in panels}
    if missing:
        raise CheckFailed(f"dashboard panels with no data: {missing}")
    return len(panels)


def wait_and_check(binary, prometheus, since, labels="app"):
    """After Prometheus has a few scrapes (rate() needs two points in its window); finished runs, so per panel."""
    time.sleep(max(0.0, since + 12 - time.time()))
    return check_dashboard(binary, prometheus, since, time.time(), labels, every_target=False)
