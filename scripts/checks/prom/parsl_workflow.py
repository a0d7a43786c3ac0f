"""A short real Parsl workflow with monitoring, run inside the Parsl venv by live_parsl.py (about 30 s):
HighThroughputExecutor on 127.0.0.1 with a LocalProvider scaling 1 -> 3 blocks and back in, resource monitoring
every second, retries, failures, dependencies and dependency failures, a join app, memoization.

usage: parsl_workflow.py MONITORING_DB RUN_DIR"""
import os
import sys
import time

import parsl
from parsl.app.app import join_app, python_app
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.monitoring.monitoring import MonitoringHub
from parsl.providers import LocalProvider


@python_app
def sleep_task(seconds, tag=0):
    import time
    time.sleep(seconds)
    return tag


@python_app
def cpu_task(n):
    return sum(i * i for i in range(n))


@python_app
def mem_task(mb, seconds):
    import time
    block = bytearray(mb * 1024 * 1024)
    time.sleep(seconds)
    return len(block)


@python_app
def add(a, b):
    return a + b


@python_app
def always_fail(i):
    raise ValueError(f"deliberate failure {i}")


@python_app
def flaky(marker_dir, i):
    import os
    marker = os.path.join(marker_dir, f"flaky-{i}")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError(f"flaky {i}: first try fails")
    return i


@python_app(cache=True)
def cached(x):
    return x * x


@join_app
def join_pair(x):
    return add(sleep_task(0.2, x), sleep_task(0.2, x + 1))


def wait(futures):
    for f in futures:
        try:
            f.result()
        except Exception:
            pass


def main():
    db_path, run_dir = sys.argv[1], sys.argv[2]
    os.makedirs(run_dir, exist_ok=True)
    provider = LocalProvider(init_blocks=1, min_blocks=0, max_blocks=3, nodes_per_block=1, parallelism=1)
    executor = HighThroughputExecutor(
        label="htex_local", address="127.0.0.1", loopback_address="127.0.0.1", max_workers_per_node=2,
        cores_per_worker=0.5, heartbeat_period=2, heartbeat_threshold=10, poll_period=10, provider=provider)
    hub = MonitoringHub(hub_address="127.0.0.1", resource_monitoring_enabled=True, resource_monitoring_interval=1,
                        workflow_name="parsl-export-live-check", logging_endpoint=f"sqlite:///{db_path}")
    config = Config(executors=[executor], monitoring=hub, retries=1, strategy="htex_auto_scale",
                    max_idletime=2.0, strategy_period=1, run_dir=run_dir, usage_tracking=0)
    parsl.load(config)
    t0 = time.time()
    # Enough queued work for the strategy to scale out to 3 blocks.
    futures = [sleep_task(0.5 + (i % 4) * 0.25, i) for i in range(36)]
    futures += [cpu_task(1_500_000) for _ in range(6)]
    futures += [mem_task(60, 2.5) for _ in range(4)]
    failing = [always_fail(i) for i in range(2)]
    futures += failing + [add(failing[0], 1)]
    futures += [flaky(run_dir, i) for i in range(3)]
    futures += [cached(x) for x in range(3)]
    futures.append(join_pair(10))
    chain = sleep_task(0.1)
    for i in range(3):
        chain = add(chain, i)
    futures.append(chain)
    wait(futures)
    wait([cached(x) for x in range(3)])  # memo_done
    # Idle: blocks are scaled in.
    time.sleep(6)
    wait([sleep_task(0.3, i) for i in range(8)])
    print(f"workflow done after {time.time() - t0:.1f} s", file=sys.stderr)
    parsl.dfk().cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
