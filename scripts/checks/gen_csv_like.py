#!/usr/bin/env python3
"""Writes CSV text shaped like Parsl monitoring tables, for compression measurements.

Usage: gen_csv_like.py OUT_PATH [MEGABYTES=80] [SEED=1] [KIND=status]

KIND status: run id (one of a few UUIDs), task id, try id, state, two timestamps
`2026-11-24 23:30:36.489918`, app name, host, worker, a float (compresses to ~15 %).
KIND resource: like the resource table, mostly full-precision floats and counters, which
compress much less (~40 %). Deterministic for a seed.
"""
import random
import sys
import uuid

out_path = sys.argv[1]
megabytes = int(sys.argv[2]) if len(sys.argv) > 2 else 80
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
runs = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(4)]
apps = ["simulate", "analyze_chunk", "merge_results", "fetch_input", "train_model"]
hosts = ["nid001234", "nid001235", "login01.cluster.example.org", "worker-17"]
states = ["exec_done", "running", "launched", "pending", "failed", "memo_done", "dep_fail"]
kind = sys.argv[4] if len(sys.argv) > 4 else "status"
target = megabytes * 1_000_000
written = 0
t = 1_795_000_000.0
with open(out_path, "w", newline="") as f:
    header = ("task_id,try_id,run_id,timestamp,pid,cpu_percent,memory_percent,memory_virtual,memory_resident,"
              "disk_read,disk_write,cpu_time\r\n") if kind == "resource" else (
              "run_id,task_id,try_id,task_status_name,timestamp,end_time,app,hostname,worker,cpu_percent\r\n")
    f.write(header)
    written += len(header)
    task = 0
    while written < target:
        task += 1
        t += rng.random() * 0.01
        sec = int(t)
        start = "2026-11-24 %02d:%02d:%02d.%06d" % ((sec // 3600) % 24, (sec // 60) % 60, sec % 60, int((t % 1) * 1e6))
        end_t = t + rng.random() * 30
        sec2 = int(end_t)
        end = "2026-11-24 %02d:%02d:%02d.%06d" % ((sec2 // 3600) % 24, (sec2 // 60) % 60, sec2 % 60, int((end_t % 1) * 1e6))
        if kind == "resource":
            line = "%d,%d,%s,%s,%d,%r,%r,%d,%d,%d,%d,%r\r\n" % (
                task, rng.choice([0, 0, 0, 1]), runs[0], start, 10000 + rng.randrange(50000),
                rng.random() * 400, rng.random() * 100, rng.randrange(1 << 34), rng.randrange(1 << 32),
                rng.randrange(1 << 28), rng.randrange(1 << 28), t - 1_795_000_000 + rng.random())
        else:
            line = "%s,%d,%d,%s,%s,%s,%s,%s,%d,%s\r\n" % (
                runs[task % len(runs) if rng.random() < 0.1 else 0], task, rng.choice([0, 0, 0, 1]),
                rng.choice(states), start, end, rng.choice(apps), rng.choice(hosts), rng.randrange(64),
                round(rng.random() * 100, rng.choice([1, 2, 3])))
        f.write(line)
        written += len(line)
