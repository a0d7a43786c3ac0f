"""What a trace of a run must contain, worked out from the monitoring database with plain SQL and Python, without
the exporter's code; plus the checks on the raw JSON that the two viewers do not make themselves.

The rules mirrored here are the trace layout's documented ones (parsl-export trace --help):
- every try is one slice: category "try" when it ran (try.task_try_time_running is set), "try.not_run" otherwise;
- a try that ran has a "waiting" phase when running > launched and a "running" phase when it ends after
  max(launched, running); a try with no returned time in an unfinished run ends at the last timestamp of the run
  and is marked unfinished;
- a try that ran on a block, whose resource rows name a worker pid (the largest, if several), also has an
  "execution" slice (max(launched, running) → its end) on that worker's lane, taken in start order (start, task,
  try) when the lane is free strictly before it; otherwise it has none;
- every status row is one instant (category "status");
- every dependency edge (task.task_depends) between two tries in the trace is one flow, unless the dependency's
  last try is unfinished (nothing left it yet);
- block rows become one slice per change of status per block;
- resource rows of tries on a block give one resident-memory sample each, and one CPU-rate sample per later sample
  of the same worker whose time and cumulative CPU did not go backwards;
- node rows, replayed in time order per block (a manager counts while active, with its worker count), give a
  sample of the "managers" counter wherever the number of active managers changes and one of the "workers"
  counter wherever the sum of their workers changes (a counter holds its value until the next sample).
"""
import calendar
import datetime
import gzip
import json
import sqlite3
from collections import defaultdict

TERMINAL = {"exec_done", "memo_done", "failed", "dep_fail", "done"}


def load_trace(path):
    """Returns (text, parsed object); strict JSON, gzip or not."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    return text, json.loads(text)


def micros(value):
    """Parsl's naive 'YYYY-MM-DD HH:MM:SS[.ffffff]' as microseconds, the clock taken as UTC (like the exporter)."""
    if value is None:
        return None
    moment = datetime.datetime.fromisoformat(str(value).replace("T", " "))
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return calendar.timegm(moment.timetuple()) * 1_000_000 + moment.microsecond


def _rows(db, sql, args=()):
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error) or "no such column" in str(error):
            return []
        raise


def expected(db_path, run_id):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    run = _rows(db, "select * from workflow where run_id = ?", (run_id,))
    if not run:
        raise SystemExit(f"{db_path}: no run {run_id}")
    run = run[0]
    run_open = run["time_completed"] is None

    tries = [dict(r) for r in _rows(db, "select * from try where run_id = ?", (run_id,))]
    statuses = [dict(r) for r in _rows(db, "select * from status where run_id = ?", (run_id,))]
    resources = [dict(r) for r in _rows(db, "select * from resource where run_id = ?", (run_id,))]
    blocks = [dict(r) for r in _rows(db, "select * from block where run_id = ?", (run_id,))]
    nodes = [dict(r) for r in _rows(db, "select * from node where run_id = ?", (run_id,))]
    tasks = [dict(r) for r in _rows(db, "select * from task where run_id = ?", (run_id,))]

    seen = [micros(run["time_began"]), micros(run["time_completed"])]
    for t in tries:
        seen += [micros(t.get("task_try_time_launched")), micros(t.get("task_try_time_running")),
                 micros(t.get("task_try_time_returned"))]
    seen += [micros(s["timestamp"]) for s in statuses]
    seen += [micros(r["timestamp"]) for r in resources]
    seen += [micros(b["timestamp"]) for b in blocks]
    seen += [micros(n.get("timestamp") or n.get("reg_time")) for n in nodes]
    seen = [s for s in seen if s is not None]
    last_seen = max(seen) if seen else 0

    by_try = defaultdict(list)
    for s in statuses:
        by_try[(s["task_id"], s.get("try_id"))].append(s)

    worker_pid = {}
    for r in resources:
        pid = r.get("psutil_process_pid")
        if pid is not None:
            key = (r["task_id"], r.get("try_id"))
            worker_pid[key] = max(worker_pid.get(key, pid), pid)

    e = defaultdict(int)
    executions = []           # (start, task, try, worker lane, from, end) of tries that ran on a block with a pid
    in_trace = set()          # task ids with at least one try slice
    last_try = {}             # task id -> (try id, unfinished) of its last try in the trace
    block_of_try = {}         # (task, try) -> (executor, block) for tries that ran on a block
    hosts = defaultdict(set)  # (executor, block) -> hostnames
    executors_without_block = set()
    for t in tries:
        key = (t["task_id"], t["try_id"])
        launched = micros(t.get("task_try_time_launched"))
        running = micros(t.get("task_try_time_running"))
        returned = micros(t.get("task_try_time_returned"))
        ran = running is not None
        times = [x for x in (launched, running, returned) if x is not None]
        states = [s["task_status_name"] for s in by_try.get(key, [])]
        if not ran:
            times += [micros(s["timestamp"]) for s in by_try.get(key, [])]
        if not times:
            continue
        in_trace.add(t["task_id"])
        unfinished = not any(s in TERMINAL or s == "fail_retryable" for s in states)
        start = min(times)
        if returned is not None and ran:
            end, is_open = max(returned, start), False
        elif unfinished and run_open:
            end, is_open = max(last_seen, start), True
        else:
            end, is_open = max(times), unfinished and returned is None
        e["open_tries"] += is_open
        if t["try_id"] >= last_try.get(t["task_id"], (-1, False))[0]:
            last_try[t["task_id"]] = (t["try_id"], is_open)
        if not ran:
            e["tries_not_run"] += 1
            continue
        e["tries_ran"] += 1
        if launched is not None and running > launched:
            e["waiting_phases"] += 1
        running_from = running if launched is None else max(launched, running)
        if end > running_from:
            e["running_phases"] += 1
        if t.get("block_id") is not None:
            block = (t["task_executor"], t["block_id"])
            block_of_try[key] = block
            if key in worker_pid and end > running_from:
                executions.append((start, t["task_id"], t["try_id"], (block, worker_pid[key]), running_from, end))
            if t.get("hostname"):
                hosts[block].add(t["hostname"])
        else:
            executors_without_block.add(t["task_executor"])

    busy_until = {}
    for _, _, _, lane, begin, end in sorted(executions, key=lambda x: x[:3]):
        if lane not in busy_until or busy_until[lane] < begin:
            busy_until[lane] = end
            e["executions"] += 1
    e["tries_with_worker"] = len(executions)

    e["status_instants"] = sum(1 for s in statuses if s["timestamp"] is not None)

    for task in tasks:
        if task["task_id"] not in in_trace:
            continue
        for piece in str(task.get("task_depends") or "").split(","):
            piece = piece.strip()
            if piece.isdigit() and int(piece) in in_trace and not last_try[int(piece)][1]:
                e["dependency_edges"] += 1

    by_block = defaultdict(list)
    for b in blocks:
        by_block[(b["executor_label"], b["block_id"])].append(b)
    for rows in by_block.values():
        rows.sort(key=lambda r: micros(r["timestamp"]))
        previous = None
        for r in rows:
            if r["status"] != previous:
                e["block_slices"] += 1
            previous = r["status"]

    workers = defaultdict(list)
    for r in resources:
        block = block_of_try.get((r["task_id"], r.get("try_id")))
        if block is None or r.get("psutil_process_pid") is None:
            continue
        if r.get("psutil_process_memory_resident") is not None:
            e["rss_samples"] += 1
        user, system = r.get("psutil_process_time_user"), r.get("psutil_process_time_system")
        if user is not None and system is not None:
            workers[(block, r["psutil_process_pid"])].append((micros(r["timestamp"]), user + system))
    for samples in workers.values():
        samples.sort(key=lambda s: s[0])
        for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
            if t1 > t0 and c1 >= c0:
                e["cpu_samples"] += 1

    # Rows without a block id count under None, as the exporter keys them; the oldest rows have no block at all.
    timed = [n for n in nodes if micros(n.get("timestamp")) is not None or micros(n.get("reg_time")) is not None]
    timed.sort(key=lambda n: micros(n.get("timestamp")) if micros(n.get("timestamp")) is not None
               else micros(n.get("reg_time")))
    managers, written = defaultdict(dict), {}
    for n in timed:
        block = n.get("block_id")
        if n.get("active") in (None, 1, "1", True, "true", "True"):
            managers[block][n.get("uid")] = int(n.get("worker_count") or 0)
        else:
            managers[block].pop(n.get("uid"), None)
        value = (len(managers[block]), sum(managers[block].values()))
        last = written.get(block)
        e["node_samples"] += last is None or last[0] != value[0]
        e["worker_samples"] += last is None or last[1] != value[1]
        written[block] = value

    # Node rows name a block but not its executor; rows of the oldest schema name neither.
    node_blocks = {n.get("block_id") for n in nodes}
    block_processes = {}
    for block in set(block_of_try.values()) | set(by_block):
        block_processes[block] = hosts.get(block, set())
    for block_id in node_blocks:
        if not any(b == block_id for _, b in block_processes):
            block_processes[(None, block_id)] = set()
    for (executor, block_id), names in list(block_processes.items()):
        if not names:
            block_processes[(executor, block_id)] = {n["hostname"] for n in nodes if n.get("block_id") == block_id}

    e["block_processes"] = block_processes
    e["executors_without_block"] = executors_without_block
    e["has_blocks_process"] = bool(blocks)
    e["has_not_run_process"] = e["tries_not_run"] > 0
    e["run_open"] = run_open
    return dict(e)


def expected_process_problems(names, exp):
    """Process names (list of str) against the expectation; returns problems."""
    problems = []
    names = [n for n in names if n]
    for (executor, block), host_names in sorted(exp["block_processes"].items(), key=str):
        block = "?" if block is None else block
        stem = f"block {block}" if executor is None else f"{executor} block {block}"
        matches = [n for n in names if n == stem or n.startswith(stem + " @ ")]
        if not matches:
            problems.append(f"no process named for {stem!r} (have {names})")
        elif host_names and not any(n.endswith(" @ " + h) for n in matches for h in host_names):
            problems.append(f"process {matches[0]!r} does not name its host (one of {sorted(host_names)})")
    for executor in sorted(exp["executors_without_block"]):
        if f"{executor} (no blocks)" not in names:
            problems.append(f"no process for executor {executor!r} without blocks")
    if exp["has_blocks_process"] != ("blocks" in names):
        problems.append(f"'blocks' process present: {'blocks' in names}, expected {exp['has_blocks_process']}")
    has_not_run = any(n.startswith("not run") for n in names)
    if exp["has_not_run_process"] != has_not_run:
        problems.append(f"never-ran process present: {has_not_run}, expected {exp['has_not_run_process']}")
    return problems


def structural_problems(obj):
    """Rules of the format and of Perfetto that neither viewer reports."""
    problems = []
    if not isinstance(obj, dict) or not isinstance(obj.get("traceEvents"), list):
        return ["not the JSON object form with a traceEvents list"]
    other = obj.get("otherData") or {}
    for key in ("run_id", "workflow_name", "parsl_schema_era", "exporter"):
        if key not in other:
            problems.append(f"otherData lacks {key}")
    named_processes, named_threads, sort_p, sort_t = {}, {}, set(), set()
    flow_starts, flow_ends = set(), set()
    for position, ev in enumerate(obj["traceEvents"]):
        where = f"event {position} ({ev.get('ph')} {ev.get('name')!r})"
        ph, pid, tid = ev.get("ph"), ev.get("pid"), ev.get("tid")
        if ph not in {"X", "i", "C", "M", "s", "f"}:
            problems.append(f"{where}: unexpected phase")
            continue
        if not isinstance(pid, int) or pid < 1:
            problems.append(f"{where}: pid must be a positive integer")
        if tid is not None and (not isinstance(tid, int) or tid == 0):
            problems.append(f"{where}: tid must be a non-zero integer (Perfetto folds tid 0 into the process)")
        if ph == "M":
            name = ev.get("name")
            if name == "process_name":
                if pid in named_processes:
                    problems.append(f"{where}: process {pid} named twice")
                named_processes[pid] = position
            elif name == "thread_name":
                if (pid, tid) in named_threads:
                    problems.append(f"{where}: thread {pid}/{tid} named twice")
                named_threads[(pid, tid)] = position
            elif name == "process_sort_index":
                if pid in sort_p:
                    problems.append(f"{where}: process sort index twice")
                sort_p.add(pid)
            elif name == "thread_sort_index":
                if (pid, tid) in sort_t:
                    problems.append(f"{where}: thread sort index twice")
                sort_t.add((pid, tid))
            continue
        if not isinstance(ev.get("ts"), int):
            problems.append(f"{where}: ts must be integer microseconds")
        if ph == "X" and (not isinstance(ev.get("dur"), int) or ev["dur"] < 0):
            problems.append(f"{where}: dur must be a non-negative integer")
        if pid not in named_processes:
            problems.append(f"{where}: process {pid} used before its process_name")
        uses_thread = ph in {"X", "s", "f"} or (ph == "i" and ev.get("s", "t") == "t")
        if uses_thread and (pid, tid) not in named_threads:
            problems.append(f"{where}: thread {pid}/{tid} used before its thread_name")
        if ph == "i" and ev.get("s") not in {"t", "p", "g"}:
            problems.append(f"{where}: instant without an explicit scope")
        if ph == "C" and not ev.get("args"):
            problems.append(f"{where}: counter without values")
        if ph in {"s", "f"}:
            seen = flow_starts if ph == "s" else flow_ends
            if ev.get("id") in seen:
                problems.append(f"{where}: flow id {ev.get('id')} used twice")
            seen.add(ev.get("id"))
            if ph == "f" and ev.get("bp") != "e":
                problems.append(f"{where}: flow end without bp:e")
        if len(problems) > 20:
            problems.append("(more problems not listed)")
            break
    if flow_starts != flow_ends:
        problems.append(f"{len(flow_starts ^ flow_ends)} flow ids without both ends")
    return problems


def compare(counts, exp, keys):
    """Problems for each key whose count differs from the expectation."""
    return [f"{key}: trace has {counts.get(key, 0)}, database says {exp.get(key, 0)}"
            for key in keys if counts.get(key, 0) != exp.get(key, 0)]
